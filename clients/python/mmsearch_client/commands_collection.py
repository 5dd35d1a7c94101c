"""`mmsearch create`: a collection with settings other than the defaults `ingest` creates one with
(a page encoder, the OCR mode, the text model, chunking, indexed metadata fields, duplicates);
`mmsearch drop`: a collection deleted with everything in it."""

from __future__ import annotations

import argparse

from mmsearch.protocol.vocab import FieldType

from .commands_dedup import similarity

OCR_MODES = ("auto", "always", "never")


def _fields(specs: list[str]) -> dict[str, str]:
    fields = {}
    for spec in specs:
        key, sep, kind = spec.partition("=")
        if not sep or not key or kind not in {t.value for t in FieldType}:
            raise SystemExit(f"bad --field {spec!r}: expected KEY=TYPE, TYPE one of {', '.join(FieldType)}")
        fields[key] = kind
    return fields


def cmd_create(args: argparse.Namespace) -> int:
    from .connect import client_from_args

    page_kind, sep, page_model = args.page_model.partition(":")
    if args.page_model and not (sep and page_kind and page_model):
        raise SystemExit(f"bad --page-model {args.page_model!r}: expected KIND:MODEL, e.g. colpali:/models/colqwen2")
    with client_from_args(args) as client:
        col = client.create_collection(
            args.collection,
            text_kind=args.text_kind,
            text_model=args.text_model,
            page_kind=page_kind,
            page_model=page_model,
            ocr=args.ocr,
            max_words=args.max_words,
            overlap_words=args.overlap_words,
            indexed_fields=_fields(args.field),
            on_duplicate=args.on_duplicate,
            duplicate_threshold=args.duplicate_threshold,
        )
    print(f"created {col.name!r}: {describe(col)}")
    return 0


def describe(col) -> str:  # type: ignore[no-untyped-def]  # collections_pb2.Collection
    """Its encoders and OCR mode, as `collections` prints them."""
    from mmsearch.protocol.wire import OCR_MODE

    c = col.config
    text = f"{c.text_encoder.kind}:{c.text_encoder.model}" if c.text_encoder.model else "the server's text model"
    pages = (
        f"{c.page_encoder.kind}:{c.page_encoder.model}" if c.page_encoder.model else "text layer or OCR + text model"
    )
    return f"text {text}; pages {pages}; ocr {OCR_MODE.from_wire(c.ocr) or 'auto'}"


def settings(col) -> str:  # type: ignore[no-untyped-def]  # collections_pb2.Collection
    """Its other fixed settings on one line, as `collections` prints them: chunking, compression,
    indexed fields and the duplicate policy (the ALREADY_EXISTS message sends the user here)."""
    from mmsearch.protocol.wire import DENSE_QUANTIZATION, DUPLICATE_POLICY, FIELD_TYPE, VECTOR_STORAGE

    c = col.config
    ch = c.chunking
    chunks = f"chunks {ch.max_words} words, overlap {ch.overlap_words}" if ch.max_words else "chunks: server default"
    cp = c.compression
    tokens = VECTOR_STORAGE.from_wire(cp.tokens) or "default"
    if cp.HasField("token_pool_factor") and cp.token_pool_factor > 1:
        tokens += f" pooled 1/{cp.token_pool_factor}"
    dense = VECTOR_STORAGE.from_wire(cp.dense) or "default"
    quantised = DENSE_QUANTIZATION.from_wire(cp.dense_quantization)
    if quantised and quantised != "none":
        dense += f" + {quantised} copy"
    fields = ", ".join(f"{f.key}={FIELD_TYPE.from_wire(f.type) or '?'}" for f in c.indexed_fields) or "none"
    policy = DUPLICATE_POLICY.from_wire(c.on_duplicate.policy) or "keep"
    threshold = f" at {c.on_duplicate.threshold:.2f}" if policy != "keep" and c.on_duplicate.threshold else ""
    return f"{chunks}; tokens {tokens}, dense {dense}; fields {fields}; duplicates {policy}{threshold}"


def register(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("collection", help="name of the new collection")
    sp.add_argument("--text-model", default="", help="text model (default: the server's, e.g. all-MiniLM-L6-v2)")
    sp.add_argument("--text-kind", default="", help="text encoder kind (default: the server's)")
    sp.add_argument(
        "--page-model", default="", help="a page encoder KIND:MODEL, e.g. colpali:DIR (default: OCR + the text model)"
    )
    sp.add_argument(
        "--ocr",
        choices=OCR_MODES,
        default="",
        help="auto (default): the text layer, OCR when a page has none; always: OCR every page; never: no OCR "
        "(needs --page-model: pages are found by their image alone)",
    )
    sp.add_argument("--max-words", type=int, default=0, help="words per passage (default: the server's)")
    sp.add_argument("--overlap-words", type=int, default=None, help="words shared by consecutive passages")
    sp.add_argument(
        "--field", action="append", default=[], help="index a metadata field for filters: KEY=TYPE (repeatable)"
    )
    sp.add_argument("--on-duplicate", choices=["keep", "skip", "replace"], default="", help="default for its ingests")
    sp.add_argument("--duplicate-threshold", type=similarity, default=0.0, help="cosine similarity (default: 0.95)")
    sp.set_defaults(fn=cmd_create)


def cmd_drop(args: argparse.Namespace) -> int:
    from .connect import client_from_args

    if not args.yes:
        raise SystemExit(f"this deletes collection {args.collection!r} and every document in it; add --yes to do it")
    with client_from_args(args) as client:
        client.delete_collection(args.collection)
    print(f"deleted collection {args.collection!r}")
    return 0


def register_drop(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("collection", help="name of the collection to delete")
    sp.add_argument("--yes", action="store_true", help="really delete it (nothing is asked interactively)")
    sp.set_defaults(fn=cmd_drop)
