"""Where a page query's time goes on a ColPali collection: the server's own timings (encode, first
stage + MaxSim, ranking), the whole call through the client (gRPC and protobuf on top), and a
cProfile of the search in-process (the ten costliest functions by own time).

    PYTHONPATH=. python benchmarks/colpali_search_profile.py --model DIR --pages 250,1000 [--out results.json]

DIR is a tiny checkpoint (tests/tiny_colpali.py's build_tiny("colpali", root)); pages are generated
(benchmarks/colpali_first_stage.py) and ingested with `ocr: never`; 50 queries, each once to warm up.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from pathlib import Path


def profile(model: str, n: int, queries: list[str]) -> dict:
    from benchmarks.colpali_first_stage import page_pngs, tiny_server_settings
    from mmsearch.client import Client
    from mmsearch.protocol.vocab import Fusion
    from mmsearch.server.app import create_server
    from mmsearch.server.catalog import Catalog
    from mmsearch.server.search import Searcher, SearchParams
    from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2

    pngs = page_pngs(n)
    settings = tiny_server_settings()
    app = create_server(settings)
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=3600, retries=0) as client:
            client.create_collection("bench", page_kind="colpali", page_model=model, ocr="never")
            items = (
                ingest_pb2.IngestItem(id=f"p{i}", image=common_pb2.Image(data=p, mime_type="image/png"))
                for i, p in enumerate(pngs)
            )
            t = time.perf_counter()
            assert all(a.ok for a in client.ingest("bench", items))
            ingest_s = time.perf_counter() - t
            ranking = search_pb2.RankingOptions(fusion=search_pb2.FUSION_STRATEGY_MAXSIM)
            client_ms: list[float] = []
            server: dict[str, list[float]] = {"encode": [], "retrieve": [], "rerank": [], "total": []}
            for q in queries * 2:
                t = time.perf_counter()
                res = client.search("bench", q, top_k=10, ranking=ranking)
                client_ms.append((time.perf_counter() - t) * 1000)
                for key in server:
                    server[key].append(getattr(res.timings, f"{key}_ms"))
        searcher = Searcher(Catalog(app.store, app.encoders, settings), settings)
        params = [SearchParams(collection="bench", text=q, top_k=10, fusion=Fusion.MAXSIM) for q in queries]
        prof = cProfile.Profile()
        prof.enable()
        for p in params:
            searcher.search(p)
        prof.disable()
    finally:
        app.stop(grace=None)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(10)
    half = len(queries)
    return {
        "pages": n,
        "ingest_pages_per_s": n / ingest_s,
        "client_ms_p50": statistics.median(client_ms[half:]),
        **{f"server_{k}_ms_p50": statistics.median(v[half:]) for k, v in server.items()},
        "profile_top10_tottime": out.getvalue().splitlines()[-14:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pages", default="250,1000")
    ap.add_argument("--out")
    args = ap.parse_args()
    from benchmarks.colpali_first_stage import WORDS

    qrng = random.Random(1)
    queries = [" ".join(qrng.choice(WORDS) for _ in range(qrng.randint(3, 6))) for _ in range(50)]
    results = {"model": args.model, "runs": [profile(args.model, int(n), queries) for n in args.pages.split(",")]}
    results["load"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
