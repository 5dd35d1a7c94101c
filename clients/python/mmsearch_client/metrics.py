"""Ranking metrics, as trec_eval / pytrec_eval compute them (the numbers BEIR, MTEB and ViDoRe report).

`ranked` is a run's document ids, best first; `rel` maps judged ids to integer grades. A grade of
0 or below means "judged not relevant" (pytrec_eval's default relevance level is 1), so a negative
grade counts exactly like 0 or an unjudged id: no gain, not found, not a hit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence


def ndcg_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains (the grade) and log2(rank + 1) discounts; 0 when nothing is relevant."""
    dcg = sum(max(0, rel.get(d, 0)) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """Share of the relevant ids found in the first k; 0 when nothing is relevant."""
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant id within the first k; 0 when there is none."""
    return next((1 / (i + 1) for i, d in enumerate(ranked[:k]) if rel.get(d, 0) > 0), 0.0)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], rounds: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Per-query scores of two runs over the same queries: the mean difference a - b, a paired
    bootstrap 95% interval for it (queries resampled with replacement), and how many queries got
    better or worse."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two equally long, non-empty score lists")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(rounds))
    return {
        "difference": sum(diffs) / len(diffs),
        "ci95_low": means[int(0.025 * rounds)],
        "ci95_high": means[int(0.975 * rounds)],
        "queries_better": sum(d > 0 for d in diffs),
        "queries_worse": sum(d < 0 for d in diffs),
    }
