"""Dense quantisation (compression.dense_quantization): indexed shards search their graph on an int8
copy of the pooled vectors and rescore the best candidates with the stored vectors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import models as qm

from mmsearch.client import Client, MMSearchError
from mmsearch.client.client import compression_options
from mmsearch.server.ranking.lexical import document_terms
from mmsearch.server.storage.base import Compression, PointData, Where, point_id
from mmsearch.server.storage.edge import EDGE, EdgeStore, ShardOptions
from mmsearch.server.storage.records import Breadth
from mmsearch.v1 import collections_pb2

from .test_compression import _spec
from .test_remote_options import RecordingClient, _store, _vectors

DIM = 384


def _points(n: int) -> tuple[list[PointData], np.ndarray]:
    rng = np.random.default_rng(11)
    dense = rng.standard_normal((n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    out = []
    for i, v in enumerate(dense):
        text = f"document {i}"
        payload = {"doc_id": f"d{i}", "seq": 0, "modality": "text", "text": text}
        out.append(PointData(point_id(f"d{i}", 0), "text", v, v[None, :], document_terms(text), payload))
    return out, dense


def test_spec_and_engine_config_carry_the_quantisation() -> None:
    spec = _spec("q", Compression("float16", "float16", 1, "int8"), dim=DIM)
    back = type(spec).from_json(spec.to_json())
    assert back.spaces["text"].compression.dense_quantization == "int8"
    quantised = EDGE.vectors(spec)["text_dense"].quantization_config
    assert quantised is not None and quantised.memory == qe.Memory.Cold  # loading a shard must not read it
    assert EDGE.vectors(_spec("n", Compression(), dim=DIM))["text_dense"].quantization_config is None
    assert EDGE.vectors(spec)["text_tokens"].quantization_config is None  # tokens are only rescored


def test_indexed_shard_searches_the_int8_copy_and_returns_stored_scores(tmp_path: Path) -> None:
    """After a build the shard holds an int8 copy next to its graph; the default search, a wide one
    and `exact` all return the cosines of the stored vectors (numpy's), not the int8 estimates, and
    `exact` is numpy's top 10. 8,000 float32 vectors of 384 dims: over the engine's indexing
    threshold (10 MB of vectors), below which a segment is neither indexed nor quantised."""
    store = EdgeStore(tmp_path, shards=ShardOptions(seal_points=8000, max_shard_points=20_000))
    store.create_collection(_spec("c", Compression("float32", "float32", 1, "int8"), dim=DIM))
    points, dense = _points(8200)
    for i in range(0, len(points), 1000):
        store.upsert("c", points[i : i + 1000])
    folder = tmp_path / "collections" / "c"
    deadline = time.monotonic() + 120
    while store.stats("c").indexed_points < 8000:
        assert time.monotonic() < deadline, "no index built"
        time.sleep(0.1)
    manifest = json.loads((folder / "manifest.json").read_text())
    built = [s["id"] for s in manifest["shards"] if s["state"] == "indexed"]
    config = json.loads((folder / "shards" / built[0] / "edge_config.json").read_text())
    assert "scalar" in json.dumps(config["vectors"]["text_dense"]["quantization_config"]).lower()
    assert any("quantized" in str(f) for f in (folder / "shards" / built[0]).rglob("*text_dense*/*"))

    ids = [p.id for p in points]
    rng = np.random.default_rng(5)
    for q in rng.standard_normal((10, DIM)).astype(np.float32):
        q /= np.linalg.norm(q)
        cosines = dense @ q
        truth = [ids[i] for i in np.argsort(-cosines)[:10]]
        for breadth in (Breadth(), Breadth(hnsw_ef=4000), Breadth(exact=True)):
            got = store.dense_search("c", "text", q, 10, Where(), breadth)
            for pid, score in got.items():
                assert score == pytest.approx(float(cosines[ids.index(pid)]), abs=1e-5), breadth
            if breadth.exact:
                assert list(got) == truth
        scored = store.score_ids("c", "text_dense", q, truth)
        assert all(scored[pid] == pytest.approx(float(cosines[ids.index(pid)]), abs=1e-5) for pid in truth)
    store.close()


def test_remote_backend_gets_the_collection_quantisation() -> None:
    """A Qdrant server gets the collection's int8 copy and is asked to rescore with it (exact: to
    ignore it); the server-wide qdrant_quantization, when set, replaces the collection's choice."""
    client = RecordingClient()
    store = _store(client)
    store.create_collection(_spec("r", Compression("float16", "float16", 1, "int8"), dim=DIM))
    params = _vectors(client, "r")
    assert isinstance(params["text_dense"].quantization_config, qm.ScalarQuantization)
    assert params["text_tokens"].quantization_config is None
    points, _ = _points(3)
    store.upsert("r", points)
    store.dense_search("r", "text", points[0].dense, 2, Where())
    store.dense_search("r", "text", points[0].dense, 2, Where(), Breadth(exact=True))
    rescored, exact = (call["search_params"].quantization for call in client.calls["query_points"][-2:])
    assert (rescored.rescore, rescored.oversampling) == (True, 2.0) and exact.ignore
    store.create_collection(_spec("n", Compression("float16", "float16", 1, "none"), dim=DIM))
    assert _vectors(client, "n")["text_dense"].quantization_config is None
    store.close()

    client = RecordingClient()
    store = _store(client, quantization="binary")
    store.create_collection(_spec("b", Compression("float16", "float16", 1, "int8"), dim=DIM))
    assert isinstance(_vectors(client, "b")["text_dense"].quantization_config, qm.BinaryQuantization)
    store.close()


def test_create_reports_and_validates_the_quantisation(fake_client: Client) -> None:
    quantised = collections_pb2.DenseQuantization.Name
    col = fake_client.create_collection("d")
    assert quantised(col.config.compression.dense_quantization) == "DENSE_QUANTIZATION_INT8"  # the default
    col = fake_client.create_collection("n", compression={"dense_quantization": "none"})
    assert quantised(fake_client.get_collection("n").config.compression.dense_quantization) == (
        "DENSE_QUANTIZATION_NONE"
    )
    with pytest.raises(ValueError, match="int4"):
        compression_options({"dense_quantization": "int4"})
    req = collections_pb2.CreateCollectionRequest(
        name="bad",
        config=collections_pb2.CollectionConfig(compression=collections_pb2.CompressionOptions(dense_quantization=7)),
    )
    with pytest.raises(MMSearchError) as err:
        fake_client._call(fake_client.collections.CreateCollection, req, retry=False)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "dense_quantization" in err.value.details
