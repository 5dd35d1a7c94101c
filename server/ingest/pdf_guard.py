"""How much drawing a PDF page asks PDFium to parse, measured before PDFium loads the page.

PDFium parses a page's whole content stream into objects when it loads the page, at ~20 bytes of
memory per byte of content: a hostile-input probe's 400 KB PDF (one page whose flate-compressed content
stream inflates to 200 MB of path operators) took ~45 s and +4 GB of server memory, past every other
limit (request bytes, pages, pixels, words). PDFium has no call that tells a content stream's size
without loading the page, so pypdf reads the page's dictionary here and inflates its streams only to
count their bytes, never holding more than a megabyte of them.

What is counted: the page's content streams, and every form XObject the page draws (recursively), as
many times as its name appears in the content that draws it (PDFium parses a form each time it is
drawn, so a small form drawn 100,000 times is a bomb too). Flate streams (alone or after ASCII85 or
ASCIIHex) are inflated a chunk at a time; other filters and chains are decoded by pypdf; a stream that
cannot be decoded counts its encoded size. A form that draws itself, or forms nested over 64 deep, are
refused outright. Not followed: patterns, Type3 glyphs, annotation appearances, soft masks and inline
images, and pages pypdf cannot read: the PDF reader process (pdf_worker.py), where this guard runs,
bounds those with its memory and time limits. The guard is the cheap first line, with a message that
names the page's drawing; the process is the bound.
"""

from __future__ import annotations

import binascii
import io
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..errors import ResourceExhausted

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MAX_DEPTH = 64  # forms inside forms: PDFium parses ~40 levels; deeper is refused, not left uncounted


class ContentGuard:
    """Opened once per PDF; `check(index)` raises ResourceExhausted for a page over `max_bytes`, or
    for the page that takes the PDF's pages past `max_total` together (`drawn`: counted before, when
    the PDF is reopened in a new reader process)."""

    def __init__(self, data: bytes, max_bytes: int, max_total: int | None = None, drawn: int = 0) -> None:
        self.max_bytes = max_bytes
        self.max_total = max_total
        self.drawn = drawn  # bytes drawn by the pages checked so far
        self._reader: Any = None
        # A form's drawing, by object number, counted once per PDF: pages and forms share forms, and a
        # stack of forms that each draw the next layer's forms twice would be visited 2^depth times.
        self._forms: dict[int, int] = {}
        self._named: dict[int, tuple[Any, dict[bytes, tuple[Any, int]]]] = {}  # /XObject dict -> its forms
        try:
            import pypdf

            self._reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        except Exception as exc:  # PDFium decides about files pypdf cannot read
            log.debug("pdf guard: pypdf cannot read the file (%s); not counted", exc)

    def measure(self, index: int) -> int | None:
        """Bytes page `index` draws (about max_bytes + 1 MiB at most), or None when pypdf cannot read
        the file or the page's dictionary (PDFium decides, in its process)."""
        if self._reader is None:
            return None
        try:
            page = self._reader.pages[index]
            return self._drawn(page.get("/Contents"), page.get("/Resources"), 0, frozenset())
        except _Refused as refused:
            raise ResourceExhausted(f"PDF page {index + 1} {refused}") from None
        except Exception as exc:
            log.debug("pdf guard: page %d not counted (%s)", index + 1, exc)
            return None

    def check(self, index: int) -> None:
        size = self.measure(index)
        if size is None:
            return
        if size > self.max_bytes:
            raise ResourceExhausted(
                f"PDF page {index + 1} draws over {self.max_bytes / 2**20:,.0f} MiB of content (its content "
                f"streams and the forms they draw, inflated); the limit is {self.max_bytes / 2**20:,.0f} MiB "
                "(setting max_page_content_mb)"
            )
        self.drawn += size
        # Each page under the page limit, but thousands of them: hours of PDFium for one item.
        if self.max_total is not None and self.drawn > self.max_total:
            raise ResourceExhausted(
                f"{first_pages(index + 1)} draw {self.drawn / 2**20:,.1f} MiB of content together (inflated); "
                f"the limit for one PDF is {self.max_total / 2**20:,.0f} MiB (setting max_pdf_content_mb)"
            )

    def _drawn(self, contents: Any, resources: Any, depth: int, path: frozenset[int]) -> int:
        """Bytes of content in `contents` (a stream or an array of them) plus the forms of `resources`
        it draws, each times the number of times it is drawn; at most about max_bytes + 1 MiB."""
        budget = self.max_bytes
        res = _resolve(resources)
        xobjects = _resolve(res.get("/XObject")) if hasattr(res, "get") else None
        if id(xobjects) not in self._named:  # pages and forms often share one /XObject dictionary
            self._named[id(xobjects)] = (xobjects, _forms(xobjects))  # kept: its id is not reused meanwhile
        forms = self._named[id(xobjects)][1]
        drawn: Counter[bytes] = Counter()
        total = 0
        for stream in _streams(contents, set()):
            tail = b""
            for chunk in _decoded(stream, budget - total + 1):
                total += len(chunk)
                if forms:  # a name cut by the chunk's edge is found in the carried tail
                    text = tail + chunk
                    drawn.update(_name(m.group(1)) for m in _DO.finditer(text) if m.end() > len(tail))
                    tail = text[-200:]
                if total > budget:
                    return total
        for name, times in drawn.items():
            if name not in forms:
                continue  # an image, or a name the resources do not hold
            form, ident = forms[name]
            if ident in path:  # PDFium follows a loop ~40 forms deep: a 600-byte file did not load in 40 s
                raise _Refused("draws a form that draws itself")
            if depth + 1 >= _MAX_DEPTH:
                raise _Refused(f"nests forms over {_MAX_DEPTH} deep")
            if ident not in self._forms:  # complete counts only: loops and depth raise
                inner = _resolve(form.get("/Resources")) or resources  # old files: the page's resources
                self._forms[ident] = self._drawn(form, inner, depth + 1, path | {ident})
            total += self._forms[ident] * times
            if total > budget:
                return total
        return total


