"""Odd and hostile pages (from a probe of the server): each is read as it displays or rejected on its
own with a reason that names it, and the stream goes on."""

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import create_server

from .conftest import fake_settings
from .pagegen import encrypted_pdf
from .test_pages import image_item, pdf_item


def _pdf(objects: list[bytes]) -> bytes:
    out, offsets = b"%PDF-1.5\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def _png(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


WHITE = _png(Image.new("RGB", (300, 100), "white"))


def test_a_pdf_page_that_cannot_be_loaded_rejects_its_item_only(fake_client: Client) -> None:
    catalog, page = b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"
    cycle = _pdf([catalog, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", page])  # the page tree lists itself
    missing = _pdf([catalog, b"<< /Type /Pages /Kids [3 0 R 9 0 R] /Count 2 >>", page])  # a kid that is not there
    for name, data in (("cycle", cycle), ("missing", missing)):
        before, after = image_item("before", WHITE, "image/png"), image_item("after", WHITE, "image/png")
        items = [before, pdf_item(name, data), after]
        acks = list(fake_client.ingest(f"pdf-{name}", items))  # the whole call ended INTERNAL
        assert [(a.id, a.ok) for a in acks] == [("before", True), (name, False), ("after", True)]
        assert acks[1].error_code == "INVALID_ARGUMENT" and "PDF page" in acks[1].error


def test_a_pdf_without_pages_is_not_called_encrypted(fake_client: Client) -> None:
    from pypdf import PdfWriter

    zero = io.BytesIO()
    PdfWriter().write(zero)
    # PDFium's reason for the empty PDF was its last error: another PDF's ("encrypted"), or "Success".
    acks = list(fake_client.ingest("zero", [pdf_item("locked", encrypted_pdf()), pdf_item("empty", zero.getvalue())]))
    assert [a.ok for a in acks] == [False, False]
    assert acks[0].error == "PDF is encrypted (password required)"
    assert "encrypted" not in acks[1].error and "no pages" in acks[1].error


def test_pages_are_read_as_they_display(fake_client: Client) -> None:
    font = ImageFont.load_default(size=48)
    transparent = Image.new("RGBA", (900, 300), (0, 0, 0, 0))  # black text on nothing: it was stored black on black
    ImageDraw.Draw(transparent).text((20, 100), "TRANSPARENT INVOICE 98765", fill=(0, 0, 0, 255), font=font)
    upright = Image.new("RGB", (900, 300), "white")
    ImageDraw.Draw(upright).text((20, 100), "ROTATED RECEIPT 4471", fill="black", font=font)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned, shown upright (every phone photo): it was read sideways
    sideways = _png(upright.rotate(90, expand=True), "JPEG", exif=exif.tobytes())
    keyed = Image.new("L", (900, 300), 7)  # grey 7 marked transparent (a colour key, as PNG optimisers write)
    ImageDraw.Draw(keyed).text((20, 100), "KEYED INVOICE 5150", fill=0, font=font)
    items = [
        image_item("transparent", _png(transparent), "image/png"),
        image_item("keyed", _png(keyed, transparency=7), "image/png"),
        image_item("phone", sideways, "image/jpeg"),
    ]
    assert all(a.ok for a in fake_client.ingest("shown", items))
    page = fake_client.get_page("shown", "transparent", 1)
    assert "TRANSPARENT" in page.text and "98765" in page.text
    page = fake_client.get_page("shown", "keyed", 1)
    assert "KEYED" in page.text and "5150" in page.text
    page = fake_client.get_page("shown", "phone", 1)
    assert (page.width, page.height) == (900, 300) and "ROTATED" in page.text and "4471" in page.text


def test_an_image_too_thin_to_read_is_named(fake_client: Client) -> None:
    thin = _png(Image.new("RGB", (1, 20000), "white"))
    acks = list(fake_client.ingest("thin", [image_item("strip", thin, "image/png")]))
    assert not acks[0].ok and "1×20000 px image is too thin to read" in acks[0].error  # the reason was empty
    assert all(a.ok for a in fake_client.ingest("thin", [image_item("ok", WHITE, "image/png")]))
    with pytest.raises(MMSearchError) as err:  # INTERNAL before
        fake_client.search("thin", "", image=(thin, "image/png"))
    assert err.value.code.name == "INVALID_ARGUMENT" and "too thin to read" in err.value.details


def test_undecodable_image_messages_name_no_python_object(fake_client: Client) -> None:
    broken = WHITE[:40]  # a PNG header and little else
    acks = list(fake_client.ingest("broken", [image_item("cut", broken, "image/png")]))
    assert not acks[0].ok and acks[0].error_code == "INVALID_ARGUMENT"
    assert "BytesIO" not in acks[0].error and "image" in acks[0].error


def test_a_page_with_too_many_words_is_refused(tmp_path: Path, shared_data: Path) -> None:
    """A page's words become one point's token vectors: an 800,000-word page asked for terabytes."""
    app = create_server(fake_settings(tmp_path, max_message_mb=8, max_page_words=500))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as client:
            data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()  # page 1: 395 words, page 2: 619
            ack = next(iter(client.ingest("words", [pdf_item("attention", data)])))
            assert not ack.ok and ack.error_code == "RESOURCE_EXHAUSTED"
            assert "words in its text layer; the limit is 500 (setting max_page_words)" in ack.error
            assert ack.error.startswith("PDF page 2 has ")
    finally:
        app.stop(grace=None)


def test_an_item_the_client_cannot_encode_is_named(fake_client: Client) -> None:
    """Metadata nested deeper than protobuf encodes failed inside gRPC's request iterator: UNKNOWN,
    "Exception iterating requests!", with the reason lost."""
    from mmsearch.v1 import ingest_pb2

    nested: dict = {}
    level = nested
    for _ in range(120):
        level["n"] = {}
        level = level["n"]
    deep = ingest_pb2.IngestItem(id="deep", text="a note")
    try:
        deep.metadata.fields.update(nested)
    except Exception:  # this protobuf refuses it already: nothing reaches the client
        pytest.skip("protobuf refuses the nesting when the item is built")
    with pytest.raises(MMSearchError) as err:
        list(fake_client.ingest("deep", [ingest_pb2.IngestItem(id="first", text="stored first"), deep]))
    assert err.value.code.name == "INVALID_ARGUMENT" and "item 1 ('deep') cannot be encoded" in err.value.details
