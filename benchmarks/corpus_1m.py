"""The corpus of the 1M-passage storage-only runs: SciFact's abstracts plus a copy of each with its
words shuffled (seeded), because SciFact alone gives at most ~786k distinct 64-word windows.

    python benchmarks/corpus_1m.py ../shared/data/beir_scifact OUT.jsonl [--seed 7]

then `mmsearch bench --storage-only --corpus OUT.jsonl --passages 1000000 --words 64 ...`.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("beir", type=Path, help="a BEIR folder with corpus.jsonl (SciFact)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    docs = [json.loads(line) for line in (args.beir / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    with args.out.open("w", encoding="utf-8") as out:
        for d in docs:
            out.write(json.dumps({"text": f"{d.get('title', '')}. {d['text']}"}) + "\n")
        for d in docs:
            words = f"{d.get('title', '')}. {d['text']}".split()
            rng.shuffle(words)
            out.write(json.dumps({"text": " ".join(words)}) + "\n")
    print(f"{2 * len(docs):,} texts -> {args.out}")


if __name__ == "__main__":
    main()
