"""Long pages ranked by their best region (ingest/regions.py): layout regions from a real PDF's text
layer, stored beside the page and grouped back to it by search, with the region's box explained."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.server.app import create_server
from mmsearch.server.ingest.pages import PageLimits, Word, pdf_pages
from mmsearch.server.ingest.regions import MIN_PAGE_WORDS, REGION_WORDS, page_regions
from mmsearch.v1 import ingest_pb2

from .conftest import fake_settings
from .qdrant_standins import memory_store


@pytest.fixture(params=["edge", "remote"])
def regions_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """A server that stores page regions (setting page_regions, off by default)."""
    store = memory_store() if request.param == "remote" else None
    app = create_server(fake_settings(tmp_path, max_message_mb=8, page_regions=True), store=store)
    with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as client:
        yield client
    app.stop(grace=None)


def _page(shared_data: Path, name: str, number: int) -> list[Word]:
    data = (shared_data / "pdf_documents" / name).read_bytes()
    return next(p for p in pdf_pages(data, PageLimits()) if p.number == number).words or []


def test_regions_follow_captions_and_headings(shared_data: Path) -> None:
    words = _page(shared_data, "attention.pdf", 6)  # Table 1 at the top, then 3.5 and section 4
    regions = page_regions(words)
    texts = [r.text(words) for r in regions]
    assert 4 <= len(regions) <= 20 and all(len(r.own) <= REGION_WORDS for r in regions)
    # every word of the page is in exactly one region's own words, in reading order
    assert [i for r in regions for i in r.own] == list(range(len(words)))
    table = regions[0]
    assert table.kind == "caption" and texts[0].startswith("Table 1: Maximum path lengths")
    x0, y0, x1, _ = table.box(words)
    assert y0 < 0.2 * 1650 and x1 - x0 > 500  # the caption spans the text width at the top of the page
    # text under a heading carries it; the caption and heading words count twice for BM25
    positional = [t for t in texts if "sine and cosine" in t]
    assert positional and all(t.startswith("3.5 Positional Encoding") for t in positional)
    caption = " ".join(words[i].text for i in table.emphasis)
    assert caption.startswith("Table 1: Maximum") and caption.endswith("restricted self-attention.")
    assert table.lexical_text(words) == f"{texts[0]} {caption}" and len(table.emphasis) < len(table.own)
    # "Table 1 ..." inside a sentence is no caption
    body = page_regions(_page(shared_data, "attention.pdf", 9))
    assert [r.kind for r in body].count("caption") == 1


def test_short_pages_are_one_region(shared_data: Path) -> None:
    words = _page(shared_data, "attention.pdf", 13)  # a figure page: 127 words
    assert len(words) < MIN_PAGE_WORDS and page_regions(words) == []
    assert page_regions([]) == []


def test_search_ranks_a_page_by_its_best_region(regions_client: Client, shared_data: Path) -> None:
    fake_client = regions_client
    data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()
    acks = list(fake_client.ingest("paper", [ingest_pb2.IngestItem(id="attention", pdf=data)]))
    assert acks[0].ok and acks[0].points == 15  # pages, as before: regions ride along with their page
    regions = sum(len(page_regions(p.words or [])) for p in pdf_pages(data, PageLimits()))
    got = fake_client.get_collection("paper")  # a point per page and one per region of each long page
    assert regions > 15 and got.point_count == 15 + regions and got.document_count == 1
    query = "maximum path lengths per-layer complexity sequential operations for different layer types"
    r = fake_client.search("paper", query, top_k=10, all_passages=True, explain=True)
    pages = [x.page for x in r.results]
    assert len(pages) == len(set(pages))  # a page's regions are grouped back to it: each page once
    top = r.results[0]
    assert top.page == 6 and top.snippet.startswith("Table 1")  # the best region's text is the snippet
    box = top.explanation.region
    assert box.y1 > box.y0 and box.y0 < 0.2 * top.explanation.page_height  # Table 1 is at the top
    assert all(m.box.x1 > m.box.x0 for m in top.explanation.matches if m.document_token.isalpha())
    from mmsearch.client.cli import result_dict  # `search --explain --json` prints the box

    printed = result_dict(top)["explanation"]["region"]
    assert printed["box"] == [box.x0, box.y0, box.x1, box.y1]
    assert printed["page_size"] == [top.explanation.page_width, top.explanation.page_height]
    # one result per document without all_passages; the page's own text still serves GetPage
    assert [x.document_id for x in fake_client.search("paper", query, top_k=5).results] == ["attention"]
    page = fake_client.get_page("paper", "attention", 6)
    assert page.text.startswith("Table 1") and len(page.words) > 400
