"""Page images and PDFs through the server: OCR default encoder, text layers, bad input."""

from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.v1 import common_pb2, ingest_pb2

from .documents import text_item
from .pagegen import blank_pdf, encrypted_pdf, multipage_tiff, png_header, text_page


def image_item(doc_id: str, data: bytes, mime: str) -> ingest_pb2.IngestItem:
    return ingest_pb2.IngestItem(id=doc_id, source=doc_id, image=common_pb2.Image(data=data, mime_type=mime))


def pdf_item(doc_id: str, data: bytes) -> ingest_pb2.IngestItem:
    return ingest_pb2.IngestItem(id=doc_id, source=doc_id, pdf=data)


def test_image_pages_are_ocred_and_searchable(fake_client: Client) -> None:
    items = [
        image_item(
            "invoice", text_page(["INVOICE 4471", "Harbour Freight Logistics", "Total due 812.50"]), "image/png"
        ),
        image_item("menu", text_page(["Lunch menu", "Tomato soup", "Grilled salmon"], fmt="JPEG"), "image/jpeg"),
        image_item("scan", multipage_tiff([["first page about tulips"], ["second page about glaciers"]]), "image/tiff"),
        text_item("note", "A text note about salmon fishing in rivers."),
    ]
    acks = list(fake_client.ingest("mixed", items))
    assert [a.ok for a in acks] == [True] * 4, acks
    assert [a.points for a in acks] == [1, 1, 2, 1]
    r = fake_client.search("mixed", "harbour freight invoice", top_k=3)
    top = r.results[0]
    assert top.document_id == "invoice" and top.modality == common_pb2.MODALITY_PAGE and top.page == 1
    assert "Harbour Freight" in top.snippet
    r = fake_client.search("mixed", "glaciers", top_k=1)
    assert (r.results[0].document_id, r.results[0].page) == ("scan", 2)
    # one ranked list over both modalities, and the modality filter selects either
    both = fake_client.search("mixed", "salmon", top_k=5)
    assert {x.document_id for x in both.results[:2]} == {"menu", "note"}
    pages = fake_client.search("mixed", "salmon", top_k=5, modalities=["page"])
    assert all(x.modality == common_pb2.MODALITY_PAGE for x in pages.results)
    texts = fake_client.search("mixed", "salmon", top_k=5, modalities=["text"])
    assert [x.document_id for x in texts.results] == ["note"]


def test_query_by_example_image(fake_client: Client) -> None:
    items = [
        image_item("invoice", text_page(["INVOICE 4471", "Harbour Freight Logistics"]), "image/png"),
        image_item("menu", text_page(["Lunch menu", "Tomato soup"]), "image/png"),
    ]
    assert all(a.ok for a in fake_client.ingest("ex", items))
    from mmsearch.v1 import search_pb2, search_pb2_grpc

    stub = search_pb2_grpc.SearchServiceStub(fake_client.channel)
    photo = common_pb2.Image(data=text_page(["harbour freight"], size=(500, 120), fmt="JPEG"), mime_type="image/jpeg")
    r = stub.Search(search_pb2.SearchRequest(collection="ex", query=search_pb2.Query(image=photo), top_k=1))
    assert r.results[0].document_id == "invoice"
    # text and image together
    q = search_pb2.Query(text="tomato soup", image=photo)
    r = stub.Search(search_pb2.SearchRequest(collection="ex", query=q, top_k=2))
    assert {x.document_id for x in r.results} == {"invoice", "menu"}


def test_text_and_image_query_weighs_both(fake_client: Client) -> None:
    # Receipts of two shops with the same goods; the query image is one shop's receipt, the query text
    # names the other shop. The image's ~30 words used to be encoded with the typed ones as one text,
    # which drowned them: the image's shop came first whatever the text said.
    def receipt(shop: str, n: int) -> bytes:
        lines = [shop, f"Receipt number {n}0{n}", "Cashier Anna Lee", "Socket wrench set 19.99"]
        return text_page([*lines, "Cordless drill battery 54.00", "Paint roller 7.50", f"Total {n}1.49"])

    shops = {"harbour": "HARBOUR FREIGHT TOOLS", "diy": "MR DIY HARDWARE"}
    items = [image_item(f"{k}-{n}", receipt(shop, n), "image/png") for k, shop in shops.items() for n in (1, 2, 3)]
    assert all(a.ok for a in fake_client.ingest("both", items))
    image = (receipt(shops["harbour"], 7), "image/png")
    alone = [r.document_id for r in fake_client.search("both", "", image=image, top_k=3).results]
    assert all(d.startswith("harbour-") for d in alone), alone
    both = [r.document_id for r in fake_client.search("both", "mr diy", image=image, top_k=3).results]
    assert all(d.startswith("diy-") for d in both), both


def test_explain_points_at_word_boxes(fake_client: Client) -> None:
    # Exact token vectors: pooled, a stored vector stands for several words and is named by one of them.
    fake_client.create_collection("p", compression={"tokens": "float32", "token_pool_factor": 1})
    list(fake_client.ingest("p", [image_item("inv", text_page(["INVOICE 4471", "Harbour Freight"]), "image/png")]))
    r = fake_client.search("p", "harbour", top_k=1, explain=True)
    m = max(r.results[0].explanation.matches, key=lambda m: m.similarity)
    assert m.document_token == "Harbour" and m.similarity > 0.99
    assert 30 <= m.box.x0 < m.box.x1 <= 400 and 80 <= m.box.y0 < m.box.y1 <= 140  # second line, left
    # the page was OCR'd (the server's default models, in its worker processes), and says so
    assert r.results[0].explanation.text_source == "ocr"
    assert r.results[0].explanation.ocr_reader == "rapidocr det=tiny rec=latin"
    # and `mmsearch search --explain --json` prints it too (it printed signals and matches only)
    from mmsearch.client.cli import result_dict

    printed = result_dict(r.results[0])["explanation"]
    assert (printed["text_source"], printed["ocr_reader"]) == ("ocr", "rapidocr det=tiny rec=latin")


