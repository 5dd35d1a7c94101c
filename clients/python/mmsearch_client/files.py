"""Files and folders into ingest items, and the reasons some cannot be sent."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmsearch.v1 import common_pb2, ingest_pb2

TEXT_TYPES = {".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}
SUPPORTED = {*TEXT_TYPES, *IMAGE_TYPES, ".pdf", ".jsonl"}


def image_type(data: bytes, suffix: str) -> str:
    """The MIME type the bytes show (a JPEG saved as .png is common), else the extension's: the server
    refuses a declared type that does not match the bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return IMAGE_TYPES[suffix]


def read_image_arg(arg: str, flag: str = "--image") -> tuple[bytes, str]:
    """(bytes, MIME type) of an image named on the command line; SystemExit naming the types otherwise."""
    path = Path(arg)
    if path.suffix.lower() not in IMAGE_TYPES:
        raise SystemExit(f"{flag} {arg}: expected one of {', '.join(sorted(IMAGE_TYPES))}")
    if not path.is_file():
        raise SystemExit(f"{flag} {arg}: no such file")
    data = path.read_bytes()
    return data, image_type(data, path.suffix.lower())


@dataclass
class Rejected:
    """An input the client could not turn into an item (the server never saw it)."""

    source: str
    reason: str


@dataclass
class Skipped:
    """Files of a folder that no item can be made from (their types), left out without failing the run."""

    folder: str
    types: Counter[str]


def expand(paths: list[str]) -> Iterator[Path | Rejected | Skipped]:
    """Files in the given order; folders recursively, sorted, hidden files left out, and a folder's
    files of unsupported types counted (a file named on its own is rejected instead)."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            other: Counter[str] = Counter()
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    if f.suffix.lower() in SUPPORTED:
                        yield f
                    else:
                        other[f.suffix.lower() or "(none)"] += 1
            if other:
                yield Skipped(raw, other)
        elif p.is_file():
            yield p
        else:
            yield Rejected(raw, "no such file or directory")


def items_from_file(path: Path) -> Iterator[ingest_pb2.IngestItem | Rejected]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl(path)
        return
    source = str(path)
    if suffix in TEXT_TYPES:
        yield ingest_pb2.IngestItem(
            id=path.stem,
            source=source,
            text_file=ingest_pb2.TextFile(data=path.read_bytes(), mime_type=TEXT_TYPES[suffix]),
        )
    elif suffix in IMAGE_TYPES:
        data = path.read_bytes()
        yield ingest_pb2.IngestItem(
            id=path.stem, source=source, image=common_pb2.Image(data=data, mime_type=image_type(data, suffix))
        )
    elif suffix == ".pdf":
        yield ingest_pb2.IngestItem(id=path.stem, source=source, pdf=path.read_bytes())
    else:
        yield Rejected(
            source, f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(sorted(SUPPORTED))}"
        )


def _jsonl(path: Path) -> Iterator[ingest_pb2.IngestItem | Rejected]:
    """Records {"id", "text", "metadata"}; BEIR corpora ({"_id", "title", "text"}) work too."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            source = f"{path}:{n}"
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Rejected(source, f"line is not valid UTF-8 (byte at offset {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield Rejected(source, f"malformed JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(rec, dict):
                yield Rejected(source, "line is not a JSON object")
                continue
            doc_id = rec.get("id", rec.get("_id"))
            text = rec.get("text")
            if isinstance(rec.get("title"), str) and rec["title"].strip() and isinstance(text, str):
                text = f"{rec['title'].strip()}. {text}"
            metadata = rec.get("metadata") or {}
            if doc_id is None or not str(doc_id).strip():
                yield Rejected(source, 'record has no "id"')
            elif not isinstance(text, str):
                yield Rejected(source, 'record has no "text" string')
            elif not isinstance(metadata, dict):
                yield Rejected(source, '"metadata" must be a JSON object')
            else:
                item = ingest_pb2.IngestItem(id=str(doc_id), text=text, source=source)
                if metadata:
                    item.metadata.fields.update(metadata)
                yield item
