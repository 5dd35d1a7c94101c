"""Fusion values pinned on small inputs computed by hand (server/ranking/fusion.py)."""

import math

import numpy as np
import pytest

from mmsearch.server.ranking import fusion

IDS = ["a", "b", "c"]
ONE = {"dense": 1.0, "maxsim": 1.0, "lexical": 1.0}


def test_zscore_of_a_known_vector() -> None:
    # mean 3, population std sqrt(2)
    z = fusion._zscore(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert z == pytest.approx([-math.sqrt(2), -math.sqrt(2) / 2, 0.0, math.sqrt(2) / 2, math.sqrt(2)])
    # no spread, no information: zeros, not a division by zero
    assert fusion._zscore(np.array([0.4, 0.4, 0.4])).tolist() == [0.0, 0.0, 0.0]


def test_a_missing_signal_takes_the_signals_minimum() -> None:
    # "c" shares no term with the query: BM25 did not score it, so it gets BM25's lowest score (1.0)
    signals = {"dense": {"a": 0.9, "b": 0.5, "c": 0.1}, "lexical": {"a": 3.0, "b": 1.0}, "maxsim": {}}
    cols = fusion._matrix(signals, IDS)
    assert set(cols) == {"dense", "lexical"}  # a signal with no scores at all is left out
    assert cols["lexical"].tolist() == [3.0, 1.0, 1.0]
    # z(dense) = [1, 0, -1] * sqrt(3/2); z(lexical) = [2, -1, -1] / sqrt(2)
    zd = math.sqrt(1.5)
    fused = fusion.weighted_zscore(signals, IDS, {"dense": 1.0, "lexical": 0.5})
    assert fused == pytest.approx([zd + 0.5 * math.sqrt(2), -0.5 / math.sqrt(2), -zd - 0.5 / math.sqrt(2)])


def test_two_sigma_on_every_signal_squashes_to_0_88() -> None:
    weights = {"dense": 1.0, "maxsim": 0.3, "lexical": 1.0}
    fused = np.array([sum(2.0 * w for w in weights.values()), 0.0])  # +2 sigma everywhere; the mean
    for strategy in ("weighted_zscore", "calibrated_zscore"):
        scores = fusion.squash(fused, strategy, total_weight=2.3)
        assert scores == pytest.approx([1 / (1 + math.exp(-2)), 0.5])
        assert round(float(scores[0]), 2) == 0.88


def test_rrf_by_hand() -> None:
    # dense ranks a, b; lexical ranks b, c. k = 60: rank r adds weight / (60 + r).
    signals = {"dense": {"a": 0.9, "b": 0.5}, "lexical": {"b": 3.0, "c": 1.0}}
    fused = fusion.rrf(signals, IDS, {"dense": 1.0, "lexical": 2.0})
    assert fused == pytest.approx([1 / 61, 1 / 62 + 2 / 61, 2 / 62])
    # rank 1 on all three signals with unit weights: 3/61, squashed to 60/61
    top = fusion.rrf({s: {"a": 1.0, "b": 0.0} for s in ONE}, ["a", "b"], ONE)
    assert fusion.squash(top, "rrf", 3.0) == pytest.approx([60 / 61, 60 / 62])


def test_dbsf_by_hand() -> None:
    # mean +- 3 sigma -> [0, 1] is (z + 3) / 6; for [0, 0.5, 1], z = [-1, 0, 1] * sqrt(3/2)
    signals = {"dense": {"a": 0.0, "b": 0.5, "c": 1.0}, "lexical": {"c": 2.0}}
    z = math.sqrt(1.5)
    dense = [(3 - z) / 6, 0.5, (3 + z) / 6]
    # lexical [2, 2, 2] after the floor: no spread, so every candidate gets the middle, 0.5
    fused = fusion.dbsf(signals, IDS, {"dense": 1.0, "lexical": 0.5})
    assert fused == pytest.approx([d + 0.25 for d in dense])
    # squashed by the weight sum: a candidate at +3 sigma on every signal would score 1.0
    assert fusion.squash(fused, "dbsf", 1.5) == pytest.approx([(d + 0.25) / 1.5 for d in dense])


@pytest.mark.parametrize("strategy", ["rrf", "dbsf"])
def test_squash_keeps_the_order_for_large_weights(strategy: str) -> None:
    """Weights summing to more than 3 must not clip the top candidates into a tie (results are sorted
    by the squashed score): the squash divides by the weight sum."""
    signals = {"lexical": {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}}
    ids = ["c", "b", "a", "d"]  # candidate order as found, not as ranked
    fn = fusion.rrf if strategy == "rrf" else fusion.dbsf
    fused = fn(signals, ids, {"lexical": 10.0})
    scores = fusion.squash(fused, strategy, 10.0)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert [ids[n] for n in np.argsort(-scores, kind="stable")] == ["a", "b", "c", "d"]
    assert len(set(scores.tolist())) == 4


def test_maxsim_squash_is_the_mean_cosine_clipped() -> None:
    assert fusion.squash(np.array([0.7, -0.2, 1.3]), "maxsim").tolist() == [0.7, 0.0, 1.0]
