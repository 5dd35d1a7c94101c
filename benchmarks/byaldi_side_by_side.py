"""mmsearch beside byaldi on the same tiny ColPali checkpoint, pages and 50 text queries, in one run.

byaldi lives in its own environment (it is never a dependency of mmsearch):

    python3 -m uv venv /tmp/byaldi-env
    python3 -m uv pip install --python /tmp/byaldi-env/bin/python byaldi==0.0.7   # colpali-engine 0.3.18, torch 2.13
    python benchmarks/byaldi_side_by_side.py --model DIR --pages 250,1000 --out results.json

DIR is a checkpoint both load (tests/tiny_colpali.py's build_tiny("colpali", root)). Pages are
generated images (benchmarks/colpali_first_stage.py) written as PNG files; byaldi indexes the folder
(benchmarks/byaldi_runner.py, run with --byaldi-python) and mmsearch ingests the same files through
an in-process server (embedded storage, `ocr: never`, default compression), then both answer the same
queries (each once to warm up, then timed). byaldi scores every page by exact float32 MaxSim, so its
top 10 is the exact top 10 that mmsearch's is compared with.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def run_mmsearch(model: str, files: list[Path], queries: list[str]) -> dict:
    from mmsearch.client import Client
    from mmsearch.server.app import create_server
    from mmsearch.server.settings import Settings
    from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2

    settings = Settings(port=0, data_dir=Path(tempfile.mkdtemp()), text_kind="fake", text_model="fake-32",
                        allowed_models=["*"], max_message_mb=64)  # fmt: skip
    app = create_server(settings)
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=3600, retries=0) as client:
            client.create_collection("bench", page_kind="colpali", page_model=model, ocr="never")
            client.search("bench", "warm up the model", top_k=1)  # loads it, as byaldi's from_pretrained does
            items = (
                ingest_pb2.IngestItem(id=f.stem, image=common_pb2.Image(data=f.read_bytes(), mime_type="image/png"))
                for f in files
            )
            t = time.perf_counter()
            acks = list(client.ingest("bench", items))
            ingest_s = time.perf_counter() - t
            assert all(a.ok for a in acks)
            ranking = search_pb2.RankingOptions(fusion=search_pb2.FUSION_STRATEGY_MAXSIM)
            latencies, tops = [], []
            for q in queries * 2:
                t = time.perf_counter()
                res = client.search("bench", q, top_k=10, ranking=ranking)
                latencies.append((time.perf_counter() - t) * 1000)
                tops.append([r.document_id for r in res.results])
    finally:
        app.stop(grace=None)
    return {
        "index_s": ingest_s,
        "index_pages_per_s": len(files) / ingest_s,
        "search_ms_p50": statistics.median(latencies[len(queries) :]),
        "top10": tops[len(queries) :],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pages", default="250,1000")
    ap.add_argument("--byaldi-python", default="/tmp/byaldi-env/bin/python")
    ap.add_argument("--out")
    args = ap.parse_args()
    from benchmarks.colpali_first_stage import WORDS, page_image

    work = Path(tempfile.mkdtemp(prefix="byaldi-bench-"))
    rng = random.Random(0)
    qrng = random.Random(1)
    queries = [" ".join(qrng.choice(WORDS) for _ in range(qrng.randint(3, 6))) for _ in range(50)]
    (work / "queries.json").write_text(json.dumps(queries))
    sizes = [int(x) for x in args.pages.split(",")]
    files = []
    for i in range(max(sizes)):
        f = work / "all" / f"p{i:05d}.png"
        f.parent.mkdir(exist_ok=True)
        page_image(rng).save(f)
        files.append(f)
    results: dict = {"model": args.model, "queries": len(queries), "sizes": {}}
    for n in sizes:
        folder = work / f"pages-{n}"
        folder.mkdir()
        for f in files[:n]:
            (folder / f.name).symlink_to(f)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        runner = Path(__file__).with_name("byaldi_runner.py")
        command = [args.byaldi_python, str(runner), args.model, str(folder), str(work / "queries.json")]
        out = subprocess.run([*command, str(work / f"idx-{n}")], capture_output=True, text=True, env=env, check=True)
        byaldi = json.loads(out.stdout.strip().splitlines()[-1])
        mine = run_mmsearch(args.model, files[:n], queries)
        overlap = statistics.mean(
            len(set(a) & set(b)) / 10 for a, b in zip(mine.pop("top10"), byaldi.pop("top10"), strict=True)
        )
        results["sizes"][str(n)] = {"byaldi": byaldi, "mmsearch": {**mine, "overlap_with_exact@10": overlap}}
        results["load"] = os.getloadavg()
        print(n, json.dumps(results["sizes"][str(n)]))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
