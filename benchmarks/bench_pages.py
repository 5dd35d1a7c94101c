"""Page ingest benchmarks (issue 3): pages/s with the OCR default (scans and PDF text layers) and with a
tiny random ColPali model, and resident memory while ingesting long PDFs (it must not grow with the
page count). Runs an in-process server and talks to it over gRPC like any client.

    uv run python benchmarks/bench_pages.py [--receipts 20] [--pdf-pages 50 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from mmsearch.client import Client  # noqa: E402
from mmsearch.server.app import create_server  # noqa: E402
from mmsearch.server.settings import Settings  # noqa: E402
from mmsearch.v1 import collections_pb2, common_pb2, ingest_pb2  # noqa: E402


class PeakRSS:
    """Samples this process's resident memory every 50 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.base = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def long_pdf(pages: int) -> bytes:
    """`pages` pages cycled from attention.pdf (real text layers)."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(SHARED / "pdf_documents" / "attention.pdf"))
    out = pdfium.PdfDocument.new()
    while len(out) < pages:
        n = min(len(src), pages - len(out))
        out.import_pages(src, list(range(n)))
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def timed_ingest(client: Client, collection: str, items: list[ingest_pb2.IngestItem]) -> tuple[float, int]:
    t = time.perf_counter()
    acks = list(client.ingest(collection, items))
    bad = [a for a in acks if not a.ok]
    if bad:
        raise SystemExit(f"rejected: {bad[0].error}")
    return time.perf_counter() - t, sum(a.points for a in acks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--receipts", type=int, default=20)
    ap.add_argument("--pdf-pages", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--colpali-pages", type=int, default=20)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pages.json"))
    args = ap.parse_args()
    out: dict = {"machine": f"{os.cpu_count()} cores", "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_server(Settings(port=0, data_dir=Path(tmp)))
        client = Client(f"127.0.0.1:{app.port}", timeout=3600)
        client.embed(["warm up the text model"])

        manifest = [json.loads(x) for x in (SHARED / "sroie_receipts" / "manifest.jsonl").open()][: args.receipts]
        items = [
            ingest_pb2.IngestItem(
                id=m["id"], image=common_pb2.Image(data=(SHARED / "sroie_receipts" / m["image"]).read_bytes(),
                                                   mime_type="image/jpeg"))
            for m in manifest
        ]  # fmt: skip
        secs, pages = timed_ingest(client, "receipts", items)
        out["results"]["ocr_scans"] = {"pages": pages, "seconds": secs, "pages_per_s": pages / secs}
        print(f"OCR default, receipt scans: {pages} pages in {secs:.1f} s = {pages / secs:.2f} pages/s")

        for n in args.pdf_pages:
            data = long_pdf(n)
            with PeakRSS() as rss:
                secs, pages = timed_ingest(client, f"pdf{n}", [ingest_pb2.IngestItem(id=f"long{n}", pdf=data)])
            growth = (rss.peak - rss.base) / 2**20
            out["results"][f"pdf_{n}"] = {"pages": pages, "seconds": secs, "pages_per_s": pages / secs,
                                          "rss_base_mb": rss.base / 2**20, "rss_peak_growth_mb": growth}  # fmt: skip
            print(f"PDF text layer, {n} pages: {pages / secs:.2f} pages/s; peak RSS +{growth:.0f} MB "
                  f"over {rss.base / 2**20:.0f} MB")  # fmt: skip

        if args.colpali_pages:
            from tests.pagegen import text_page
            from tests.tiny_colpali import build_tiny

            model = build_tiny("colpali", Path(tmp) / "models")
            req = collections_pb2.CreateCollectionRequest(
                name="colpali", config=collections_pb2.CollectionConfig(
                    page_encoder=collections_pb2.EncoderSpec(kind="colpali", model=str(model))))  # fmt: skip
            client._call(client.collections.CreateCollection, req)
            pages_data = [text_page([f"page {i}", "quarterly report"]) for i in range(args.colpali_pages)]
            items = [ingest_pb2.IngestItem(id=f"p{i}", image=common_pb2.Image(data=d, mime_type="image/png"))
                     for i, d in enumerate(pages_data)]  # fmt: skip
            secs, pages = timed_ingest(client, "colpali", items)
            out["results"]["tiny_colpali_with_ocr"] = {"pages": pages, "seconds": secs, "pages_per_s": pages / secs}
            print(f"tiny ColPali (+OCR for page text): {pages / secs:.2f} pages/s")
        app.stop(None)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
