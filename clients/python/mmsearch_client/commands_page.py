"""`mmsearch page`: a kept page read back from the server: its text and word count, its image saved."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from .client import Client, MMSearchError


def cmd_page(args: argparse.Namespace, client: Callable[[argparse.Namespace], Client]) -> int:
    with client(args) as c:
        if args.page:
            try:
                pages = [c.get_page(args.collection, args.document, args.page)]
            except MMSearchError as exc:
                if exc.code != grpc.StatusCode.NOT_FOUND or c.get_document(args.collection, args.document).pages:
                    raise
                pages = []  # the document is there, without pages
        else:  # the whole document; images only when they are to be saved
            pages = list(c.get_document(args.collection, args.document, images=bool(args.out)).pages)
    if not pages:  # a text document: it printed nothing and exited 0
        print(f"error: {args.document!r} is a text document: it has no pages (pages are kept for images and PDFs)",
              file=sys.stderr)  # fmt: skip
        return 1
    saved: list[str] = []
    if args.out:
        out = Path(args.out)
        for p in pages:
            # one page to a file name as given; several to NAME-<page>.webp beside it
            path = out if len(pages) == 1 else out.with_name(f"{out.stem}-{p.page}{out.suffix or '.webp'}")
            path.write_bytes(p.image)
            saved.append(str(path))
    rows: list[dict[str, Any]] = [
        {"page": p.page, "width": p.width, "height": p.height, "words": len(p.words), "text": p.text} for p in pages
    ]
    if args.json:
        print(json.dumps({"document_id": args.document, "pages": rows, "saved": saved}, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"--- page {row['page']} ({row['width']}x{row['height']} px, {row['words']} words)")
        print(row["text"])
    for name in saved:
        print(f"saved {name}")
    return 0
