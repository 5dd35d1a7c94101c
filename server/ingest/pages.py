"""Page images and PDFs into pages, one at a time, with the checks that reject bad input clearly.

Images are opened lazily so that a 50,000 × 50,000 header is refused before any pixel is decoded;
PDFs are rendered page by page, so memory does not grow with the page count.
"""

from __future__ import annotations

import io
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from prometheus_client import Counter

from ..errors import InvalidArgument, ResourceExhausted
from .pdf_guard import ContentGuard, first_pages

#: Pages read for ingest (PDF pages rendered or read from their text layer, image frames decoded):
#: lets an operator (and a test) see that a cancelled ingest stopped working.
PAGES_READ = Counter("mmsearch_ingest_pages_total", "Pages read for ingest (PDF pages, image frames)")


@dataclass
class Word:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels (top-left origin)


@dataclass
class Page:
    number: int  # 1-based
    image: Image.Image | None
    width: int
    height: int
    #: Words from the PDF's text layer (boxes in rendered pixels); None when the page needs OCR.
    words: list[Word] | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PageLimits:
    max_pixels: int = 60_000_000  # ~7,700 × 7,700: far beyond a 600 dpi A4 scan
    max_pages: int = 2000
    pdf_dpi: int = 150
    max_words: int = 20_000  # a PDF page's text layer: its words become one point's token vectors
    max_content_bytes: int = 32 << 20  # a PDF page's drawing, inflated (pdf_guard.py): PDFium takes ~20× in memory
    worker_mb: int = 0  # > 0: pdf_worker.read_pdf reads pages in a process limited to this much memory
    page_timeout_s: float = 120.0  # ... and this long a page
    # One PDF's pages together: each page under the limits above, but thousands of them (docs/robustness.md)
    max_pdf_content_bytes: int = 512 << 20
    pdf_timeout_s: float = 900.0  # time spent reading its pages (not waiting for the reader)


def check_pdf_time(seconds: float, index: int, limits: PageLimits) -> None:
    """Before page `index` of a PDF whose earlier pages took `seconds` to read."""
    if seconds > limits.pdf_timeout_s:
        raise ResourceExhausted(
            f"reading {first_pages(index)} took {seconds:,.1f} s; the limit for one PDF is {limits.pdf_timeout_s:g} s "
            "(setting pdf_timeout_s)"
        )


_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
]


