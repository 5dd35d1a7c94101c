"""`mmsearch duplicates`: groups of near-duplicate passages and pages over a whole collection."""

from __future__ import annotations

import argparse
import json
import sys

from google.protobuf import json_format


def similarity(text: str) -> float:
    """--duplicate-threshold and --threshold: 0 (the server's default) or a cosine similarity in (0, 1],
    the range the server checks. Checked here once: an ingest would have every item refused for it."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value == 0 or 0 < value <= 1):  # NaN too
        raise argparse.ArgumentTypeError(f"must be a cosine similarity in (0, 1], or 0 for the default; got {text}")
    return value


def cmd_duplicates(args: argparse.Namespace) -> int:
    from .connect import client_from_args as _client

    with _client(args, timeout=args.timeout) as c:
        found = c.find_duplicates(
            args.collection, threshold=args.threshold, neighbours=args.neighbours, cross_document=args.cross_document
        )
    if args.json:
        for g in found.groups:
            print(json.dumps(json_format.MessageToDict(g, preserving_proto_field_name=True)))
        return 0
    for n, g in enumerate(found.groups, start=1):
        print(f"group {n}: {len(g.members)} members, similarity >= {g.similarity:.3f}")
        for m in g.members:
            where = f"page {m.page}" if m.page else f"passage {m.seq + 1}"
            print(f"  {m.document_id} ({where}): {m.snippet[:100]}")
    print(f"{len(found.groups)} groups", file=sys.stderr)
    return 0


def register(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--threshold", type=similarity, default=0.0, help="cosine similarity in (0, 1] (default: 0.95)")
    sp.add_argument("--neighbours", type=int, default=0, help="nearest neighbours asked per point (default: 10)")
    sp.add_argument("--cross-document", action="store_true", help="ignore repeats within one document")
    sp.add_argument("--timeout", type=float, default=600.0, help="seconds (a large collection takes a while)")
    sp.add_argument("--json", action="store_true", help="one JSON object per group")
    sp.set_defaults(fn=cmd_duplicates)
