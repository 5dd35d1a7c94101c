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
