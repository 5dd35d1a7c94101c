"""rapidocr in worker processes (server/ingest/ocr_pool.py) on real scans: the same words and boxes
as in the server process, a clear error when a worker dies, and no worker left behind when the
server goes, however it goes. Data: ../shared/data (SROIE receipts, FUNSD forms)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PIL import Image

from mmsearch.server.errors import FailedPrecondition
from mmsearch.server.ingest.ocr import RapidOCREngine, get_ocr, ocr_provider
from mmsearch.server.ingest.ocr_pool import OCRFailed, OCRPool

from .conftest import SHARED as DATA

RECEIPT = DATA / "sroie_receipts" / "images" / "000.jpg"  # BOOK TA .K (TAMAN DAYA) SDN BHD, total 9.00
FORM = DATA / "funsd_forms" / "testing_data" / "images" / "82092117.png"  # fax cover sheet, "George Baroody"

needs_data = pytest.mark.skipif(not RECEIPT.exists() or not FORM.exists(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def pool() -> Iterator[OCRPool]:
    p = OCRPool(2)
    yield p
    p.close()


def _workers(p: OCRPool) -> list[int]:
    return [proc.pid for proc in (p._pool._processes or {}).values()] if p._pool else []  # type: ignore[union-attr]


def test_provider_choice() -> None:
    """auto takes ONNX Runtime's CUDA provider, else torch's GPU (ocr_torch.py), else the CPU; cuda
    insists on a GPU; cpu never looks. The GPU paths themselves: tests/test_ocr_torch.py, docs/ocr.md."""
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert ocr_provider("auto", cpu_only, torch_gpu=False) == "cpu"
    assert ocr_provider("auto", with_cuda, torch_gpu=False) == "cuda"
    assert ocr_provider("auto", with_cuda, torch_gpu=True) == "cuda"
    assert ocr_provider("auto", cpu_only, torch_gpu=True) == "torch"
    assert ocr_provider("cpu", with_cuda, torch_gpu=True) == "cpu"
    assert ocr_provider("cuda", with_cuda, torch_gpu=False) == "cuda"
    assert ocr_provider("cuda", cpu_only, torch_gpu=True) == "torch"
    with pytest.raises(FailedPrecondition, match="onnxruntime-gpu") as refused:
        ocr_provider("cuda", cpu_only, torch_gpu=False)
    assert "torch" in str(refused.value) and "ocr_device=auto or cpu" in str(refused.value)
    import onnxruntime
    import torch

    from mmsearch.server.ingest import ocr_torch

    def no_looking() -> bool:
        raise AssertionError("ocr_device=cpu looked for a GPU")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ocr_torch, "torch_cuda", no_looking)
        mp.setattr(onnxruntime, "get_available_providers", no_looking)
        assert ocr_provider("cpu") == "cpu"

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers() and not torch.cuda.is_available():
        assert ocr_provider("auto") == "cpu"
        with pytest.raises(FailedPrecondition):
            get_ocr("rapidocr", workers=1, device="cuda")  # refused before any worker starts


@needs_data
@pytest.mark.slow
def test_pool_reads_receipts_and_forms_as_in_process(pool: OCRPool) -> None:
    pages = [Image.open(RECEIPT), Image.open(FORM)]
    threads: list[threading.Thread] = []
    pooled: dict[int, list] = {}
    for i, page in enumerate(pages):  # both at once: one page per worker
        threads.append(threading.Thread(target=lambda i=i, page=page: pooled.__setitem__(i, pool.words(page))))
        threads[-1].start()
    for t in threads:
        t.join()
    in_process = RapidOCREngine()
    for i, page in enumerate(pages):
        words = pooled[i]
        assert words == in_process.words(page)  # same engine settings, same words and boxes
        for w in words:
            x0, y0, x1, y1 = w.box
            assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height, w
    receipt = " ".join(w.text.lower() for w in pooled[0])
    assert "book ta" in receipt and "9.00" in receipt and "25/12/2018" in receipt
    form = " ".join(w.text.lower() for w in pooled[1])
    assert "george baroody" in form and "confidential" in form


@needs_data
@pytest.mark.slow
def test_a_dead_worker_fails_its_page_clearly_and_the_next_page_is_read(pool: OCRPool) -> None:
    page = Image.open(RECEIPT)
    pool.words(page)  # workers up
    failed: list[BaseException] = []

    def read() -> None:
        try:
            pool.words(page)
        except BaseException as exc:  # collected for the assertion below
            failed.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)  # the page is in a worker (a receipt takes seconds)
    for pid in _workers(pool):
        os.kill(pid, signal.SIGKILL)
    reader.join(60)
    assert not reader.is_alive(), "the caller hung on a dead worker"
    assert len(failed) == 1 and isinstance(failed[0], OCRFailed)
    assert "worker process died" in str(failed[0])
    assert any(w.text.lower() == "total:" or "total" in w.text.lower() for w in pool.words(page))  # a new pool


_ORPHAN = """
import os, sys
from PIL import Image
from mmsearch.server.ingest.ocr_pool import OCRPool
if __name__ == "__main__":
    pool = OCRPool(2)
    pool.words(Image.new("RGB", (64, 32), "white"))
    print(" ".join(str(p.pid) for p in pool._pool._processes.values()), flush=True)
    if sys.argv[1] == "close":
        pool.close()
    os._exit(0)  # as the server does after stopping, or as kill -9 would: no interpreter clean-up
"""


@pytest.mark.parametrize("how", ["close", "exit"])
def test_workers_go_with_the_server(tmp_path: Path, how: str) -> None:
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(_ORPHAN))
    run = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    pids = [int(p) for p in run.stdout.split()]
    assert pids  # workers start on demand: one page started one
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, "an OCR worker outlived the server process"
        time.sleep(0.1)
