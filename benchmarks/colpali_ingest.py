"""ColPali ingest through the server (ocr: never) against the bare model on the same pages, interleaved.

    PYTHONPATH=. python benchmarks/colpali_ingest.py --model DIR [--pages 64] [--rounds 3] [--out results.json]

Each round encodes the same generated page images (PNG bytes) twice: "bare" decodes them and calls
the encoder's encode_images in batches (the processor and the model, what byaldi runs per page), and
"server" sends them through a gRPC ingest stream to an in-process server (embedded storage, the
collection's page encoder the same checkpoint, no OCR). Rounds alternate so that a shared machine's
load falls on both alike; the ratio of the medians is what to read.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pages", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--no-keep-page-images", action="store_true", help="the server keeps no page images")
    args = ap.parse_args()

    from PIL import Image

    from benchmarks.colpali_first_stage import page_pngs, tiny_server_settings
    from mmsearch.client import Client
    from mmsearch.server.app import create_server
    from mmsearch.v1 import common_pb2, ingest_pb2

    pngs = page_pngs(args.pages)
    settings = tiny_server_settings().model_copy(update={"keep_page_images": not args.no_keep_page_images})
    app = create_server(settings)
    bare_rates, server_rates = [], []
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=3600, retries=0) as client:
            client.create_collection("bench", page_kind="colpali", page_model=args.model, ocr="never")
            encoder = app.encoders.get("colpali", args.model)
            encoder.encode_images([Image.open(io.BytesIO(pngs[0])).convert("RGB")])  # warm
            for r in range(args.rounds):
                t = time.perf_counter()
                batch = 8
                for s in range(0, len(pngs), batch):
                    encoder.encode_images([Image.open(io.BytesIO(p)).convert("RGB") for p in pngs[s : s + batch]])
                bare_rates.append(len(pngs) / (time.perf_counter() - t))
                items = [
                    ingest_pb2.IngestItem(id=f"r{r}-p{i}", image=common_pb2.Image(data=p, mime_type="image/png"))
                    for i, p in enumerate(pngs)
                ]
                t = time.perf_counter()
                acks = list(client.ingest("bench", items))
                server_rates.append(len(pngs) / (time.perf_counter() - t))
                assert all(a.ok for a in acks), [a for a in acks if not a.ok][:3]
                print(f"round {r}: bare {bare_rates[-1]:.1f} pages/s, server {server_rates[-1]:.1f} pages/s")
    finally:
        app.stop(grace=None)
    result = {
        "pages": args.pages,
        "rounds": args.rounds,
        "bare_pages_per_s": statistics.median(bare_rates),
        "server_pages_per_s": statistics.median(server_rates),
        "ratio": statistics.median(server_rates) / statistics.median(bare_rates),
        "keep_page_images": not args.no_keep_page_images,
        "load": os.getloadavg(),
    }
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
