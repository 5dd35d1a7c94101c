"""Combining per-candidate signals (dense cosine, late-interaction MaxSim, BM25) into one score.

Signals live on different scales (cosine in [-1, 1], MaxSim grows with query length, BM25 is
unbounded), so every strategy first makes them comparable over the candidate set. The default,
weighted z-scores, is the best of these on BEIR SciFact with all-MiniLM-L6-v2 (see
docs/benchmarks.md): dense alone 0.648 nDCG@10, MaxSim alone 0.528, z(dense) + z(BM25) +
0.3 z(MaxSim) 0.730.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmsearch.protocol.vocab import Fusion


def _zscore(x: np.ndarray) -> np.ndarray:
    """(n,) scores -> (n,) standard scores; all zeros when the scores do not vary (or n is 0)."""
    if not x.size:
        return np.zeros_like(x)
    std = float(x.std())
    return (x - float(x.mean())) / std if std > 1e-9 else np.zeros_like(x)


def zscores(values: Mapping[str, float]) -> dict[str, float]:
    """Candidate id -> score, as standard scores over these candidates (search's MaxSim cascade
    and per-space normalisation)."""
    z = _zscore(np.fromiter(values.values(), dtype=np.float64, count=len(values)))
    return dict(zip(values, z.tolist(), strict=True))


def _matrix(signals: Mapping[str, Mapping[str, float]], ids: list[str]) -> dict[str, np.ndarray]:
    """Signal name -> scores aligned with ids; a candidate a signal did not score gets that
    signal's minimum over the candidates (absent from BM25 = shares no term)."""
    out = {}
    for name, scores in signals.items():
        if not scores:
            continue
        floor = min(scores.values())
        out[name] = np.array([scores.get(i, floor) for i in ids], dtype=np.float64)
    return out


def weighted_zscore(
    signals: Mapping[str, Mapping[str, float]], ids: list[str], weights: Mapping[str, float]
) -> np.ndarray:
    total = np.zeros(len(ids))
    for name, col in _matrix(signals, ids).items():
        total += weights.get(name, 0.0) * _zscore(col)
    return total


def rrf(
    signals: Mapping[str, Mapping[str, float]], ids: list[str], weights: Mapping[str, float], k: int = 60
) -> np.ndarray:
    """Reciprocal rank fusion: sum of weight / (k + rank) over signals that scored the candidate."""
    total = np.zeros(len(ids))
    index = {i: n for n, i in enumerate(ids)}
    for name, scores in signals.items():
        w = weights.get(name, 0.0)
        for rank, cid in enumerate(sorted(scores, key=scores.__getitem__, reverse=True)):
            if cid in index:
                total[index[cid]] += w / (k + rank + 1)
    return total


def dbsf(signals: Mapping[str, Mapping[str, float]], ids: list[str], weights: Mapping[str, float]) -> np.ndarray:
    """Distribution-based score fusion (as in Qdrant): each signal scaled so mean +- 3 sigma maps to
    [0, 1], then a weighted sum."""
    total = np.zeros(len(ids))
    for name, col in _matrix(signals, ids).items():
        mean, std = float(col.mean()), float(col.std())
        lo, hi = mean - 3 * std, mean + 3 * std
        scaled = (col - lo) / (hi - lo) if hi - lo > 1e-9 else np.full_like(col, 0.5)
        total += weights.get(name, 0.0) * np.clip(scaled, 0.0, 1.0)
    return total


def squash(fused: np.ndarray, fusion: Fusion, total_weight: float = 1.0) -> np.ndarray:
    """Maps fused scores into [0, 1], monotonically, so thresholds have one range for every strategy.
    For z-scores: the logistic of the weight-averaged z-score (a candidate 2 sigma above the
    candidates' mean on every signal scores 0.88). RRF and DBSF are divided by the weight sum, so
    that no weights can push the best candidates past 1 and clip them into a tie."""
    total_weight = max(total_weight, 1e-9)
    if fusion in (Fusion.WEIGHTED_ZSCORE, Fusion.CALIBRATED_ZSCORE):
        return 1.0 / (1.0 + np.exp(-fused / total_weight))
    if fusion == Fusion.RRF:
        return np.clip(fused * 60 / total_weight, 0.0, 1.0)  # rank 1 on every signal -> 60/61
    if fusion == Fusion.DBSF:
        return np.clip(fused / total_weight, 0.0, 1.0)  # +3 sigma on every signal -> 1.0
    return np.clip(fused, 0.0, 1.0)  # maxsim: already a mean cosine
