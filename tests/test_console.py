"""The web console in a real headless Chromium (Debian package `chromium`, driven by Playwright):
a deep link runs its search and renders the receipt's card, a page opens, files upload with per-file
errors. Screenshots go to $MMSEARCH_SCREENSHOTS (default: the test's tmp dir)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mmsearch.server.app import App, create_server

from .conftest import fake_settings, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install -y chromium (scripts/run.sh does)"),
]


@pytest.fixture
def console(tmp_path: Path, shared_data: Path) -> Iterator[tuple[App, str]]:
    app = create_server(fake_settings(tmp_path / "data", http_port=free_port()))
    assert app.http is not None
    base = f"http://127.0.0.1:{app.http.port}"
    receipt = (shared_data / "sroie_receipts" / "images" / "002.jpg").read_bytes()  # MR D.I.Y., "TOTAL RM 33.90"
    items = [
        {"id": "receipt-002", "image": {"data": base64.b64encode(receipt).decode(), "mimeType": "image/jpeg"}},
        {"id": "refund-policy", "text": "Refunds: a receipt is needed; exchanges within 7 days of purchase."},
    ]
    requests = [{"collection": "kb", "createCollection": True, "item": it} for it in items]
    r = httpx.post(f"{base}/mmsearch.v1.IngestService/IngestBatch", json={"requests": requests}, timeout=300)
    assert all(a.get("ok") for a in r.json()["acks"]), r.text
    yield app, base
    app.stop(grace=None)


@pytest.fixture
def page(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1400, "height": 900})
        browser.close()


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MMSEARCH_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_deep_link_renders_the_receipt_card_and_its_page(console: tuple[App, str], page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, base = console
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/?collection=kb&q=receipt%20total")
    card = page.locator('.card[data-doc="receipt-002"]')
    card.wait_for(timeout=30_000)
    assert card.locator(".thumb img").is_visible()  # the page's thumbnail
    assert card.locator(".hit").count() >= 1  # matched words drawn over it
    assert "MR D.I.Y." in card.locator(".snippet").inner_text()  # the OCR text of the scan
    assert card.locator(".source").inner_text() == "words: ocr (rapidocr det=tiny rec=latin)"  # what read it
    assert page.locator('.card[data-doc="refund-policy"]').is_visible()  # text and pages in one list
    assert page.locator("#collection").input_value() == "kb"
    assert "2 documents" in page.locator("#collection-info").inner_text()
    page.screenshot(path=str(shots(tmp_path) / "console-results.png"))
    card.click()
    dialog = page.locator("#page-view")
    dialog.locator(".page-image img").wait_for(timeout=10_000)
    assert "receipt-002" in dialog.inner_text()
    assert dialog.locator(".word").count() > 20  # every OCR'd word has its box
    page.screenshot(path=str(shots(tmp_path) / "console-page.png"))
    assert errors == []


def test_upload_lands_good_files_and_names_the_bad_one(console: tuple[App, str], page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, base = console
    good = tmp_path / "notes.txt"
    good.write_text("Harbour freight invoices are archived for seven years.")
    bad = tmp_path / "slides.docx"
    bad.write_bytes(b"PK\x03\x04 not for us")
    page.goto(f"{base}/?collection=kb")
    page.locator("#collection option").first.wait_for(state="attached")
    page.set_input_files("#files", [str(good), str(bad)])
    page.locator("#uploads li.ok").wait_for(timeout=30_000)
    page.locator("#uploads li.error").wait_for(timeout=30_000)
    assert "notes.txt" in page.locator("#uploads li.ok").inner_text()
    bad_row = page.locator("#uploads li.error").inner_text()
    assert "slides.docx" in bad_row and "unsupported file type" in bad_row
    page.fill("#q", "harbour freight archive")
    page.press("#q", "Enter")
    page.locator('.card[data-doc="notes"]').wait_for(timeout=30_000)
    page.on("dialog", lambda d: d.accept())
    page.locator('.card[data-doc="notes"] .delete').click()
    page.locator('.card[data-doc="notes"]').wait_for(state="detached", timeout=30_000)
    page.screenshot(path=str(shots(tmp_path) / "console-upload.png"))


def test_query_by_example_image(console: tuple[App, str], page, tmp_path: Path, shared_data: Path) -> None:  # type: ignore[no-untyped-def]
    _, base = console
    photo = tmp_path / "photo.jpg"  # a crop of the receipt, as a phone photo of it would be
    from PIL import Image

    Image.open(shared_data / "sroie_receipts" / "images" / "002.jpg").crop((0, 80, 459, 330)).save(photo)
    page.goto(f"{base}/?collection=kb")
    page.locator("#collection option").first.wait_for(state="attached")
    page.set_input_files("#qimage", str(photo))
    page.locator('.card[data-doc="receipt-002"]').wait_for(timeout=60_000)
    assert "photo.jpg" in page.locator("#qimage-name").inner_text()


@pytest.fixture
def colpali_console(tmp_path: Path, tiny_colpali_dir: Path) -> Iterator[str]:
    """A collection of pages searched by a tiny random ColPali model alone (ocr: never)."""
    from .pagegen import text_page
    from .tiny_colpali import build_tiny

    model = str(build_tiny("colpali", tiny_colpali_dir))
    app = create_server(fake_settings(tmp_path / "data", http_port=free_port(), allowed_models=["*"]))
    assert app.http is not None
    base = f"http://127.0.0.1:{app.http.port}"
    config = {"pageEncoder": {"kind": "colpali", "model": model}, "ocr": "OCR_MODE_NEVER"}
    r = httpx.post(f"{base}/mmsearch.v1.CollectionService/CreateCollection", json={"name": "cp", "config": config})
    assert r.status_code == 200, r.text
    pages = [text_page([f"quarterly report {i}", "revenue by region"], size=(900, 600)) for i in range(2)]
    items = [{"id": f"scan-{i}", "image": {"data": base64.b64encode(p).decode(), "mimeType": "image/png"}}
             for i, p in enumerate(pages)]  # fmt: skip
    r = httpx.post(f"{base}/mmsearch.v1.IngestService/IngestBatch", timeout=300,
                   json={"requests": [{"collection": "cp", "item": it} for it in items]})  # fmt: skip
    assert all(a.get("ok") for a in r.json()["acks"]), r.text
    yield base
    app.stop(grace=None)


def test_colpali_cards_show_matched_patches_and_the_similarity_map(colpali_console: str, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = colpali_console
    body = {"collection": "cp", "query": {"text": "quarterly report"}, "explain": True, "topK": 2}
    found = httpx.post(f"{base}/mmsearch.v1.SearchService/Search", json=body, timeout=60).json()["results"]
    for r in found:  # the explanation names patches with their boxes, inside the page
        ex = r["explanation"]
        boxes = [m["box"] for m in ex["matches"] if m["documentToken"].startswith("patch")]
        assert boxes and len(boxes) == len(ex["matches"])
        for b in boxes:
            x0, y0, x1, y1 = (b.get(k, 0.0) for k in ("x0", "y0", "x1", "y1"))  # proto3 JSON omits zeros
            assert 0 <= x0 < x1 <= ex["pageWidth"] and 0 <= y0 < y1 <= ex["pageHeight"]

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/?collection=cp&q=quarterly%20report")
    card = page.locator('.card[data-doc="scan-0"]')
    card.wait_for(timeout=60_000)
    patches = card.locator(".thumb .patch")
    assert 1 <= patches.count() <= 5  # the strongest patches, each drawn once
    thumb = card.locator(".thumb img").bounding_box()
    for i in range(patches.count()):
        b = patches.nth(i).bounding_box()
        assert thumb["x"] - 1 <= b["x"] and b["x"] + b["width"] <= thumb["x"] + thumb["width"] + 1
        assert thumb["y"] - 1 <= b["y"] and b["y"] + b["height"] <= thumb["y"] + thumb["height"] + 1
        assert "patch r" in (patches.nth(i).get_attribute("title") or "")
    card.click()
    dialog = page.locator("#page-view")
    dialog.locator(".page-image img").wait_for(timeout=10_000)
    assert dialog.locator(".page-image .patch").count() == patches.count()
    dialog.locator("#heat-toggle").check()
    heat = dialog.locator(".page-image canvas.heat")
    heat.wait_for(timeout=30_000)
    grid = httpx.post(f"{base}/mmsearch.v1.PageService/GetSimilarityMap", timeout=60, json={
        "collection": "cp", "documentId": "scan-0", "page": 1, "query": "quarterly report"}).json()  # fmt: skip
    assert (heat.get_attribute("width"), heat.get_attribute("height")) == (str(grid["cols"]), str(grid["rows"]))
    assert dialog.locator("#heat-token option").count() == len(grid["queryTokens"]) + 1
    dialog.locator("#heat-token").select_option("1")  # one query token's map
    dialog.locator(".page-image canvas.heat").wait_for()
    page.screenshot(path=str(shots(tmp_path) / "console-colpali.png"))
    dialog.locator("#heat-toggle").uncheck()
    assert dialog.locator(".page-image canvas.heat").count() == 0
    assert errors == []


def test_a_dropped_folder_uploads_every_file_in_it(console: tuple[App, str], page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real folder drop through Chromium's own drag-and-drop input (DevTools Input.dispatchDragEvent
    with a folder's path, as the OS hands one over): the console walks the folder, uploads each file
    with its own row and names the one it cannot take."""
    _, base = console
    folder = tmp_path / "handbook"
    (folder / "travel").mkdir(parents=True)
    (folder / "leave.txt").write_text("Annual leave requests go to the team lead two weeks ahead.")
    (folder / "travel" / "trains.md").write_text("Train travel over four hours may be booked in first class.")
    (folder / "travel" / "map.key").write_bytes(b"not a document")
    page.goto(f"{base}/?collection=kb")
    page.locator("#collection option").first.wait_for(state="attached")
    drop = page.locator("#drop").bounding_box()
    x, y = drop["x"] + drop["width"] / 2, drop["y"] + drop["height"] / 2
    cdp = page.context.new_cdp_session(page)
    data = {"items": [], "files": [str(folder)], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})
    rows = page.locator("#uploads li")
    settled = "document.querySelectorAll('#uploads li.ok, #uploads li.error').length === 3"
    page.wait_for_function(settled, timeout=60_000)
    text = {rows.nth(i).locator(".name").inner_text(): rows.nth(i) for i in range(rows.count())}
    assert set(text) == {"handbook/leave.txt", "handbook/travel/trains.md", "handbook/travel/map.key"}
    assert text["handbook/travel/trains.md"].get_attribute("class") == "ok"
    assert "unsupported file type" in text["handbook/travel/map.key"].inner_text()
    page.fill("#q", "first class train travel")
    page.press("#q", "Enter")
    page.locator('.card[data-doc="handbook/travel/trains"]').wait_for(timeout=30_000)
    page.screenshot(path=str(shots(tmp_path) / "console-folder-drop.png"))
