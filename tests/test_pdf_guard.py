"""PDF pages that draw too much are refused before PDFium parses them (server/ingest/pdf_guard.py):
a 400 KB PDF whose content inflated to 200 MiB took +4 GB of server memory."""

import zlib
from pathlib import Path

import pypdfium2
import pytest

from mmsearch.client import Client
from mmsearch.server.errors import ResourceExhausted
from mmsearch.server.ingest.pages import PageLimits, pdf_pages
from mmsearch.server.ingest.pdf_guard import ContentGuard

from .test_hostile_pages import WHITE, _pdf
from .test_pages import image_item, pdf_item

MiB = 1 << 20
CATALOG, PAGES = b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def _stream(content: bytes, head: bytes = b"", flate: bool = True) -> bytes:
    data = zlib.compress(content, 9) if flate else content
    filt = b"/Filter /FlateDecode " if flate else b""
    return b"<< %s%s/Length %d >>\nstream\n%s\nendstream" % (head, filt, len(data), data)


def _page(resources: bytes = b"") -> bytes:
    return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] %s/Contents 4 0 R >>" % resources


def content_bomb(mib: int) -> bytes:
    """One page of `mib` MiB of path operators, flate-compressed (the probe's file, smaller)."""
    ops = b"0 0 m 1 1 l S\n" * (mib * MiB // 14)
    return _pdf([CATALOG, PAGES, _page(), _stream(ops)])


def many_pages(pages: int, mib: int) -> bytes:
    """`pages` pages that all draw one content stream of `mib` MiB of path operators (the probe's file,
    smaller): each page is under the page limit, together they are not."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>" % (3 + pages)
    tree = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)
    return _pdf([CATALOG, tree, *[page] * pages, _stream(b"0 0 m 1 1 l S\n" * (mib * MiB // 14))])


def form_bomb(times: int, form_ops: bytes, nested: int = 0) -> bytes:
    """A page that draws form /F1 `times` times; with `nested`, /F1 draws /F2 that many times and /F2
    holds the operators."""
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] "
    if nested:
        f1 = _stream(b"/F2 Do\n" * nested, form + b"/Resources << /XObject << /F2 6 0 R >> >> ")
        objects = [f1, _stream(form_ops, form)]
    else:
        objects = [_stream(form_ops, form)]
    page = _page(b"/Resources << /XObject << /F1 5 0 R >> >> ")
    return _pdf([CATALOG, PAGES, page, _stream(b"q /F1 Do Q\n" * times), *objects])


@pytest.fixture
def no_pdfium_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every page PDFium is asked to load."""
    loaded: list[int] = []
    original = pypdfium2.PdfDocument.get_page

    def get_page(self, index):  # type: ignore[no-untyped-def]
        loaded.append(index)
        return original(self, index)

    monkeypatch.setattr(pypdfium2.PdfDocument, "get_page", get_page)
    return loaded


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("content", content_bomb(64)),
        ("form drawn 200,000 times", form_bomb(200_000, b"0 0 m 1 1 l S\n" * 20)),
        ("form in a form", form_bomb(2_000, b"0 0 m 1 1 l S\n" * 20, nested=2_000)),
    ],
)
def test_a_page_that_draws_too_much_is_refused_before_pdfium_loads_it(
    name: str, data: bytes, no_pdfium_pages: list[int]
) -> None:
    assert len(data) < 200_000, name  # small files: no other limit sees them
    with pytest.raises(ResourceExhausted) as err:
        next(pdf_pages(data, PageLimits()))
    assert str(err.value).startswith("PDF page 1 draws over 32 MiB of content")
    assert "(setting max_page_content_mb)" in str(err.value)
    assert no_pdfium_pages == []


def test_the_limit_is_the_setting_and_a_page_under_it_is_read(no_pdfium_pages: list[int]) -> None:
    data = content_bomb(2)  # 2 MiB of lines: a heavy but honest vector drawing
    page = next(pdf_pages(data, PageLimits(max_content_bytes=3 * MiB)))
    assert page.number == 1 and page.image is not None and no_pdfium_pages == [0]
    with pytest.raises(ResourceExhausted, match="over 1 MiB"):
        next(pdf_pages(data, PageLimits(max_content_bytes=1 * MiB)))


