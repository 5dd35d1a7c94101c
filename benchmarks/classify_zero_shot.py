"""Zero-shot classification (the Classify RPC) on labelled sets built from ../shared/data, beside a
majority-class baseline. Results: benchmarks/results/classify.json; docs/classify.md.

1. Movie genres (together_movies/movies.json, 1000 overviews, 17 TMDB genres, 1-5 per movie):
   multi-label. Even positions are the dev half (the threshold and the baseline's k are chosen there),
   odd positions the test half (reported). Top-1 accuracy = the best label is one of the movie's genres.
   Label variants: the genre names alone, and "a <genre> movie".
2. Page types (receipt / form / paper, single-label): SROIE receipts (manifest ocr_text, the ground-truth
   transcripts), FUNSD forms (manifest text), the research-paper pages of pdf_documents (text layer).

Scores come from the server's own scoring function (server/classify.py `score_labels`, what the RPC
runs) over texts encoded in batches in this process: one RPC per input re-encodes the labels every time,
which on a shared 2-core machine took 5-7 s per call (tests/test_classify.py checks that the RPC gives
the same scores).

    uv run python benchmarks/classify_zero_shot.py [--limit N]   # bundled MiniLM
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.encoders.pool import EncoderPool
from mmsearch.protocol.vocab import Signal
from mmsearch.server.classify import score_labels
from mmsearch.server.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MULTI_WORD = ("Science Fiction", "TV Movie")
PAGE_LABELS = {
    "receipt": "a shop receipt with items, prices and a total",
    "form": "a form with fields to fill in",
    "paper": "a page of a research paper",
}
PAPERS = ("attention.pdf", "multi-column.pdf", "fr_olap.pdf", "layout-parser-paper-with-empty-pages.pdf")


def genres(text: str) -> set[str]:
    out = {g for g in MULTI_WORD if g in text}
    for g in out:
        text = text.replace(g, "")
    return out | set(text.split())


def micro_f1(gold: list[set[str]], predicted: list[set[str]]) -> float:
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    fp = sum(len(p - g) for g, p in zip(gold, predicted, strict=True))
    fn = sum(len(g - p) for g, p in zip(gold, predicted, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def classify_all(encoder: Encoder, texts: list[str], labels: list[Any]) -> list[dict[str, dict[str, float]]]:
    """Per text: label -> {"score", "dense", "maxsim"}, as the Classify RPC scores them."""
    pairs = [(x, "") if isinstance(x, str) else x for x in labels]
    names = [n for n, _ in pairs]
    label_vectors = encoder.encode_texts([d or n for n, d in pairs], as_query=True)
    settings = Settings()
    weights = {Signal.DENSE: settings.dense_weight, Signal.MAXSIM: settings.maxsim_weight}
    out = []
    for start in range(0, len(texts), 64):
        for document in encoder.encode_texts(texts[start : start + 64], as_query=False):
            scores = score_labels(names, label_vectors, document, weights)
            out.append({x.label: {"score": x.score, **x.signals} for x in scores})
    return out


def top1(rows: list[dict[str, dict[str, float]]], key: str = "score") -> list[str]:
    return [max(r, key=lambda label: r[label][key]) for r in rows]


def movies(c: Encoder, limit: int) -> dict[str, Any]:
    items = json.loads((DATA / "together_movies" / "movies.json").read_text())[:limit]
    gold = [genres(m["genres"]) for m in items]
    names = sorted({g for gs in gold for g in gs})
    dev, test = list(range(0, len(items), 2)), list(range(1, len(items), 2))
    counts = Counter(g for i in dev for g in gold[i])
    frequent = [g for g, _ in counts.most_common()]
    # Majority baseline: the k most frequent dev genres for every movie (k chosen on dev).
    best_k = max(
        range(1, len(names) + 1), key=lambda k: micro_f1([gold[i] for i in dev], [set(frequent[:k])] * len(dev))
    )
    out: dict[str, Any] = {
        "movies": len(items), "labels": names, "dev": len(dev), "test": len(test),
        "label_cardinality": round(float(np.mean([len(g) for g in gold])), 3),
        "majority": {
            "top1_label": frequent[0],
            "top1_accuracy": round(float(np.mean([frequent[0] in gold[i] for i in test])), 4),
            "k": best_k,
            "micro_f1": round(micro_f1([gold[i] for i in test], [set(frequent[:best_k])] * len(test)), 4),
        },
        "variants": {},
    }  # fmt: skip
    for variant, labels in (("names", names), ("a <genre> movie", [(g, f"a {g.lower()} movie") for g in names])):
        rows = classify_all(c, [m["overview"] for m in items], labels)
        res: dict[str, Any] = {}
        for signal in ("score", "dense", "maxsim"):
            best = top1(rows, signal)
            res[f"top1_accuracy_{signal}"] = round(float(np.mean([best[i] in gold[i] for i in test])), 4)
        grid = [round(t, 2) for t in np.arange(0.5, 0.99, 0.01)]

        def f1_at(t: float, idx: list[int], rows: list[dict[str, dict[str, float]]] = rows) -> float:
            return micro_f1([gold[i] for i in idx], [{g for g, s in rows[i].items() if s["score"] >= t} for i in idx])

        threshold = max(grid, key=lambda t: f1_at(t, dev))
        res.update(threshold_from_dev=threshold, micro_f1=round(f1_at(threshold, test), 4),
                   micro_f1_dev=round(f1_at(threshold, dev), 4))  # fmt: skip
        out["variants"][variant] = res
        print(variant, json.dumps(res))
    return out


def pages(c: Encoder) -> dict[str, Any]:
    texts, gold = [], []
    for line in (DATA / "sroie_receipts" / "manifest.jsonl").open():
        texts.append(json.loads(line)["ocr_text"])
        gold.append("receipt")
    for line in (DATA / "funsd_forms" / "manifest.jsonl").open():
        texts.append(json.loads(line)["text"])
        gold.append("form")
    for line in (DATA / "pdf_documents" / "pages.jsonl").open():
        page = json.loads(line)
        if page["file"] in PAPERS and page["text"].strip():
            texts.append(page["text"][:20000])
            gold.append("paper")
    counts = Counter(gold)
    out: dict[str, Any] = {"pages": dict(counts), "majority_accuracy": round(max(counts.values()) / len(gold), 4)}
    for variant, labels in (("names", list(PAGE_LABELS)), ("described", list(PAGE_LABELS.items()))):
        rows = classify_all(c, texts, labels)
        best = top1(rows)
        per_class = {k: round(float(np.mean([b == k for b, g in zip(best, gold, strict=True) if g == k])), 4)
                     for k in counts}  # fmt: skip
        out[variant] = {
            "accuracy": round(float(np.mean([b == g for b, g in zip(best, gold, strict=True)])), 4),
            "recall_per_class": per_class,
        }
        print("pages", variant, json.dumps(out[variant]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=1000, help="movies to use (default: all 1000)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "classify.json"))
    args = ap.parse_args()
    pool = EncoderPool("cpu", pinned=[("sentence-transformers", "all-MiniLM-L6-v2")])
    encoder = pool.get("sentence-transformers", "all-MiniLM-L6-v2")
    result = {"model": "all-MiniLM-L6-v2 (bundled)", "movies": movies(encoder, args.limit), "pages": pages(encoder)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
