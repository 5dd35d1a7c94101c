"""RankingOptions through the server (fake encoder, both storage backends): every fusion strategy, the
signal weights and prefetch_k change the ranking as documented; `should` filters."""

from collections.abc import Callable

import grpc
import numpy as np
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.protocol.vocab import FUSED_SIGNALS
from mmsearch.protocol.wire import filter_value
from mmsearch.server.ranking import fusion
from mmsearch.v1 import common_pb2, search_pb2

from .documents import ANIMALS, text_item

QUERY = "red apple pie"
_FILLER = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip"
)
# With the fake (bag-of-words) encoder: "pies" leads on dense and BM25; "buried" holds every query word
# (MaxSim 1.0) among 30 others (low dense); "reds" is second on dense but third on BM25 ("red" is common).
# The "red ..." documents differ in length, so no two tie on BM25 (RRF would rank a tie arbitrarily).
DOCS = {
    "reds": "red red red red red apple",
    "pies": "apple pie apple pie apple pie",
    "buried": "red apple pie " + _FILLER,
    "car": "red car parked outside",
    "house": "red house on the hill",
    "door": "red front door with a heavy brass knocker",
    "sky": "red sky at night sailors delight",
    "tart": "pie crust and tart pastry",
    "orchard": "apple orchard in autumn",
}
DEFAULT_WEIGHTS = {"dense": 1.0, "maxsim": 0.3, "lexical": 1.0}  # the server's settings
ENUM = {
    "weighted_zscore": search_pb2.FUSION_STRATEGY_WEIGHTED_ZSCORE,
    "calibrated_zscore": search_pb2.FUSION_STRATEGY_CALIBRATED_ZSCORE,
    "rrf": search_pb2.FUSION_STRATEGY_RRF,
    "dbsf": search_pb2.FUSION_STRATEGY_DBSF,
    "maxsim": search_pb2.FUSION_STRATEGY_MAXSIM,
}


@pytest.fixture
def fruit(fake_client: Client) -> Client:
    fake_client.create_collection("fruit")
    assert all(a.ok for a in fake_client.ingest("fruit", [text_item(k, t) for k, t in DOCS.items()]))
    return fake_client


def _search(c: Client, top_k: int = 20, **ranking: object) -> list[search_pb2.SearchResult]:
    opts = search_pb2.RankingOptions(**ranking)  # type: ignore[arg-type]
    return list(c.search("fruit", QUERY, top_k=top_k, explain=True, ranking=opts).results)


def _ids(results: list[search_pb2.SearchResult]) -> list[str]:
    return [r.document_id for r in results]


def _ranked_by(results: list[search_pb2.SearchResult], signal: str) -> bool:
    values = [r.explanation.signals[signal] for r in results]
    return values == sorted(values, reverse=True)


def test_weights_pick_the_signal_that_ranks(fruit: Client) -> None:
    lexical = _search(fruit, dense_weight=0, maxsim_weight=0, lexical_weight=1)
    dense = _search(fruit, dense_weight=1, maxsim_weight=0, lexical_weight=0)
    maxsim = _search(fruit, dense_weight=0, maxsim_weight=1, lexical_weight=0)
    assert len(lexical) == len(DOCS) and _ranked_by(lexical, "lexical")  # BM25 alone
    assert _ranked_by(dense, "dense") and _ranked_by(maxsim, "maxsim")
    assert _ids(lexical)[:3] == ["pies", "buried", "reds"]
    assert _ids(dense)[:3] == ["pies", "reds", "buried"]
    assert _ids(maxsim)[0] == "buried"
    # a weight left unset keeps the server's default: lexical 1 alone differs from lexical 1 + dense 1
    both = _search(fruit, dense_weight=0, maxsim_weight=0)
    assert [r.score for r in both] == pytest.approx([r.score for r in lexical], abs=1e-6)
    mixed = _search(fruit, maxsim_weight=0)
    assert [r.score for r in mixed] != pytest.approx([r.score for r in lexical], abs=1e-3)


def _expected(strategy: str, results: list[search_pb2.SearchResult], weights: dict[str, float]) -> np.ndarray:
    """The fused, squashed scores recomputed from the raw signals the server explained."""
    ids = [r.document_id for r in results]
    signals = {s: {r.document_id: float(r.explanation.signals[s]) for r in results} for s in FUSED_SIGNALS}
    fns: dict[str, Callable[..., np.ndarray]] = {
        "weighted_zscore": fusion.weighted_zscore,
        "calibrated_zscore": fusion.weighted_zscore,  # one vector space, one modality: one group
        "rrf": fusion.rrf,
        "dbsf": fusion.dbsf,
    }
    if strategy == "maxsim":
        fused = np.array([signals["maxsim"][i] for i in ids])
    else:
        fused = fns[strategy](signals, ids, weights)
    return fusion.squash(fused, strategy, sum(abs(w) for w in weights.values()))