def test_streams_in_ascii_filters_and_arrays_are_counted() -> None:
    ops = b"0 0 m 1 1 l S\n" * (3 * MiB // 14)
    hexed = zlib.compress(ops).hex().encode() + b">"
    head = b"/Filter [/ASCIIHexDecode /FlateDecode] /Length %d >>" % len(hexed)
    two = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [4 0 R 5 0 R] >>"
    data = _pdf([CATALOG, PAGES, two, b"<< " + head + b"\nstream\n" + hexed + b"\nendstream", _stream(ops)])
    with pytest.raises(ResourceExhausted):
        ContentGuard(data, 5 * MiB).check(0)  # 3 + 3 MiB: each stream alone is under the limit
    ContentGuard(data, 7 * MiB).check(0)


def test_a_form_that_draws_itself_is_refused() -> None:
    """PDFium follows such a loop ~40 forms deep: a 600-byte file drawing itself twice did not load in 40 s."""
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /F1 5 0 R >> >> "
    page = _page(b"/Resources << /XObject << /F1 5 0 R >> >> ")
    data = _pdf([CATALOG, PAGES, page, _stream(b"/F1 Do\n"), _stream(b"/F1 Do /F1 Do\n", form)])
    with pytest.raises(ResourceExhausted, match="PDF page 1 draws a form that draws itself"):
        ContentGuard(data, MiB).check(0)


@pytest.mark.parametrize(
    "draw",
    [b"/F#31 Do", b"/F1\x00Do", b"/F1 %a comment\nDo", b"/F1\nDo"],
    ids=["hex escape", "NUL", "comment", "newline"],
)
def test_names_are_read_as_pdfium_reads_them(draw: bytes) -> None:
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] "
    page = _page(b"/Resources << /XObject << /F1 5 0 R >> >> ")
    data = _pdf([CATALOG, PAGES, page, _stream((draw + b"\n") * 50_000), _stream(b"0 0 m 1 1 l S\n" * 100, form)])
    with pytest.raises(ResourceExhausted, match="draws over 32 MiB"):  # 50,000 x 1.4 KB = 67 MiB
        ContentGuard(data, 32 * MiB).check(0)


def test_chained_and_broken_streams_are_counted() -> None:
    ops = b"0 0 m 1 1 l S\n" * (3 * MiB // 14)
    twice = zlib.compress(zlib.compress(ops))
    double = b"<< /Filter [/FlateDecode /FlateDecode] /Length %d >>\nstream\n%s\nendstream" % (len(twice), twice)
    bad = b"<< /Filter /ASCIIHexDecode /Length 3 >>\nstream\nzz>\nendstream"  # not hex: counted as its 3 bytes
    two = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [4 0 R 5 0 R] >>"
    data = _pdf([CATALOG, PAGES, two, bad, double])
    with pytest.raises(ResourceExhausted):
        ContentGuard(data, 2 * MiB).check(0)  # the broken stream does not switch the guard off
    ContentGuard(data, 4 * MiB).check(0)


def test_papers_pass_and_a_file_pypdf_cannot_read_is_left_to_pdfium(shared_data: Path) -> None:
    for path in sorted((shared_data / "pdf_documents").glob("*.pdf")):
        data = path.read_bytes()
        guard = ContentGuard(data, MiB)
        sizes = [guard.measure(index) for index in range(len(guard._reader.pages))]
        assert None not in sizes and 0 < max(sizes) < MiB, path.name  # type: ignore[operator]
    assert ContentGuard(b"%PDF-1.5 nothing else", MiB).measure(0) is None  # PDFium gives the reason


def test_the_server_refuses_the_item_and_the_stream_goes_on(fake_client: Client) -> None:
    items = [pdf_item("bomb", content_bomb(40)), image_item("after", WHITE, "image/png")]
    acks = list(fake_client.ingest("bombs", items))
    assert [(a.id, a.ok) for a in acks] == [("bomb", False), ("after", True)]
    assert acks[0].error_code == "RESOURCE_EXHAUSTED" and "max_page_content_mb" in acks[0].error


def test_shared_forms_are_counted_once_per_file() -> None:
    """Forms in 30 layers, each drawing both forms of the next layer: 2^30 paths, two forms a layer.
    Visiting every path would never end; the drawing is 2^30 times the last layer's, over the limit."""
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] "
    layers, objects = 30, [CATALOG, PAGES, _page(b"/Resources << /XObject << /A 5 0 R /B 6 0 R >> >> "), b""]
    objects[3] = _stream(b"/A Do /B Do\n")
    for layer in range(layers):
        first = 5 + 2 * layer  # this layer's two forms; the next layer's are first + 2 and first + 3
        if layer < layers - 1:
            res = b"/Resources << /XObject << /A %d 0 R /B %d 0 R >> >> " % (first + 2, first + 3)
            body = _stream(b"/A Do /B Do\n", form + res)
        else:
            body = _stream(b"0 0 m 1 1 l S\n", form)
        objects += [body, body]
    guard = ContentGuard(_pdf(objects), 32 * MiB)
    with pytest.raises(ResourceExhausted):
        guard.check(0)
    assert len(guard._forms) <= 2 * layers


def test_a_pdf_whose_pages_draw_too_much_together_is_refused_at_the_page_that_goes_over(
    no_pdfium_pages: list[int],
) -> None:
    data = many_pages(20, 2)  # 20 × 2 MiB: each page far under max_page_content_mb
    assert len(data) < 50_000
    pages = pdf_pages(data, PageLimits(max_pdf_content_bytes=9 * MiB))
    assert [next(pages).number for _ in range(4)] == [1, 2, 3, 4]  # 8 MiB
    with pytest.raises(ResourceExhausted) as err:
        next(pages)
    assert str(err.value).startswith("PDF pages 1-5 draw 10.0 MiB of content together")
    assert "the limit for one PDF is 9 MiB (setting max_pdf_content_mb)" in str(err.value)
    assert no_pdfium_pages == [0, 1, 2, 3]  # page 5 was refused before PDFium loaded it
    assert len(list(pdf_pages(data, PageLimits()))) == 20  # 40 MiB: under the default 512