def sniff(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "unknown"


SUPPORTED_IMAGES = {"image/png", "image/jpeg", "image/tiff", "image/webp"}


def image_pages(data: bytes, mime_type: str, limits: PageLimits) -> Iterator[Page]:
    """Yields each frame of an image (a multi-page TIFF gives several pages)."""
    mime = (mime_type or "").lower().replace("image/jpg", "image/jpeg")
    if mime not in SUPPORTED_IMAGES:
        raise InvalidArgument(f"unsupported image type {mime_type!r}; use one of {', '.join(sorted(SUPPORTED_IMAGES))}")
    actual = sniff(data)
    if actual != mime:
        looks = "unrecognised bytes" if actual == "unknown" else actual
        raise InvalidArgument(f"mime type {mime} does not match the bytes ({looks})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ResourceExhausted(f"image is too large to decode (limit {limits.max_pixels:,} pixels)") from None
    except UnidentifiedImageError:
        raise InvalidArgument(f"image cannot be decoded: not a readable {mime} file") from None
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"image cannot be decoded: {_plain(exc)}") from None
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > limits.max_pages:
        raise ResourceExhausted(f"image has {n_frames} pages; the limit is {limits.max_pages}")
    for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
        w, h = frame.size
        if w < 1 or h < 1:
            raise InvalidArgument(f"page {number} is {w}×{h} pixels: empty image")
        if w * h > limits.max_pixels:
            raise ResourceExhausted(f"page {number} is {w}×{h} pixels; the limit is {limits.max_pixels:,} pixels")
        try:
            frame.load()  # decodes now: truncated data fails here
            rgb = upright_rgb(frame, copy=n_frames > 1)
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidArgument(f"page {number} cannot be decoded ({_plain(exc)})") from None
        PAGES_READ.inc()
        yield Page(number, rgb, rgb.width, rgb.height)


def upright_rgb(frame: Image.Image, copy: bool = False) -> Image.Image:
    """The page as it displays: turned by its EXIF orientation (phone photos are stored sideways), and
    transparent parts on white (dropping the alpha channel left them black: black text on a transparent
    background vanished). convert() copies even an RGB page (a tenth of the stream thread's ColPali
    ingest time), so an upright RGB page is used as it is; frames of a multi-page image share one
    object that the next frame overwrites (`copy`)."""
    if frame.getexif().get(0x0112, 1) != 1:  # Orientation
        frame = ImageOps.exif_transpose(frame)
        copy = False
    if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:  # an alpha channel, or a colour key
        rgba = frame.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    if frame.mode == "RGB":
        return frame.copy() if copy else frame
    return frame.convert("RGB")


def _plain(exc: BaseException) -> str:
    """Pillow names its buffer in some messages ("<_io.BytesIO object at 0x7f…>"): the client sent bytes."""
    return re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the image", str(exc)) or type(exc).__name__


# PDFium may not be called from two threads at once, not even for different documents: that can
# crash or corrupt the process (pypdfium2's docs). Every call here holds this lock; between pages it
# is free, so concurrent streams take turns page by page. Reentrant: a PDF's page generator dropped
# half-read closes its document when the garbage collector finds it, which can be on a thread that
# holds the lock (a plain lock deadlocked every later PDF; the stream also closes its dropped items).
PDFIUM = threading.RLock()


def pdf_page_count(data: bytes, limits: PageLimits) -> int:
    """Opens the PDF only to validate it and count pages (before any page is ingested)."""
    with PDFIUM:
        doc = _open_pdf(data)
        try:
            n = len(doc)
        finally:
            doc.close()
    if n == 0:
        raise InvalidArgument("PDF has no pages")
    if n > limits.max_pages:
        raise ResourceExhausted(f"PDF has {n:,} pages; the limit is {limits.max_pages:,} (setting max_pdf_pages)")
    return n


def _open_pdf(data: bytes):  # type: ignore[no-untyped-def]
    """Under PDFIUM."""
    import pypdfium2 as pdfium

    if sniff(data) != "application/pdf":
        raise InvalidArgument("bytes are not a PDF (no %PDF- header)")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # PDFium's reason is its last error, which some failures (a PDF without pages) leave as it was:
        # "Success", or the reason of another PDF, so "password" is believed only of an encrypted file.
        msg = str(exc)
        if "password" in msg.lower() and b"/Encrypt" in data:
            raise InvalidArgument("PDF is encrypted (password required)") from None
        if "password" in msg.lower() or "success" in msg.lower():
            raise InvalidArgument("PDF cannot be opened: it has no pages, or its page tree is broken") from None
        raise InvalidArgument(f"PDF cannot be opened: {msg}") from None


def pdf_pages(data: bytes, limits: PageLimits, always_render: bool = False) -> Iterator[Page]:
    """One page at a time, with its text-layer words when it has any. The page is rendered only when
    something needs pixels: OCR (no text layer), an image encoder or kept page images (`always_render`).
    Read here, in the thread reading the PDF, because pdfium is not thread-safe; the server reads them
    in its PDF reader process instead (pdf_worker.read_pdf). The costly WebP encoding of a kept copy
    runs beside the encoder (ingest/points.py)."""
    with PDFIUM:
        doc = _open_pdf(data)
        count = len(doc)
    try:
        guard = ContentGuard(data, limits.max_content_bytes, limits.max_pdf_content_bytes)  # outside the lock
        seconds = 0.0
        for index in range(count):
            check_pdf_time(seconds, index, limits)
            start = time.perf_counter()
            guard.check(index)  # before PDFium parses the page's drawing into memory
            seconds += time.perf_counter() - start
            with PDFIUM:  # one page at a time: the lock is free while the page is encoded
                start = time.perf_counter()  # waiting for the lock (other PDFs' pages) does not count
                page = read_pdf_page(doc, index, limits, always_render)
                seconds += time.perf_counter() - start
            PAGES_READ.inc()
            yield page
    finally:
        with PDFIUM:
            doc.close()


def read_pdf_page(doc, index: int, limits: PageLimits, always_render: bool) -> Page:  # type: ignore[no-untyped-def]
    """Page `index` of the open document `doc` (under PDFIUM, or in the PDF reader process)."""
    import pypdfium2 as pdfium

    scale = limits.pdf_dpi / 72
    try:
        page = doc[index]
    except pdfium.PdfiumError as exc:  # e.g. a page tree with a loop, a missing page object
        raise InvalidArgument(f"PDF page {index + 1} cannot be loaded ({exc})") from None
    try:
        width_pt, height_pt = page.get_size()
        if width_pt * height_pt * scale * scale > limits.max_pixels:
            scale = (limits.max_pixels / (width_pt * height_pt)) ** 0.5
        size = (round(width_pt * scale), round(height_pt * scale))
        words = _text_layer(page, _to_pixels(page, size))
        if words and len(words) > limits.max_words:
            raise ResourceExhausted(
                f"PDF page {index + 1} has {len(words):,} words in its text layer; the limit is "
                f"{limits.max_words:,} (setting max_page_words)"
            )
        render = always_render or not words
        image = page.render(scale=scale).to_pil().convert("RGB") if render else None
    except pdfium.PdfiumError as exc:
        raise InvalidArgument(f"PDF page {index + 1} cannot be read ({exc})") from None
    finally:
        page.close()
    return Page(index + 1, image, size[0], size[1], words=words, extra={"text_layer": bool(words)})


def _to_pixels(page, size: tuple[int, int]) -> Callable[[float, float], tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Page space (points, bottom-left origin) to the pixels of `page.render` at `size`: pdfium's own
    mapping, so the page's /Rotate and a crop box not at the origin place boxes where the words are
    drawn. It is affine; taken once per page from three points rather than a call per character."""
    import ctypes

    import pypdfium2.raw as raw

    def device(x: float, y: float) -> tuple[float, float]:
        dx, dy = ctypes.c_int(), ctypes.c_int()
        raw.FPDF_PageToDevice(page.raw, 0, 0, size[0], size[1], 0, x, y, ctypes.byref(dx), ctypes.byref(dy))
        return float(dx.value), float(dy.value)

    far = 100_000.0  # long baselines: the integer rounding of device pixels is negligible
    ox, oy = device(0, 0)
    xx, xy = device(far, 0)
    yx, yy = device(0, far)
    a, b, c, d = (xx - ox) / far, (yx - ox) / far, (xy - oy) / far, (yy - oy) / far
    return lambda x, y: (ox + a * x + b * y, oy + c * x + d * y)


def _text_layer(page, to_pixels: Callable[[float, float], tuple[float, float]]) -> list[Word] | None:  # type: ignore[no-untyped-def]
    """Words of the page's text layer with boxes in rendered pixels, or None when it has no text."""
    tp = page.get_textpage()
    try:
        n = tp.count_chars()
        if n == 0:
            return None
        text = tp.get_text_range(0, n)
        words: list[Word] = []
        cur: list[str] = []
        box = [1e9, 1e9, -1e9, -1e9]
        # get_text_range returns one character per char index (plus none extra for n chars)
        for i, ch in enumerate(text[:n]):
            if ch.isspace():
                if cur:
                    words.append(Word("".join(cur), (box[0], box[1], box[2], box[3])))
                    cur, box = [], [1e9, 1e9, -1e9, -1e9]
                continue
            left, bottom, right, top = tp.get_charbox(i)
            (x0, y0), (x1, y1) = to_pixels(left, top), to_pixels(right, bottom)
            cur.append(ch)
            box = [min(box[0], x0, x1), min(box[1], y0, y1), max(box[2], x0, x1), max(box[3], y0, y1)]
        if cur:
            words.append(Word("".join(cur), (box[0], box[1], box[2], box[3])))
        return words or None
    finally:
        tp.close()
