"""The optional cross-encoder stage (search) and method (rerank), with a tiny random cross-encoder
built once and loaded from its folder like real weights."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.encoders.cross import CrossEncoderScorer
from mmsearch.server.app import create_server
from mmsearch.v1 import rerank_pb2, rerank_pb2_grpc, search_pb2

from .conftest import fake_settings
from .documents import ANIMALS, text_item
from .tiny_models import build_tiny_cross_encoder


@pytest.fixture(scope="session")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models"))


@pytest.fixture
def ce_client(tmp_path: Path, tiny_ce: Path) -> Iterator[Client]:
    app = create_server(fake_settings(tmp_path, cross_encoder_model=str(tiny_ce), rerank_k=3))
    with Client(f"127.0.0.1:{app.port}", retries=0) as c:
        c.create_collection("zoo")
        assert all(a.ok for a in c.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
        yield c
    app.stop(grace=None)


def test_cross_encoder_rescores_the_fused_top(ce_client: Client, tiny_ce: Path) -> None:
    query = "animals that hunt mice at night"
    fused = ce_client.search("zoo", query, top_k=4)
    reranked = ce_client.search(
        "zoo", query, top_k=4, explain=True, ranking=search_pb2.RankingOptions(cross_encoder=True)
    )
    head = [r.document_id for r in fused.results[:3]]
    # the head is exactly the fused top 3, re-sorted by the model's own scores
    scorer = CrossEncoderScorer(str(tiny_ce))
    texts = {k: t for k, (t, _) in ANIMALS.items()}
    expected = scorer.score(query, [texts[d] for d in head])
    assert [r.document_id for r in reranked.results[:3]] == [d for _, d in sorted(zip(-expected, head, strict=True))]
    for r in reranked.results[:3]:
        assert r.score == pytest.approx(r.explanation.signals["cross_encoder"], abs=1e-6)
    assert reranked.results[3].document_id == fused.results[3].document_id
    scores = [r.score for r in reranked.results]
    assert scores == sorted(scores, reverse=True)


def test_rerank_methods(ce_client: Client) -> None:
    stub = rerank_pb2_grpc.RerankServiceStub(ce_client.channel)
    docs = [rerank_pb2.RerankDocument(text=t) for t in ("owls hunt mice", "trout swim", "cats chase mice")]
    ce = stub.Rerank(
        rerank_pb2.RerankRequest(query="mice", documents=docs, method=rerank_pb2.RERANK_METHOD_CROSS_ENCODER)
    )
    li = stub.Rerank(rerank_pb2.RerankRequest(query="mice", documents=docs))
    assert sorted(r.index for r in ce.results) == [0, 1, 2] and all(0 <= r.relevance_score <= 1 for r in ce.results)
    assert li.results[-1].index == 1  # late interaction: the document without "mice" is last


def test_cross_encoder_missing_is_a_clear_error(fake_client: Client) -> None:
    fake_client.create_collection("c")
    list(fake_client.ingest("c", [text_item("a", "text")]))
    with pytest.raises(MMSearchError) as err:
        fake_client.search("c", "text", ranking=search_pb2.RankingOptions(cross_encoder=True))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "--cross-encoder-model" in err.value.details


def test_the_cross_encoder_runs_on_its_own_thread(tiny_ce: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = CrossEncoderScorer(str(tiny_ce))
    threads: list[str] = []
    predict = scorer._ce.predict

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return predict(*args, **kwargs)

    monkeypatch.setattr(scorer._ce, "predict", recording)
    with ThreadPoolExecutor(4) as ex:
        scores = list(ex.map(lambda q: scorer.score(q, ["owls hunt mice", "trout swim"]), ["mice", "fish"] * 2))
    assert threads == ["cross-encoder"] * 4
    assert all(s.shape == (2,) and ((s >= 0) & (s <= 1)).all() for s in scores)
