"""Ranking weights for a fine-tuned SciFact model, chosen on held-out TRAIN queries, then the test queries
scored once. OUT is the folder benchmarks/scifact_holdout_split.py writes (qrels/holdout.tsv and
qrels/test.tsv over one corpus), so one ingested collection serves both splits.

1. a server with `--text-model MODEL --seal-points 2000` (as finetune_scifact.py) on WORK/data; the first
   eval ingests the corpus, later runs (and a restart on the same WORK) reuse the collection;
2. on the holdout split: the server defaults, then every (dense, MaxSim, BM25) weight triple of --grid
   (`mmsearch eval --weights` syntax, ':' separates alternatives) -> WORK/holdout.json;
3. with --test: the test split with the server defaults, the holdout's best weights (or --weights) and
   dense alone (1,0,0) -> WORK/test.json. Nothing is chosen on the test queries.

The server runs with OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1: with the two cores shared by other jobs
(load 10-13), numpy's BLAS threads made token pooling up to 10x slower, and torch's two threads made a
query 5x slower (p50 2.0 s against 0.35 s, same collection, interleaved).

    HF_HUB_OFFLINE=1 PYTHONPATH=. nice -n 10 uv run python benchmarks/scifact_holdout_eval.py \\
        --model /tmp/b14f/run/epoch-2 --beir /tmp/b14f/scifact --work /tmp/b14f/eval-e2 --test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.finetune_scifact import MMSEARCH, start_server

# BM25 stays at 1: the fused score is a weighted sum of z-scores, so only the ratios matter
GRID = "0.7:1:1.5:2:3,0:0.3:0.6,1"


def _eval(port: int, beir: Path, split: str, extra: list[str], out: Path, env: dict[str, str]) -> list[dict]:
    cmd = [*MMSEARCH, "eval", "beir", str(beir), "--split", split, "--server", f"127.0.0.1:{port}", "--out", str(out)]
    t0 = time.monotonic()
    subprocess.run([*cmd, *extra], check=True, env=env)
    print(f"{split} {extra or 'defaults'}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return [{k: v for k, v in r.items() if k != "per_query_ndcg@10"} for r in json.loads(out.read_text())["results"]]


def _weights(name: str) -> str:
    """The weights of a row name: "weights 1.5/0.3/1" -> "1.5,0.3,1"."""
    return name.removeprefix("weights ").replace("/", ",")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="text model folder (or all-MiniLM-L6-v2)")
    ap.add_argument("--beir", required=True, help="folder from scifact_holdout_split.py")
    ap.add_argument("--work", required=True, help="server data, logs and results of this model")
    ap.add_argument("--grid", default=GRID, help=f"weight alternatives for the holdout (default {GRID})")
    ap.add_argument("--test", action="store_true", help="then score the test split once")
    ap.add_argument("--weights", help="test with these weights instead of the holdout's best")
    args = ap.parse_args()
    beir, work = Path(args.beir), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    server, port = start_server(args.model, work / "data", work / "server.log", env)
    timings: dict[str, float] = {}
    try:
        holdout_file = work / "holdout.json"
        if holdout_file.exists():
            holdout = json.loads(holdout_file.read_text())
        else:
            t0 = time.monotonic()
            defaults = _eval(port, beir, "holdout", [], work / "holdout-defaults.raw.json", env)
            timings["ingest_and_holdout_defaults_s"] = round(time.monotonic() - t0, 1)
            t0 = time.monotonic()
            grid = _eval(port, beir, "holdout", ["--weights", args.grid], work / "holdout-grid.raw.json", env)
            timings["holdout_grid_s"] = round(time.monotonic() - t0, 1)
            best = max(grid, key=lambda r: r["ndcg@10"])  # first of equals: the grid's order
            holdout = {"model": args.model, "grid": args.grid, "defaults": defaults[0], "rows": grid}
            holdout |= {"best": _weights(best["config"]), "best_ndcg@10": best["ndcg@10"], "timings": timings}
            holdout_file.write_text(json.dumps(holdout, indent=1) + "\n")
        print(f"holdout best {holdout['best']}: {holdout['best_ndcg@10']}", file=sys.stderr, flush=True)
        if args.test:
            chosen = args.weights or holdout["best"]
            t0 = time.monotonic()
            rows = _eval(port, beir, "test", [], work / "test-defaults.raw.json", env)
            rows += _eval(port, beir, "test", ["--weights", chosen, "--weights", "1,0,0"], work / "test.raw.json", env)
            test = {"model": args.model, "weights": chosen, "rows": rows, "seconds": round(time.monotonic() - t0, 1)}
            (work / "test.json").write_text(json.dumps(test, indent=1) + "\n")
            for r in rows:
                print(f"test {r['config']}: nDCG@10 {r['ndcg@10']}", file=sys.stderr)
        return 0
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    sys.exit(main())
