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
ASCIIHex) are inflated and counted; other filters count their encoded size. When pypdf cannot read the
file or the page, nothing is counted and PDFium decides, as before.
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
_MAX_DEPTH = 32  # forms inside forms; PDFium itself stops parsing forms nested about this deep


class ContentGuard:
    """Opened once per PDF; `check(index)` raises ResourceExhausted for a page over `max_bytes`."""

    def __init__(self, data: bytes, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._reader: Any = None
        # A form's drawing, by object number, counted once per PDF: pages and forms share forms, and a
        # stack of forms that each draw the next layer's forms twice would be visited 2^depth times.
        self._forms: dict[int, int] = {}
        try:
            import pypdf

            self._reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        except Exception as exc:  # PDFium decides about files pypdf cannot read
            log.debug("pdf guard: pypdf cannot read the file (%s); not counted", exc)

    def check(self, index: int) -> None:
        if self._reader is None:
            return
        try:
            page = self._reader.pages[index]
            size = self._drawn(page.get("/Contents"), page.get("/Resources"), 0, frozenset())
        except Exception as exc:  # a page pypdf cannot read: PDFium decides
            log.debug("pdf guard: page %d not counted (%s)", index + 1, exc)
            return
        if size > self.max_bytes:
            raise ResourceExhausted(
                f"PDF page {index + 1} draws over {self.max_bytes / 2**20:,.0f} MiB of content (its content "
                f"streams and the forms they draw, inflated); the limit is {self.max_bytes / 2**20:,.0f} MiB "
                "(setting max_page_content_mb)"
            )

    def _drawn(self, contents: Any, resources: Any, depth: int, path: frozenset[int]) -> int:
        """Bytes of content in `contents` (a stream or an array of them) plus the forms of `resources`
        it draws, each times the number of times it is drawn; at most about max_bytes + 1 MiB."""
        budget = self.max_bytes
        forms = _forms(resources, path) if depth < _MAX_DEPTH else {}
        drawn: Counter[bytes] = Counter()
        total = 0
        for stream in _streams(contents):
            tail = b""
            for chunk in _inflated(stream, budget - total + 1):
                total += len(chunk)
                if forms:  # a name cut by the chunk's edge is found in the carried tail
                    text = tail + chunk
                    drawn.update(m.group(1) for m in _DO.finditer(text) if m.end() > len(tail))  # new ones only
                    tail = text[-200:]
                if total > budget:
                    return total
        for name, times in drawn.items():
            if name not in forms:
                continue  # an image, or a name the resources do not hold
            form, ident = forms[name]
            if ident not in self._forms:
                self._forms[ident] = self._drawn(form, form.get("/Resources"), depth + 1, path | {ident})
            total += self._forms[ident] * times
            if total > budget:
                return total
        return total


#: "/Name Do": draw the XObject Name (a form or an image).
_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do\b")


def _forms(resources: Any, path: frozenset[int]) -> dict[bytes, tuple[Any, int]]:
    """The form XObjects named in `resources`, by name, with their object numbers (a form that draws
    itself, directly or not, is left out: PDFium refuses such loops)."""
    out: dict[bytes, tuple[Any, int]] = {}
    xobjects = _resolve(_resolve(resources).get("/XObject")) if resources is not None else None
    if not xobjects:
        return out
    for name, ref in xobjects.items():
        obj = _resolve(ref)
        ident = getattr(ref, "idnum", id(obj))
        if obj is None or obj.get("/Subtype") != "/Form" or ident in path:
            continue
        out[str(name).lstrip("/").encode("latin-1", "replace")] = (obj, ident)
    return out


def _streams(contents: Any) -> Iterator[Any]:
    obj = _resolve(contents)
    if obj is None:
        return
    if isinstance(obj, list):
        for part in obj:
            yield from _streams(part)
    elif hasattr(obj, "get_data"):
        yield obj


def _inflated(stream: Any, budget: int) -> Iterator[bytes]:
    """The stream's decoded bytes in chunks of at most a megabyte, up to about `budget` of them."""
    raw = getattr(stream, "_data", b"") or b""
    filters = _resolve(stream.get("/Filter"))
    names = [str(f) for f in (filters if isinstance(filters, list) else [filters] if filters else [])]
    while names and names[0] in ("/ASCII85Decode", "/A85", "/ASCIIHexDecode", "/AHx"):
        raw = _ascii_decoded(names.pop(0), raw)  # never longer than its input
    if names[:1] not in ([], ["/FlateDecode"], ["/Fl"]) or len(names) > 1:
        yield raw  # another filter: its encoded size
        return
    if not names:
        yield raw
        return
    inflater = zlib.decompressobj()
    pending, given = raw, 0
    try:
        while pending and given <= budget:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            if not chunk:
                break
            given += len(chunk)
            yield chunk
    except zlib.error:
        return  # a damaged stream: PDFium reads what it can of it, and so is it counted


def _ascii_decoded(name: str, raw: bytes) -> bytes:
    text = bytes(raw).strip()
    if name in ("/ASCIIHexDecode", "/AHx"):
        text = bytes(c for c in text.split(b">")[0] if c not in b" \t\r\n\f")
        return binascii.unhexlify(text + b"0" * (len(text) % 2))
    import base64

    if text.startswith(b"<~"):
        text = text[2:]
    return base64.a85decode(text.split(b"~>")[0], ignorechars=b" \t\r\n\f")


def _resolve(obj: Any) -> Any:
    return obj.get_object() if obj is not None and hasattr(obj, "get_object") else obj
