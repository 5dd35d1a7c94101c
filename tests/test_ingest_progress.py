"""Progress of long items while they ingest, and the CLI's handling of a run's inputs (same ids,
files of other types in a folder)."""

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmsearch.client import Client
from mmsearch.client.cli import main
from mmsearch.server.app import App, create_server
from mmsearch.v1 import ingest_pb2

from .conftest import fake_settings
from .pagegen import text_page
from .test_pages import image_item, pdf_item


@pytest.fixture
def small_batches(tmp_path: Path) -> Iterator[App]:
    """Pages encoded two at a time, so a 15-page PDF is stored over several batches."""
    app = create_server(fake_settings(tmp_path, max_message_mb=8, encode_batch_size=2))
    yield app
    app.stop(grace=None)


def test_a_long_pdf_reports_its_pages_as_they_are_stored(small_batches: App, shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()
    items = [pdf_item("attention", data), image_item("note", text_page(["a short note"]), "image/png")]
    with Client(f"127.0.0.1:{small_batches.port}", timeout=60, retries=0) as client:
        acks = list(client.ingest("papers", items, report_progress=True))
        results = [a for a in acks if not a.HasField("progress")]
        assert [(a.id, a.ok, a.points) for a in results] == [("attention", True, 15), ("note", True, 1)]
        reports = [a for a in acks if a.HasField("progress")]
        # before the PDF's result, page counts that only grow, each below the 15 pages it will have
        assert len(reports) >= 3 and all(a.sequence == 0 and a.id == "attention" for a in reports)
        stored = [a.progress.points_stored for a in reports]
        assert stored == sorted(set(stored)) and 0 < stored[0] and stored[-1] < 15
        assert {a.progress.points_total for a in reports} == {15}
        assert acks.index(results[0]) > acks.index(reports[-1])
        # not asked for: one acknowledgement per item, as before
        plain = list(client.ingest("papers2", [pdf_item("attention", data)]))
        assert [(a.ok, a.points, a.HasField("progress")) for a in plain] == [(True, 15, False)]
        # the unary call has no use for progress: its list holds one result per item
        request = ingest_pb2.IngestRequest(
            collection="papers3", item=pdf_item("attention", data), create_collection=True, report_progress=True
        )
        batch = client.ingest_stub.IngestBatch(ingest_pb2.IngestBatchRequest(requests=[request]))
        assert [(a.ok, a.points, a.HasField("progress")) for a in batch.acks] == [(True, 15, False)]


def test_cli_rejects_a_second_file_with_the_same_id(
    small_batches: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder, words in (("a", ["first receipt"]), ("b", ["second receipt"])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "receipt.png").write_bytes(text_page(words))
    (tmp_path / "b" / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "b" / "old.DOC").write_bytes(b"\xd0\xcf")
    server = ["--server", f"127.0.0.1:{small_batches.port}"]
    assert main(["ingest", str(tmp_path / "a"), str(tmp_path / "b"), "-c", "dup", "-q", *server]) == 1
    out, err = capsys.readouterr()
    # The second receipt.png would have replaced the first, stored alone, with "0 rejected".
    assert f"rejected {tmp_path / 'b' / 'receipt.png'}: id 'receipt' is already used in this run by " in err
    assert str(tmp_path / "a" / "receipt.png") in err and "ingested 1 documents (1 passages/pages)" in out
    # Files of other types in a folder are counted, not silently dropped; they fail nothing.
    assert f"skipped 2 files of unsupported types in {tmp_path / 'b'} (1 .doc, 1 .docx)" in err
    with Client(f"127.0.0.1:{small_batches.port}", timeout=20, retries=0) as client:
        page = client.get_page("dup", "receipt", 1)
        assert "first" in page.text.lower()


def test_cli_creates_a_collection_with_its_own_settings(small_batches: App, capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--server", f"127.0.0.1:{small_batches.port}"]
    assert main(["create", "scans", "--ocr", "always", "--field", "year=integer", "--max-words", "80", *server]) == 0
    described = "text fake:fake-32; pages text layer or OCR + text model; ocr always"
    assert f"created 'scans': {described}" in capsys.readouterr().out
    with Client(f"127.0.0.1:{small_batches.port}", timeout=20, retries=0) as client:
        config = client.get_collection("scans").config
        assert (config.chunking.max_words, [f.key for f in config.indexed_fields]) == (80, ["year"])
    assert main(["collections", *server]) == 0
    assert f"  {described}" in capsys.readouterr().out
    # the server's own refusals, as one line each
    assert main(["create", "scans", *server]) == 2
    assert "ALREADY_EXISTS" in (err := capsys.readouterr().err) and "OCR mode" in err
    assert main(["create", "img", "--ocr", "never", *server]) == 2
    assert "ocr never needs a page encoder" in capsys.readouterr().err
    for bad in (["--page-model", "colpali"], ["--field", "year=date"]):
        with pytest.raises(SystemExit, match="bad --"):
            main(["create", "x", *bad, *server])


def _long_pdf(shared_data: Path, copies: int = 4) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    source = PdfReader(shared_data / "pdf_documents" / "attention.pdf")
    for _ in range(copies):
        for page in source.pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_progress_is_per_request(small_batches: App, shared_data: Path) -> None:
    data = (shared_data / "pdf_documents" / "attention.pdf").read_bytes()
    requests = [
        ingest_pb2.IngestRequest(collection="per", item=pdf_item(n, data), create_collection=True, report_progress=ask)
        for n, ask in (("asked", True), ("quiet", False))
    ]
    with Client(f"127.0.0.1:{small_batches.port}", timeout=60, retries=0) as client:
        acks = list(client.ingest_stub.Ingest(iter(requests), timeout=60))
    reports = {a.id for a in acks if a.HasField("progress")}
    assert reports == {"asked"} and [a.id for a in acks if not a.HasField("progress")] == ["asked", "quiet"]


def _collect_holding(lock: Any) -> None:
    with lock:
        gc.collect()


def test_pdfs_dropped_half_read_do_not_block_later_ones(small_batches: App, shared_data: Path) -> None:
    """A PDF left half-read (its call cancelled) kept its page generator, open document and all, until
    the garbage collector found it; closing it then waited for the PDFium lock, held forever when the
    collector ran on a thread inside it: every later PDF hung (the 6th round, in a reviewer's run)."""
    from mmsearch.server.ingest.pages import PDFIUM

    long_pdf = _long_pdf(shared_data)  # 60 pages, stored two at a time
    short = (shared_data / "pdf_documents" / "layout-parser-paper-with-empty-pages.pdf").read_bytes()
    with Client(f"127.0.0.1:{small_batches.port}", timeout=60, retries=0) as client:
        for round_ in range(3):  # the forced collection below hangs the first round without the fix
            item = pdf_item(f"long{round_}", long_pdf)
            request = ingest_pb2.IngestRequest(collection="drop", item=item, create_collection=True)
            request.report_progress = True
            call = client.ingest_stub.Ingest(iter([request]), timeout=60)
            for ack in call:
                assert ack.HasField("progress"), ack  # cancelled at its first report, mid-PDF
                call.cancel()
                break
            collector = threading.Thread(target=_collect_holding, args=(PDFIUM,), daemon=True)
            collector.start()  # the collector running on a thread that holds the lock
            collector.join(30)
            assert not collector.is_alive(), "the garbage collector deadlocked on the PDFium lock"
            acks = list(client.ingest_stub.Ingest(iter([ingest_pb2.IngestRequest(
                collection="drop", item=pdf_item(f"short{round_}", short), create_collection=True
            )]), timeout=30))  # fmt: skip
            assert [(a.ok, a.points) for a in acks] == [(True, 4)]
        assert {r.document_id for r in client.search("drop", "layout", top_k=20).results} >= {"short0", "short2"}
