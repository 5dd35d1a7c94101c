"""PDF pages are read in a process with a memory and a time limit (server/ingest/pdf_worker.py): pages
that draw too much by routes the guard does not follow fail their own item, and the rest goes on."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.server.app import create_server
from mmsearch.server.errors import ResourceExhausted
from mmsearch.server.ingest.pages import PageLimits, pdf_pages
from mmsearch.server.ingest.pdf_worker import PDFReader

from .conftest import fake_settings
from .test_pages import pdf_item
from .test_pdf_guard import content_bomb

UNGUARDED = 1 << 40  # the guard lets everything through: the process limits are what is tested


@pytest.fixture
def reader() -> Iterator[PDFReader]:
    r = PDFReader(memory_mb=450, page_timeout_s=60)  # the worker starts at ~160 MB of address space
    yield r
    r.close()


def _read(reader: PDFReader, data: bytes, **kw: object) -> list:
    return list(reader.pages(data, PageLimits(max_content_bytes=UNGUARDED, **kw), always_render=True))  # type: ignore[arg-type]


def test_pages_read_in_the_worker_are_the_pages_read_here(reader: PDFReader, shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "reliance.pdf").read_bytes()
    here = list(pdf_pages(data, PageLimits(), always_render=True))
    there = _read(reader, data)
    assert [(p.number, p.width, p.height, p.words) for p in there] == [
        (p.number, p.width, p.height, p.words) for p in here
    ]
    assert [p.image.tobytes() for p in there] == [p.image.tobytes() for p in here]


def test_a_page_over_the_memory_limit_fails_its_pdf_only(reader: PDFReader, shared_data: Path) -> None:
    good = (shared_data / "pdf_documents" / "reliance.pdf").read_bytes()
    other = reader.pages(good, PageLimits(), always_render=False)
    assert next(other).number == 1  # another PDF, open in the worker, half read
    with pytest.raises(ResourceExhausted, match=r"page 1 needs more memory .*450 MiB, setting pdf_worker_memory_mb"):
        _read(reader, content_bomb(24))  # ~480 MB in PDFium: it aborts the worker (twice: once more, fresh)
    assert [p.number for p in other] == [2, 3]  # reopened in the new worker
    assert len(_read(reader, good)) == 3


def test_a_page_over_the_time_limit_stops_its_worker(shared_data: Path) -> None:
    reader = PDFReader(memory_mb=2048, page_timeout_s=2)
    try:
        assert len(_read(reader, (shared_data / "pdf_documents" / "reliance.pdf").read_bytes())) == 3  # warm
        with pytest.raises(ResourceExhausted, match=r"PDF page 1 took over 2 s to read \(setting pdf_page_timeout_s\)"):
            _read(reader, content_bomb(96))  # ~2 GB of objects: several seconds
        assert len(_read(reader, content_bomb(1))) == 1  # a new worker
    finally:
        reader.close()


def test_the_server_reads_pdfs_in_its_reader_process(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, pdf_worker_memory_mb=450, max_page_content_mb=1024))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as client:
            items = [pdf_item("bomb", content_bomb(24)), pdf_item("fine", content_bomb(1))]
            acks = list(client.ingest("pdfs", items))
            assert [(a.id, a.ok) for a in acks] == [("bomb", False), ("fine", True)]
            assert acks[0].error_code == "RESOURCE_EXHAUSTED" and "pdf_worker_memory_mb" in acks[0].error
    finally:
        app.stop(grace=None)
