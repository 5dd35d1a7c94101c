"""`mmsearch reindex`: re-encodes a collection with another text model on the server, with a progress
bar; the collection keeps serving its old vectors until the new ones are complete (docs/finetune.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from google.protobuf import json_format

from mmsearch.v1 import collections_pb2

RUNNING = ("copying", "switching")


def start_reindex(client: Any, collection: str, text_model: str) -> collections_pb2.ReindexStatus:
    request = collections_pb2.StartReindexRequest(collection=collection, text_model=text_model)
    return client._call(client.collections.StartReindex, request, retry=False)  # type: ignore[no-any-return]


def reindex_status(client: Any, collection: str) -> collections_pb2.ReindexStatus:
    request = collections_pb2.GetReindexStatusRequest(collection=collection)
    return client._call(client.collections.GetReindexStatus, request)  # type: ignore[no-any-return]


def wait_reindex(client: Any, collection: str, every_s: float = 0.5, progress: bool = True) -> Any:
    """Polls the status until the run ends; a progress bar of points re-encoded on stderr."""
    from tqdm.auto import tqdm

    status = reindex_status(client, collection)
    bar = tqdm(total=status.points_total or None, desc=f"reindex {collection}", unit="pt", disable=not progress)
    try:
        while status.state in RUNNING:
            bar.total = max(status.points_total, status.points_done) or None
            bar.n = status.points_done
            bar.set_postfix_str(status.state)
            bar.refresh()
            time.sleep(every_s)
            status = reindex_status(client, collection)
        bar.n = status.points_done
        bar.refresh()
    finally:
        bar.close()
    return status


def cmd_reindex(args: argparse.Namespace) -> int:
    from .connect import client_from_args as _client

    if bool(args.text_model) == args.status:
        raise SystemExit("give --text-model MODEL to start a reindex, or --status to follow the one that runs")
    with _client(args, timeout=60) as c:
        if args.status:
            status = reindex_status(c, args.collection)
        else:
            status = start_reindex(c, args.collection, args.text_model)
        if not args.no_wait:
            status = wait_reindex(c, args.collection, progress=not args.quiet and not args.json)
    if args.json:
        print(json.dumps(json_format.MessageToDict(status, preserving_proto_field_name=True)))
    elif status.state == "done":
        print(f"collection {status.collection}: re-encoded {status.points_done} points with {status.new_model} "
              f"(was {status.old_model})", file=sys.stderr)  # fmt: skip
    elif status.state == "failed":
        print(f"error: re-encoding {status.collection} failed; it keeps {status.old_model}: {status.error}",
              file=sys.stderr)  # fmt: skip
    elif status.state == "none":
        print(f"collection {status.collection}: no reindex has run since the server started", file=sys.stderr)
    else:
        print(f"collection {status.collection}: {status.state} (mmsearch reindex -c {status.collection} --status)",
              file=sys.stderr)  # fmt: skip
    return 1 if status.state == "failed" else 0


def register(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--text-model", help="the new text model (one the server offers)")
    sp.add_argument(
        "--status", action="store_true", help="follow the reindex that runs (or show how the last one ended)"
    )
    sp.add_argument("--no-wait", action="store_true", help="start it (or show its status) and return")
    sp.add_argument("--json", action="store_true", help="the final status as one JSON object")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sp.set_defaults(fn=cmd_reindex)