def first_pages(count: int) -> str:
    """ "PDF page 1" or "PDF pages 1-12": the pages a PDF-wide limit counted."""
    return "PDF page 1" if count == 1 else f"PDF pages 1-{count}"


class _Refused(Exception):
    """The page's drawing is refused whatever its size (the rest of the message)."""


#: "/Name Do": draw the XObject Name (a form or an image). NUL is whitespace to PDFium, and a comment
#: may stand between the name and the operator.
_DO = re.compile(rb"/([^\s\x00/\[\]()<>{}%]+)(?:[\s\x00]|%[^\r\n]*)*Do(?![^\s\x00/\[\]()<>{}%])")
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")


def _name(raw: bytes) -> bytes:
    return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _forms(xobjects: Any) -> dict[bytes, tuple[Any, int]]:
    """The form XObjects of an /XObject dictionary, by name (its UTF-8 and Latin-1 bytes: pypdf gives
    the name decoded, the content has its bytes), with their object numbers."""
    out: dict[bytes, tuple[Any, int]] = {}
    if not hasattr(xobjects, "items"):
        return out
    for name, ref in xobjects.items():
        obj = _resolve(ref)
        if not hasattr(obj, "get") or _resolve(obj.get("/Subtype")) != "/Form":
            continue
        ident = getattr(ref, "idnum", None) or id(obj)
        key = str(name)[1:] if str(name).startswith("/") else str(name)
        for encoding in ("utf-8", "latin-1"):
            out[key.encode(encoding, "replace")] = (obj, ident)
    return out


def _streams(contents: Any, arrays: set[int]) -> Iterator[Any]:
    """The streams of `contents`, each as often as it is listed (PDFium parses each listing)."""
    obj = _resolve(contents)
    if isinstance(obj, list):
        if id(obj) in arrays:  # an array that holds itself
            return
        arrays.add(id(obj))
        for part in obj:
            yield from _streams(part, arrays)
    elif hasattr(obj, "get_data"):
        yield obj


def _decoded(stream: Any, budget: int) -> Iterator[bytes]:
    """The stream's decoded bytes in chunks of at most a megabyte, up to about `budget` of them.
    Flate (alone or after ASCII85/ASCIIHex) is inflated here a chunk at a time; other filters and
    chains are decoded by pypdf, which refuses output over its own limit (then: over the budget). A
    stream that cannot be decoded counts its encoded size."""
    raw = bytes(getattr(stream, "_data", b"") or b"")
    filters = _resolve(stream.get("/Filter"))
    names = [str(_resolve(f)) for f in (filters if isinstance(filters, list) else [filters] if filters else [])]
    try:
        while names and names[0] in ("/ASCII85Decode", "/A85", "/ASCIIHexDecode", "/AHx"):
            raw = _ascii_decoded(names.pop(0), raw)  # never longer than its input
    except (ValueError, binascii.Error):
        yield raw
        return
    if not names:
        yield raw
    elif names in (["/FlateDecode"], ["/Fl"]):
        yield from _inflated(raw, budget)
    else:
        try:
            data = stream.get_data()
        except Exception as exc:
            if "limit" in str(exc).lower():
                raise _Refused(f"draws a stream that decodes past pypdf's limit ({exc})") from None
            data = raw
        for at in range(0, len(data), _CHUNK):
            yield data[at : at + _CHUNK]


def _inflated(raw: bytes, budget: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    pending, given = raw, 0
    try:
        while not inflater.eof and given <= budget:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            if not chunk:  # zlib returns what it holds on calls with no input left; nothing: done
                break
            given += len(chunk)
            yield chunk
    except zlib.error:
        return  # a damaged stream: PDFium reads what it can of it, and so is it counted


def _ascii_decoded(name: str, raw: bytes) -> bytes:
    text = raw.strip()
    if name in ("/ASCIIHexDecode", "/AHx"):
        text = bytes(c for c in text.split(b">")[0] if c not in b" \t\r\n\f\x00")
        return binascii.unhexlify(text + b"0" * (len(text) % 2))
    import base64

    if text.startswith(b"<~"):
        text = text[2:]
    return base64.a85decode(text.split(b"~>")[0], ignorechars=b" \t\r\n\f\x00")


def _resolve(obj: Any) -> Any:
    return obj.get_object() if obj is not None and hasattr(obj, "get_object") else obj
