"""What `mmsearch bench` sends: N distinct passages cut from a corpus, queries, and page files.

Passages are windows of a fixed number of words over the corpus's texts, at the largest stride
that still yields N of them, so a small corpus can fill a large collection with distinct (if
overlapping) passages rather than copies: copies would tie in every ranking and make the exact
brute-force comparison meaningless.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmsearch.v1 import common_pb2, ingest_pb2

from ..files import IMAGE_TYPES


class WorkloadError(Exception):
    """The corpus, queries or page folder cannot give what was asked (the message says why)."""


def _jsonl_texts(path: Path, keys: tuple[str, ...]) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{path}:{n}: malformed JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise WorkloadError(f"{path}:{n}: not a JSON object")
            text = next((rec[k] for k in keys if isinstance(rec.get(k), str)), None)
            if text is None:
                raise WorkloadError(f"{path}:{n}: no {' or '.join(repr(k) for k in keys)} string")
            title = rec.get("title")
            yield f"{title.strip()}. {text}" if isinstance(title, str) and title.strip() and "text" in keys else text


def corpus_texts(path: Path) -> list[str]:
    """Texts of a BEIR folder (corpus.jsonl), a JSONL file ({"text"}, optional "title"), a .txt or .md
    file, or a folder of JSONL/.txt/.md files."""
    if not path.exists():
        raise WorkloadError(f"corpus {path} does not exist")
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return list(_jsonl_texts(path / "corpus.jsonl", ("text",)))
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    texts: list[str] = []
    for f in files:
        if f.suffix.lower() == ".jsonl":
            texts.extend(_jsonl_texts(f, ("text",)))
        elif f.suffix.lower() in (".txt", ".md"):
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
    if not texts:
        raise WorkloadError(f"corpus {path} holds no texts (expected a BEIR folder, .jsonl, .txt or .md files)")
    return texts


def _windows(n_words: int, width: int, stride: int) -> int:
    if n_words < width:
        return 1 if n_words >= width // 2 else 0
    return 1 + (n_words - width) // stride


def passages(texts: list[str], n: int, width: int) -> list[str]:
    """`n` distinct passages of `width` words (shorter texts of at least half that count whole)."""
    docs = [t.split() for t in texts]
    docs = [d for d in docs if len(d) >= width // 2]
    available = sum(_windows(len(d), width, 1) for d in docs)
    if available < n:
        raise WorkloadError(
            f"the corpus gives at most {available:,} distinct passages of {width} words; "
            f"asked for {n:,} (use a larger corpus, shorter passages or fewer passages)"
        )
    lo, hi = 1, width  # the largest stride that still yields n windows
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(_windows(len(d), width, mid) for d in docs) >= n:
            lo = mid
        else:
            hi = mid - 1
    out: list[str] = []
    seen: set[str] = set()
    for d in docs:
        for k in range(_windows(len(d), width, lo)):
            text = " ".join(d[k * lo : k * lo + width])
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) == n:
                    return out
    raise WorkloadError(f"the corpus repeats itself: only {len(out):,} distinct passages of {width} words")


def queries(corpus: Path, queries_file: Path | None, fallback: list[str], limit: int) -> list[str]:
    """Query texts: --queries (JSONL {"text"|"query"} or one per line), else the BEIR folder's
    queries.jsonl, else the first 12 words of passages spread over the collection."""
    if queries_file is not None:
        if not queries_file.is_file():
            raise WorkloadError(f"queries file {queries_file} does not exist")
        if queries_file.suffix.lower() == ".jsonl":
            found = list(_jsonl_texts(queries_file, ("text", "query")))
        else:
            found = [line.strip() for line in queries_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif corpus.is_dir() and (corpus / "queries.jsonl").is_file():
        found = list(_jsonl_texts(corpus / "queries.jsonl", ("text", "query")))
    else:
        step = max(1, len(fallback) // limit)
        found = [" ".join(p.split()[:12]) for p in fallback[::step]]
    found = [q for q in found if q.strip()]
    if not found:
        raise WorkloadError("no queries: give --queries FILE, or a --corpus BEIR folder with queries.jsonl")
    return found[:limit]


PAGE_FILE_TYPES = {*IMAGE_TYPES, ".pdf"}


@dataclass
class PageFile:
    path: Path
    pages: int


def page_files(source: Path) -> list[PageFile]:
    """Page images and PDFs under `source`, with their page counts."""
    import pypdfium2
    from PIL import Image

    if not source.exists():
        raise WorkloadError(f"page source {source} does not exist")
    found = []
    for f in sorted(source.rglob("*")) if source.is_dir() else [source]:
        suffix = f.suffix.lower()
        if not f.is_file() or suffix not in PAGE_FILE_TYPES:
            continue
        try:
            if suffix == ".pdf":
                count = len(pypdfium2.PdfDocument(f))
            else:
                with Image.open(f) as im:
                    count = getattr(im, "n_frames", 1)
        except Exception as exc:  # an unreadable file is left out, and said
            raise WorkloadError(f"{f}: cannot be read as a page file ({exc})") from None
        if count:
            found.append(PageFile(f, count))
    if not found:
        raise WorkloadError(f"{source} holds no page images or PDFs ({', '.join(sorted(PAGE_FILE_TYPES))})")
    return found


def page_plan(files: list[PageFile], n: int) -> list[tuple[str, PageFile]]:
    """(document id, file) pairs, cycling over the files with distinct ids until >= n pages."""
    plan: list[tuple[str, PageFile]] = []
    total = k = 0
    while total < n:
        f = files[k % len(files)]
        plan.append((f"pg{k}-{f.path.stem}", f))
        total += f.pages
        k += 1
    return plan


def page_items(plan: list[tuple[str, PageFile]]) -> Iterator[ingest_pb2.IngestItem]:
    """Ingest items for a page plan: each file's bytes, as a PDF or an image."""
    for doc_id, f in plan:
        data = f.path.read_bytes()
        suffix = f.path.suffix.lower()
        if suffix == ".pdf":
            yield ingest_pb2.IngestItem(id=doc_id, source=str(f.path), pdf=data)
        else:
            image = common_pb2.Image(data=data, mime_type=IMAGE_TYPES[suffix])
            yield ingest_pb2.IngestItem(id=doc_id, source=str(f.path), image=image)
