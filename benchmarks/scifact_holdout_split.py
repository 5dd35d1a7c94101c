"""Splits SciFact's TRAIN queries into fine-tuning pairs and a holdout split, so ranking weights (and the
number of epochs) are chosen on held-out train queries and the test queries are scored only once.

Seeded, by query id: 20% of the train queries (all their judged pairs) become qrels/holdout.tsv, the other
80% become training pairs (claim + "<title>. <text>", as finetune_scifact.py writes them). OUT is a BEIR
folder (links to corpus.jsonl, queries.jsonl and the original qrels/test.tsv, plus qrels/holdout.tsv), so
one ingested collection serves `mmsearch eval beir OUT --split holdout` and `--split test`.

    python3 benchmarks/scifact_holdout_split.py --out /tmp/b14f/scifact --pairs /tmp/b14f/pairs-80.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_scifact import texts

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact"


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    rows = []
    for i, line in enumerate(path.open(encoding="utf-8")):
        qid, did, grade = line.rstrip("\n").split("\t")[:3]
        if i == 0 and not grade.lstrip("-").isdigit():
            continue  # header
        rows.append((qid, did, int(grade)))
    return rows


def split(root: Path, out: Path, pairs: Path, fraction: float, seed: int) -> dict:
    rows = read_qrels(root / "qrels" / "train.tsv")
    qids = sorted({q for q, _, _ in rows}, key=int)
    random.Random(seed).shuffle(qids)
    holdout = set(qids[: round(len(qids) * fraction)])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        link = out / name
        link.unlink(missing_ok=True)
        link.symlink_to((root / name).resolve())
    with (out / "qrels" / "holdout.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q}\t{d}\t{g}\n" for q, d, g in rows if q in holdout)
    corpus, queries = texts(root)
    n = 0
    with pairs.open("w", encoding="utf-8") as fh:
        for q, d, g in rows:
            if q not in holdout and g > 0:
                fh.write(json.dumps({"query": queries[q], "positive": corpus[d]}) + "\n")
                n += 1
    return {
        "seed": seed,
        "holdout_fraction": fraction,
        "train_queries": len(qids) - len(holdout),
        "holdout_queries": len(holdout),
        "train_pairs": n,
        "holdout_pairs": sum(1 for q, _, g in rows if q in holdout and g > 0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", required=True, help="BEIR folder to write (test + holdout qrels)")
    ap.add_argument("--pairs", required=True, help="training pairs JSONL to write")
    ap.add_argument("--fraction", type=float, default=0.2, help="share of train queries held out")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    print(json.dumps(split(Path(args.data), Path(args.out), Path(args.pairs), args.fraction, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