def test_pdfs_use_their_text_layer_page_by_page(fake_client: Client, shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()
    empty = (shared_data / "pdf_documents" / "layout-parser-paper-with-empty-pages.pdf").read_bytes()
    acks = list(fake_client.ingest("pdfs", [pdf_item("attention", data), pdf_item("layout", empty)]))
    assert [a.ok for a in acks] == [True, True] and [a.points for a in acks] == [15, 4]
    r = fake_client.search("pdfs", "scaled dot-product attention", top_k=3, all_passages=True)
    assert r.results[0].document_id == "attention" and r.results[0].page in (2, 4, 5)
    explained = fake_client.search("pdfs", "scaled dot-product attention", top_k=1, explain=True).results[0]
    assert (explained.explanation.text_source, explained.explanation.ocr_reader) == ("pdf", "")
    got = fake_client.get_collection("pdfs")  # a point per page (page_regions is off by default)
    assert got.point_count == 19 and got.document_count == 2


def test_bad_pages_are_rejected_per_item(fake_client: Client) -> None:
    good = text_page(["a fine page"])
    jpeg = text_page(["a jpeg"], fmt="JPEG")
    items = [
        image_item("ok", good, "image/png"),
        image_item("truncated", good[: len(good) // 2], "image/png"),
        image_item("garbage", b"not an image at all", "image/png"),
        image_item("liar", jpeg, "image/png"),
        image_item("zero", png_header(0, 10), "image/png"),
        image_item("huge", png_header(50_000, 50_000), "image/png"),
        image_item("gif", b"GIF89a....", "image/gif"),
        pdf_item("broken", b"%PDF-1.7\nthis is not really a pdf"),
        pdf_item("locked", encrypted_pdf()),
        pdf_item("long", blank_pdf(2001)),
        text_item("text", "still fine"),
    ]
    acks = {a.id: a for a in fake_client.ingest("bad", items)}
    assert acks["ok"].ok and acks["text"].ok
    expect = {
        "truncated": ("INVALID_ARGUMENT", "cannot be decoded"),
        "garbage": ("INVALID_ARGUMENT", "does not match the bytes"),
        "liar": ("INVALID_ARGUMENT", "mime type image/png does not match the bytes (image/jpeg)"),
        "zero": ("INVALID_ARGUMENT", ""),
        "huge": ("RESOURCE_EXHAUSTED", ""),
        "gif": ("INVALID_ARGUMENT", "unsupported image type"),
        "broken": ("INVALID_ARGUMENT", "PDF cannot be opened"),
        "locked": ("INVALID_ARGUMENT", "encrypted"),
        "long": ("RESOURCE_EXHAUSTED", "2,001 pages; the limit is 2,000"),
    }
    for doc_id, (code, text) in expect.items():
        assert not acks[doc_id].ok, doc_id
        assert acks[doc_id].error_code == code, (doc_id, acks[doc_id].error)
        assert text in acks[doc_id].error, (doc_id, acks[doc_id].error)
    assert fake_client.get_collection("bad").document_count == 2
    assert fake_client.health() == "SERVING"


@pytest.mark.slow
def test_receipts_and_forms_with_minilm(minilm_client: Client, shared_data: Path) -> None:
    import json

    receipts = shared_data / "sroie_receipts"
    manifest = [json.loads(x) for x in (receipts / "manifest.jsonl").open()][:8]
    items = [image_item(m["id"], (receipts / m["image"]).read_bytes(), "image/jpeg") for m in manifest]
    assert all(a.ok for a in minilm_client.ingest("receipts", items))
    hits = 0
    for m in manifest:
        r = minilm_client.search("receipts", f"receipt from {m['company']} on {m['date']}", top_k=3)
        hits += r.results[0].document_id == m["id"]
    assert hits >= 6, hits


def test_tesseract_engine_option(tmp_path: Path) -> None:
    """The fast OCR engine (Debian tesseract-ocr, installed by scripts/run.sh where apt is available)."""
    import shutil

    from mmsearch.server.app import create_server

    from .conftest import fake_settings

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract binary not installed (apt-get install tesseract-ocr)")
    app = create_server(fake_settings(tmp_path, ocr_engine="tesseract"))
    try:
        with Client(f"127.0.0.1:{app.port}", retries=0) as c:
            item = image_item("inv", text_page(["INVOICE 4471", "Harbour Freight Logistics"]), "image/png")
            assert all(a.ok for a in c.ingest("t", [item]))
            r = c.search("t", "harbour freight", top_k=1, explain=True)
            assert r.results[0].document_id == "inv" and "Harbour" in r.results[0].snippet
    finally:
        app.stop(grace=None)


def test_ocr_leaves_the_encoders_threads_alone() -> None:
    """OMP_THREAD_LIMIT=1 in the server's own environment capped torch's OpenMP pool at one thread and
    halved the text encoder's speed; only the tesseract process gets it now."""
    import os
    import shutil

    from mmsearch.server.ingest import ocr

    ocr.RapidOCREngine()
    assert "OMP_THREAD_LIMIT" not in os.environ
    if shutil.which("tesseract") is not None:
        assert ocr.TesseractOCR().env["OMP_THREAD_LIMIT"] == "1"
        assert "OMP_THREAD_LIMIT" not in os.environ
