"""PDF pages are read in a process with a memory and a time limit (server/ingest/pdf_worker.py): pages
that draw too much by routes the guard does not follow fail their own item, and the rest goes on."""

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.server.app import create_server
from mmsearch.server.errors import ResourceExhausted
from mmsearch.server.ingest.pages import PDFIUM, PageLimits, pdf_pages
from mmsearch.server.ingest.pdf_worker import PDFReader

from .conftest import fake_settings
from .test_pages import pdf_item
from .test_pdf_guard import MiB, content_bomb, many_pages

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


def test_a_pdf_over_its_reading_time_stops_at_the_next_page(reader: PDFReader, shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()
    here = pdf_pages(data, PageLimits(pdf_timeout_s=1e-9))  # in the server process (pdf_worker_memory_mb 0)
    there = reader.pages(data, PageLimits(pdf_timeout_s=1e-9), always_render=True)
    for pages in (here, there):
        assert next(pages).number == 1  # any page takes longer than a nanosecond: the next is refused
        with pytest.raises(
            ResourceExhausted,
            match=r"^reading PDF page 1 took [0-9.]+ s; the limit for one PDF is "
            r"1e-09 s \(setting pdf_timeout_s\)$",
        ):
            next(pages)
    assert len(list(reader.pages(data, PageLimits(), always_render=False))) == 15  # the default: all of it


def test_waiting_for_pdfium_does_not_count_against_a_pdfs_time(shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "reliance.pdf").read_bytes()  # ~0.05 s a page
    pages = pdf_pages(data, PageLimits(pdf_timeout_s=1.0), always_render=True)
    assert next(pages).number == 1
    with PDFIUM:  # another stream's page holds PDFium for 2 s while this PDF waits for it
        waiting = threading.Thread(target=lambda: next(pages))
        waiting.start()
        time.sleep(2)
    waiting.join()
    assert [p.number for p in pages] == [3]  # page 2 was read after the wait, then page 3: no refusal


def test_a_pdf_reopened_in_a_new_worker_keeps_what_its_pages_drew(reader: PDFReader) -> None:
    pages = reader.pages(many_pages(12, 2), PageLimits(max_pdf_content_bytes=9 * MiB), always_render=False)
    assert [next(pages).number for _ in range(2)] == [1, 2]
    worker = reader._pool
    pids = list(worker._processes)  # type: ignore[union-attr]
    assert pids
    for pid in pids:  # another PDF's page kills the worker
        os.kill(pid, signal.SIGKILL)
    assert [next(pages).number for _ in range(2)] == [3, 4]  # reopened, once, in a new worker
    assert reader._pool is not worker
    with pytest.raises(ResourceExhausted, match=r"PDF pages 1-5 draw 10.0 MiB .* \(setting max_pdf_content_mb\)"):
        next(pages)


def test_the_server_refuses_a_pdf_over_its_content_limit_and_goes_on(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, max_pdf_content_mb=5))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as client:
            items = [pdf_item("long", many_pages(8, 1)), pdf_item("fine", many_pages(4, 1))]
            acks = list(client.ingest("pdfs", items))
            assert [(a.id, a.ok) for a in acks] == [("long", False), ("fine", True)]
            assert acks[0].error_code == "RESOURCE_EXHAUSTED"
            assert acks[0].error.startswith("PDF pages 1-6 draw 6.0 MiB") and "max_pdf_content_mb" in acks[0].error
    finally:
        app.stop(grace=None)
