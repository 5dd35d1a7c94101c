"""`mmsearch classify`: zero-shot classification of a text or a page image (docs/classify.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client


def labels_from_args(labels: list[str], described: list[str]) -> list[tuple[str, str]]:
    """--labels a,b,c (names, which are also their descriptions) and --label NAME=DESCRIPTION
    (a description may hold commas) as (name, description) pairs, in the order given."""
    out = [(name.strip(), "") for spec in labels for name in spec.split(",") if name.strip()]
    for spec in described:
        name, sep, description = spec.partition("=")
        if not sep or not name.strip() or not description.strip():
            raise SystemExit(f"--label {spec!r}: expected NAME=DESCRIPTION")
        out.append((name.strip(), description.strip()))
    return out


def cmd_classify(args: argparse.Namespace, connect: Callable[[argparse.Namespace], Client]) -> int:
    """`connect`: the CLI's client from the connection flags."""
    from .files import read_image_arg

    labels = labels_from_args(args.labels, args.label)
    if not labels:
        raise SystemExit("give labels: --labels a,b,c and/or --label NAME=DESCRIPTION")
    if (args.text is None) == (args.image is None):
        raise SystemExit("give the TEXT to classify or --image FILE (one of them)")
    image = read_image_arg(args.image) if args.image else None
    with connect(args) as c:
        resp = c.classify(
            args.text or "", labels, image=image, collection=args.collection or "",
            threshold=args.threshold, cross_encoder=args.cross_encoder,
        )  # fmt: skip
    scores: list[dict[str, Any]] = [{"label": x.label, "score": round(x.score, 6)} for x in resp.labels]
    if args.json:
        print(json.dumps({"labels": scores}, indent=2))
        return 0
    if image is not None:
        print(f"text (OCR): {resp.text[:200]}", file=sys.stderr)
    if not scores:
        print("no label reaches the threshold")
    for s in scores:
        print(f"{s['score']:.3f}  {s['label']}")
    return 0


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("text", nargs="?", help="the text to classify (or --image)")
    sp.add_argument("--labels", "-l", action="append", default=[], help="comma-separated label names")
    sp.add_argument(
        "--label", action="append", default=[], help="NAME=DESCRIPTION: a label compared by its description"
    )
    sp.add_argument("--collection", "-c", help="use this collection's text model (default: the server's)")
    sp.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="only labels scoring at least this, in [0, 1]; scores are relative to the other labels (docs/classify.md)",
    )
    sp.add_argument("--image", help="a page image, classified by its OCR text")
    sp.add_argument("--cross-encoder", action="store_true", help="add the configured cross-encoder's score")
    sp.add_argument("--json", action="store_true", help='print {"labels": [{"label", "score"}]}')
