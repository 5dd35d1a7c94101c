"""The layout options of remote collections (storage/remote_options.py, settings qdrant_*) against
qdrant-client's in-memory engine: what it reports back in get_collection, what RemoteStore sends
where it reports nothing (shards, replicas), and that ingest and dense search stay right with
quantisation and rescoring on.

Local mode keeps the vector params it is given and reports them back, but it does not shard,
replicate or build graphs, and searches every vector exactly (it warns that search_params have no
effect): the recall of a quantised index is not measured here, only that the configuration and the
search parameters reach Qdrant and that results are right."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from mmsearch.server.app import make_store
from mmsearch.server.settings import Settings
from mmsearch.server.storage import remote
from mmsearch.server.storage.base import ROWCOL, CollectionSpec, SpaceSpec, Where
from mmsearch.server.storage.records import Breadth
from mmsearch.server.storage.remote import RemoteStore
from mmsearch.server.storage.remote_options import (
    ProductCompression,
    Quantization,
    RemoteOptions,
    TurboBits,
)

from .qdrant_standins import SerializedClient
from .test_documents_atomic import _pt
from .test_storage import DIM, _spec

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")


class RecordingClient(SerializedClient):
    """The in-memory engine, recording the keywords of create_collection and query_points."""

    def __init__(self) -> None:
        super().__init__(QdrantClient(location=":memory:"))
        self.calls: dict[str, list[dict[str, Any]]] = {"create_collection": [], "query_points": []}

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name not in ("create_collection", "query_points"):
            return call

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls[name].append(kwargs)
            return call(*args, **kwargs)

        return recorded


def _store(client: RecordingClient, **options: Any) -> RemoteStore:
    return RemoteStore(client=client, options=RemoteOptions(**options))  # type: ignore[arg-type]


def _vectors(client: RecordingClient, name: str = "c") -> dict[str, qm.VectorParams]:
    vectors = client.get_collection(f"mmsearch-{name}").config.params.vectors
    assert isinstance(vectors, dict)
    return vectors


def test_default_options_lay_collections_out_as_before() -> None:
    client = RecordingClient()
    store = _store(client)
    store.create_collection(_spec())
    dense, tokens = _vectors(client)["text_dense"], _vectors(client)["text_tokens"]
    assert (dense.on_disk, dense.hnsw_config, dense.quantization_config) == (None, None, None)
    assert tokens.on_disk is True and tokens.hnsw_config == qm.HnswConfigDiff(m=0)
    sent = client.calls["create_collection"][0]
    assert (sent["shard_number"], sent["replication_factor"]) == (None, 1)  # shards: the server's choice
    store.dense_search("c", "text", np.ones(DIM, np.float32), 5, Where())
    assert client.calls["query_points"][-1]["search_params"] is None


def test_graph_and_disk_options_reach_the_first_stage_vectors_only() -> None:
    client = RecordingClient()
    store = _store(client, hnsw_m=32, hnsw_ef_construct=200, on_disk=True, hnsw_on_disk=True, quantization="scalar")
    page = SpaceSpec("page", "fake-colpali", "fake-colpali-16", DIM, ["page"], prefetch=ROWCOL)
    store.create_collection(CollectionSpec(name="c", text_kind="fake", text_model="fake-16", spaces={"page": page}))
    vectors = _vectors(client)
    scalar = qm.ScalarQuantization(scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, always_ram=True))
    for name in ("page_dense", "page_rowcol"):  # both are searched through a graph
        v = vectors[name]
        assert v.on_disk is True and v.quantization_config == scalar
        assert v.hnsw_config == qm.HnswConfigDiff(m=32, ef_construct=200, on_disk=True)
    tokens = vectors["page_tokens"]  # exact MaxSim over candidates: no graph, no quantised copy
    assert tokens.hnsw_config == qm.HnswConfigDiff(m=0) and tokens.quantization_config is None
    assert tokens.on_disk is True and tokens.multivector_config is not None


def test_shard_number_and_replication_factor_are_sent_at_creation() -> None:
    """Local mode neither shards nor replicates and reports neither (shard_number and
    replication_factor read None): what is checked is what RemoteStore asks the server for."""
    client = RecordingClient()
    store = _store(client, shard_number=6, replication_factor=2)
    store.create_collection(_spec())
    sent = client.calls["create_collection"][0]
    assert (sent["shard_number"], sent["replication_factor"]) == (6, 2)
    assert store.stats("c").shards == 1  # what local mode reports: one shard


@pytest.mark.parametrize(
    ("quantization", "expected"),
    [
        ("scalar", qm.ScalarQuantization(scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, always_ram=True))),
        ("binary", qm.BinaryQuantization(binary=qm.BinaryQuantizationConfig(always_ram=True))),
        (
            "product",
            qm.ProductQuantization(
                product=qm.ProductQuantizationConfig(compression=qm.CompressionRatio.X8, always_ram=True)
            ),
        ),
        (
            "turbo",
            qm.TurboQuantization(
                turbo=qm.TurboQuantQuantizationConfig(bits=qm.TurboQuantBitSize.BITS2, always_ram=True)
            ),
        ),
    ],
)
def test_quantised_collections_ingest_and_search_with_rescoring(quantization: str, expected: Any) -> None:
    rng = np.random.default_rng(5)
    points = [_pt(f"d{i}", 0, 0, 0, rng) for i in range(60)]
    plain_client, client = RecordingClient(), RecordingClient()
    plain = _store(plain_client)
    store = _store(
        client,
        quantization=quantization,
        product_compression="x8",
        turbo_bits="bits2",
        oversampling=3.0,
        on_disk=True,
    )
    for s in (plain, store):
        s.create_collection(_spec())
        s.upsert("c", points)
    assert _vectors(client)["text_dense"].quantization_config == expected
    for p in points[:5]:  # each point's own vector finds it first, and the ranking is the plain one
        hits = store.dense_search("c", "text", p.dense, 10, Where())
        assert next(iter(hits)) == p.id
        assert list(hits) == list(plain.dense_search("c", "text", p.dense, 10, Where()))
    rescoring = qm.SearchParams(quantization=qm.QuantizationSearchParams(rescore=True, oversampling=3.0))
    assert client.calls["query_points"][-1]["search_params"] == rescoring
    assert plain_client.calls["query_points"][-1]["search_params"] is None
    # exact scores of given points (the rerank path) on a quantised vector are still right
    scores = store.score_ids("c", "text_dense", points[0].dense, [points[0].id, points[1].id])
    assert scores[points[0].id] == pytest.approx(1.0, abs=1e-3)
    # MaxSim over token vectors (never quantised) gets no quantisation parameters
    store.vector_search("c", "text_tokens", points[0].tokens, 5, Where())
    assert client.calls["query_points"][-1]["search_params"] is None


def test_search_breadth_goes_with_every_graph_search_only() -> None:
    rng = np.random.default_rng(6)
    points = [_pt(f"d{i}", 0, 0, 0, rng) for i in range(20)]
    client = RecordingClient()
    store = _store(client, hnsw_ef=128)
    store.create_collection(_spec())
    store.upsert("c", points)
    assert next(iter(store.dense_search("c", "text", points[3].dense, 5, Where()))) == points[3].id
    assert client.calls["query_points"][-1]["search_params"] == qm.SearchParams(hnsw_ef=128)
    store.vector_search("c", "text_tokens", points[3].tokens, 5, Where())  # exact MaxSim: no graph
    assert client.calls["query_points"][-1]["search_params"] is None
    store.lexical_search("c", ([1, 2], [1.0, 1.0]), 5, Where())  # the sparse index: no graph either
    assert client.calls["query_points"][-1]["search_params"] is None
    both = _store(client, hnsw_ef=64, oversampling=1.5)  # on a quantised collection: both parameters
    _store(client, quantization="scalar").create_collection(_spec("q"))  # by another server, after `both` started
    both.dense_search("q", "text", points[0].dense, 5, Where())
    rescoring = qm.QuantizationSearchParams(rescore=True, oversampling=1.5)
    assert client.calls["query_points"][-1]["search_params"] == qm.SearchParams(hnsw_ef=64, quantization=rescoring)
    # A search's own breadth replaces the server's; an exact one skips the graph and the quantised copy
    both.dense_search("q", "text", points[0].dense, 5, Where(), Breadth(hnsw_ef=900))
    assert client.calls["query_points"][-1]["search_params"] == qm.SearchParams(hnsw_ef=900, quantization=rescoring)
    both.dense_search("q", "text", points[0].dense, 5, Where(), Breadth(exact=True))
    ignore = qm.QuantizationSearchParams(ignore=True)
    assert client.calls["query_points"][-1]["search_params"] == qm.SearchParams(exact=True, quantization=ignore)
    both.lexical_search("q", ([1, 2], [1.0, 1.0]), 5, Where())  # no graph: no breadth
    assert client.calls["query_points"][-1]["search_params"] is None


def test_a_collection_keeps_the_quantisation_it_was_created_with() -> None:
    client = RecordingClient()
    _store(client, quantization="binary").create_collection(_spec("old"))
    now = _store(client, quantization="none")  # a restart with the option turned off
    now.create_collection(_spec("new"))
    assert _vectors(client, "new")["text_dense"].quantization_config is None
    query = np.ones(DIM, np.float32)
    now.dense_search("old", "text", query, 5, Where())
    assert client.calls["query_points"][-1]["search_params"] is not None  # still rescored
    now.dense_search("new", "text", query, 5, Where())
    assert client.calls["query_points"][-1]["search_params"] is None
    again = _store(client, quantization="scalar")  # and the other way round
    again.dense_search("new", "text", query, 5, Where())
    assert client.calls["query_points"][-1]["search_params"] is None


def test_settings_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flag = MMSEARCH_* variable = TOML key, then make_store hands them all to RemoteStore."""
    toml = tmp_path / "mmsearch.toml"
    toml.write_text('qdrant_quantization = "product"\nqdrant_product_compression = "x32"\nqdrant_hnsw_m = 24\n')
    monkeypatch.setenv("MMSEARCH_QDRANT_ON_DISK", "true")
    monkeypatch.setenv("MMSEARCH_QDRANT_OVERSAMPLING", "1.5")
    monkeypatch.setenv("MMSEARCH_QDRANT_HNSW_EF", "256")
    settings = Settings.load(
        config=toml, storage="remote", qdrant_url="http://qdrant:6333", data_dir=tmp_path, qdrant_shard_number=4
    )
    monkeypatch.setattr(remote, "QdrantClient", lambda **_: SerializedClient(QdrantClient(location=":memory:")))
    store = make_store(settings)
    assert isinstance(store, RemoteStore)
    assert store.options == RemoteOptions(
        shard_number=4,
        hnsw_m=24,
        hnsw_ef=256,
        on_disk=True,
        quantization="product",
        product_compression="x32",
        oversampling=1.5,
    )


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("qdrant_quantization", "int4", "'none', 'scalar', 'binary', 'product' or 'turbo'"),
        ("qdrant_turbo_bits", "bits3", "'bits1', 'bits1_5', 'bits2', 'bits4' or 'bits8'"),
        ("qdrant_product_compression", "x3", "'x4', 'x8', 'x16', 'x32' or 'x64'"),
        ("qdrant_hnsw_ef_construct", 2, "at least 4"),
        ("qdrant_hnsw_m", -1, "greater than or equal to 0"),
        ("qdrant_hnsw_ef", -5, "greater than or equal to 0"),
        ("qdrant_shard_number", -1, "greater than or equal to 0"),
        ("qdrant_replication_factor", 0, "greater than or equal to 1"),
        ("qdrant_oversampling", 0.5, "greater than or equal to 1"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(setting: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=setting) as err:
        Settings(**{setting: value})
    assert message in str(err.value)


def test_the_settings_and_the_store_accept_the_same_choices() -> None:
    fields = Settings.model_fields
    assert typing.get_args(fields["qdrant_quantization"].annotation) == typing.get_args(Quantization)
    assert typing.get_args(fields["qdrant_product_compression"].annotation) == typing.get_args(ProductCompression)
    assert typing.get_args(fields["qdrant_turbo_bits"].annotation) == typing.get_args(TurboBits)
    assert set(typing.get_args(ProductCompression)) == {r.value for r in qm.CompressionRatio}
    assert set(typing.get_args(TurboBits)) == {b.value for b in qm.TurboQuantBitSize}
    with pytest.raises(ValueError, match="at least 4"):
        RemoteOptions(hnsw_ef_construct=3)
    with pytest.raises(ValueError, match="x4, x8"):
        RemoteOptions(product_compression="x5")  # type: ignore[arg-type]