@pytest.mark.parametrize("strategy", list(ENUM))
@pytest.mark.parametrize("weights", [DEFAULT_WEIGHTS, {"dense": 0.5, "maxsim": 2.0, "lexical": 3.0}])
def test_every_strategy_scores_as_its_formula(fruit: Client, strategy: str, weights: dict[str, float]) -> None:
    results = _search(fruit, fusion=ENUM[strategy], **{f"{k}_weight": v for k, v in weights.items()})
    assert len(results) == len(DOCS)  # every document is a candidate (prefetch_k 100)
    assert [r.score for r in results] == pytest.approx(list(_expected(strategy, results, weights)), abs=2e-5)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_strategies_differ_where_they_should(fruit: Client) -> None:
    top = {name: _ids(_search(fruit, fusion=enum)) for name, enum in ENUM.items()}
    assert top["maxsim"][0] == "buried"  # MaxSim alone: every query word is in it
    assert top["weighted_zscore"][0] == "pies"
    assert top["calibrated_zscore"] == top["weighted_zscore"]  # one group: the same calibration
    # the default is weighted z-scores
    assert _ids(_search(fruit)) == top["weighted_zscore"]
    assert top["rrf"] != top["weighted_zscore"]


def test_prefetch_k_limits_the_candidates(fruit: Client) -> None:
    """MaxSim is computed for candidates only: with one candidate per retriever, the MaxSim winner
    ("buried": neither dense's nor BM25's first) is never seen."""
    weights = {"dense_weight": 0.0, "maxsim_weight": 1.0, "lexical_weight": 0.0}
    assert _ids(_search(fruit, top_k=1, prefetch_k=1, **weights)) == ["pies"]
    assert _ids(_search(fruit, top_k=1, prefetch_k=100, **weights)) == ["buried"]
    assert _ids(_search(fruit, top_k=1, **weights)) == ["buried"]  # default 100


def _cond(key: str, value: object) -> common_pb2.FieldCondition:
    return common_pb2.FieldCondition(key=key, match=filter_value(value))


def test_should_filters(fake_client: Client) -> None:
    fake_client.create_collection("zoo", indexed_fields={"kind": "keyword", "legs": "integer"})
    assert all(a.ok for a in fake_client.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))

    def ids(f: common_pb2.Filter) -> set[str]:
        return {r.document_id for r in fake_client.search("zoo", "animals", filter=f).results}

    # at least one of `should`
    assert ids(common_pb2.Filter(should=[_cond("kind", "bird"), _cond("legs", 0)])) == {"owls", "trout"}
    legs = common_pb2.FieldCondition(key="legs", range=common_pb2.Range(gte=4))
    assert ids(common_pb2.Filter(should=[legs, _cond("kind", "fish")])) == {"cats", "dogs", "trout"}
    # with `must` and `must_not`: all of must, none of must_not, one of should
    f = common_pb2.Filter(must=[_cond("tag", "wild")], should=[_cond("kind", "bird"), _cond("kind", "mammal")])
    assert ids(f) == {"owls"}
    f = common_pb2.Filter(must_not=[_cond("kind", "mammal")], should=[_cond("tag", "pet"), _cond("legs", 2)])
    assert ids(f) == {"owls"}
    assert ids(common_pb2.Filter(should=[_cond("kind", "reptile")])) == set()


def test_a_search_sets_its_hnsw_breadth_or_asks_for_an_exact_scan(fruit: Client) -> None:
    """hnsw_ef and exact reach the store (tests/test_shards.py shows what they do on a graph); a
    collection this small has no graph, so every breadth ranks the same. Out of range, or both at
    once: INVALID_ARGUMENT naming the option."""
    default = [(r.document_id, round(r.score, 5)) for r in _search(fruit)]
    assert [(r.document_id, round(r.score, 5)) for r in _search(fruit, hnsw_ef=512)] == default
    assert [(r.document_id, round(r.score, 5)) for r in _search(fruit, exact=True)] == default
    refused = (({"hnsw_ef": 5000}, "hnsw_ef must be between 0"), ({"hnsw_ef": 64, "exact": True}, "not both"))
    for ranking, named in refused:
        with pytest.raises(MMSearchError) as err:
            _search(fruit, **ranking)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and named in str(err.value), err.value
