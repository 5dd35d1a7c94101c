"""Compression per collection: the spec round trip (old spec.json files load as the old layout), the
vector configuration each backend is given, pooling, and compressed collections through the server."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from qdrant_client import models as qm

from mmsearch.client import Client, MMSearchError
from mmsearch.client.client import compression_options
from mmsearch.server.ingest.pooling import MIN_VECTORS, pool_tokens
from mmsearch.server.storage.base import CollectionSpec, Compression, PointData, SpaceSpec, point_id
from mmsearch.server.storage.edge import EDGE, EdgeStore
from mmsearch.v1 import collections_pb2

from .documents import ANIMALS, text_item
from .qdrant_standins import memory_store

OLD_SPEC = {  # a spec.json as written before compression existed
    "name": "old",
    "text_kind": "fake",
    "text_model": "fake-32",
    "page_kind": "",
    "page_model": "",
    "chunk_words": 180,
    "chunk_overlap": 40,
    "indexed_fields": {},
    "spaces": {"text": {"name": "text", "kind": "fake", "model": "fake-32", "dim": 32, "modalities": ["text"]}},
}


def _spec(name: str, c: Compression, dim: int = 16) -> CollectionSpec:
    return CollectionSpec(
        name, "fake", "fake-16", spaces={"text": SpaceSpec("text", "fake", "fake-16", dim, ["text"], c)}
    )


def test_old_spec_loads_as_the_old_layout_and_compression_round_trips() -> None:
    old = CollectionSpec.from_json(json.dumps(OLD_SPEC))
    assert old.spaces["text"].compression == Compression("float16", "float32", 1)
    spec = _spec("new", Compression("turbo4", "turbo8", 3))
    back = CollectionSpec.from_json(spec.to_json())
    assert back == spec and back.spaces["text"].compression == Compression("turbo4", "turbo8", 3)


def test_old_data_dir_keeps_its_layout(tmp_path: Path) -> None:
    """A collection whose spec.json predates compression opens, and is searched, as before."""
    store = EdgeStore(tmp_path)
    store.create_collection(CollectionSpec.from_json(json.dumps(OLD_SPEC)))
    store.close()
    spec_file = tmp_path / "collections" / "old" / "spec.json"
    spec_file.write_text(json.dumps(OLD_SPEC))  # exactly the old file, without a compression key
    store = EdgeStore(tmp_path)
    rows = np.eye(32, dtype=np.float32)[:5]
    store.upsert("old", [PointData(point_id("d", 0), "text", rows[0], rows, None, {"doc_id": "d", "seq": 0})])
    got = store.score_ids("old", "text_tokens", rows[:2], [point_id("d", 0)])
    assert got[point_id("d", 0)] == pytest.approx(2.0, abs=1e-3)
    assert store.get_spec("old").spaces["text"].compression == Compression()
    store.close()


def test_vector_config_follows_the_compression() -> None:
    import qdrant_edge as qe

    vectors = EDGE.vectors(_spec("c", Compression("turbo4", "float16", 2)))
    assert vectors["text_tokens"].datatype == qe.VectorStorageDatatype.Turbo4
    assert vectors["text_tokens"].multivector_config is not None
    assert vectors["text_dense"].datatype == qe.VectorStorageDatatype.Float16
    old = EDGE.vectors(CollectionSpec.from_json(json.dumps(OLD_SPEC)))
    assert old["text_tokens"].datatype == qe.VectorStorageDatatype.Float16
    assert old["text_dense"].datatype == qe.VectorStorageDatatype.Float32
    assert EDGE.sparse_vectors()["lexical"].memory == qe.Memory.Cold  # mapped: a shard loads without reading it


def test_remote_backend_is_sent_the_datatypes() -> None:
    store = memory_store()
    store.create_collection(_spec("c", Compression("turbo8", "float16", 1)))
    params = store.client.get_collection("mmsearch-c").config.params.vectors  # type: ignore[attr-defined]
    assert params["text_tokens"].datatype == qm.Datatype.TURBO8
    assert params["text_dense"].datatype == qm.Datatype.FLOAT16
    assert params["text_tokens"].multivector_config is not None
    store.close()


@pytest.mark.parametrize("storage", ["float32", "float16", "turbo8", "turbo4"])
def test_engine_scores_maxsim_on_each_storage(tmp_path: Path, storage: str) -> None:
    """Each storage keeps exact MaxSim close: the engine's score against numpy's over the same vectors."""
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((20, 30, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
    q = docs[3, :8] + 0.3 * rng.standard_normal((8, 64)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    store = EdgeStore(tmp_path)
    store.create_collection(_spec("s", Compression(storage, storage, 1), dim=64))
    ids = [point_id(f"d{i}", 0) for i in range(20)]
    store.upsert(
        "s", [PointData(ids[i], "text", d[0], d, None, {"doc_id": f"d{i}", "seq": 0}) for i, d in enumerate(docs)]
    )
    got = store.score_ids("s", "text_tokens", q, ids)
    exact = [float((q @ d.T).max(axis=1).sum()) for d in docs]
    tolerance = {"float32": 1e-4, "float16": 1e-2, "turbo8": 0.05, "turbo4": 0.4}[storage]
    assert max(abs(got[i] - e) for i, e in zip(ids, exact, strict=True)) < tolerance
    assert max(got, key=got.__getitem__) == ids[3]
    store.close()


def test_pooling_merges_similar_tokens_and_keeps_a_representative() -> None:
    rng = np.random.default_rng(1)
    centres = np.eye(24, dtype=np.float32)[:16]
    which = np.concatenate([np.arange(16), rng.integers(0, 16, 32)])  # 48 tokens around 16 directions
    tokens = centres[which] + 0.05 * rng.standard_normal((48, 24)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    pooled = pool_tokens(tokens, 3)  # 48 // 3 = 16 clusters: exactly the sixteen directions
    assert pooled.tokens.shape == (16, 24)
    assert np.allclose(np.linalg.norm(pooled.tokens, axis=1), 1, atol=1e-5)
    assert [int(which[r]) for r in pooled.representatives] == list(range(16))  # in reading order
    assert np.argmax(pooled.tokens, axis=1).tolist() == list(range(16))
    same = pool_tokens(tokens, 1)
    assert same.tokens is tokens and same.representatives == list(range(48))
    short = pool_tokens(tokens[:MIN_VECTORS], 4)  # too few to pool
    assert short.tokens.shape == (MIN_VECTORS, 24) and short.representatives == list(range(MIN_VECTORS))
    assert len(pool_tokens(tokens[:40], 4).tokens) == MIN_VECTORS  # 40 // 4 = 10, raised to the floor


def test_long_inputs_are_pooled_block_by_block() -> None:
    """Ward's linkage holds n^2/2 distances (a 12,000-word page took 5 GB): past BLOCK vectors, each
    block is pooled on its own, to 1/factor of its vectors, representatives counted across blocks."""
    from mmsearch.server.ingest import pooling

    rng = np.random.default_rng(0)
    n = 2 * pooling.BLOCK + 100  # three blocks of 1,399, 1,399 and 1,398 rows
    rows = rng.normal(size=(n, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    pooled = pool_tokens(rows, 4)
    sizes = [1399, 1399, 1398]
    kept = [size // 4 for size in sizes]  # 349, 349, 349
    assert len(pooled.tokens) == len(pooled.representatives) == sum(kept)
    reps, start = pooled.representatives, 0
    for size, k, first in zip(sizes, kept, (0, 349, 698), strict=True):
        block = reps[first : first + k]  # a block's clusters stay in it, its positions in the whole input
        assert start <= min(block) and max(block) < start + size
        start += size
    # each representative is a member of its cluster: close to its stored vector
    assert np.all(np.einsum("ij,ij->i", rows[reps], pooled.tokens) > 0.3)
    # the first block alone pools as it does within the whole
    head = pool_tokens(rows[:1399], 4)
    np.testing.assert_allclose(head.tokens, pooled.tokens[:349], atol=1e-6)


def test_pooling_cuts_the_ward_tree_as_fcluster_does() -> None:
    """pool_tokens cuts the linkage itself; the partition must be scipy's maxclust cut."""
    from scipy.cluster.hierarchy import fcluster, linkage

    for seed in range(12):
        rng = np.random.default_rng(seed)
        rows = rng.normal(size=(20 + 9 * seed, 48))
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        k = max(len(rows) // 4, MIN_VECTORS)
        expected = fcluster(linkage(rows, method="ward"), t=k, criterion="maxclust")
        pooled = pool_tokens(rows.astype(np.float32), 4)
        groups = {}
        for token, label in enumerate(expected):
            groups.setdefault(label, []).append(token)
        means = [rows[g].sum(axis=0) / np.linalg.norm(rows[g].sum(axis=0)) for g in groups.values()]
        means.sort(key=lambda m: tuple(np.round(m, 5)))
        got = sorted(pooled.tokens.astype(np.float64), key=lambda m: tuple(np.round(m, 5)))
        assert len(got) == len(means) == k
        np.testing.assert_allclose(got, means, atol=1e-5)


def test_client_rejects_unknown_compression_names() -> None:
    with pytest.raises(ValueError, match="turbo2"):
        compression_options({"tokens": "turbo2"})
    with pytest.raises(ValueError, match="pool"):
        compression_options({"pool": 2})
    msg = compression_options({"tokens": "turbo8", "token_pool_factor": 2})
    assert msg.tokens == collections_pb2.VECTOR_STORAGE_TURBO8 and msg.token_pool_factor == 2


def _compression(col: collections_pb2.Collection) -> tuple[str, str, int]:
    c = col.config.compression
    name = collections_pb2.VectorStorage.Name
    return name(c.tokens), name(c.dense), c.token_pool_factor


def test_default_compression_is_reported(fake_client: Client) -> None:
    col = fake_client.create_collection("d")
    assert _compression(col) == ("VECTOR_STORAGE_TURBO4", "VECTOR_STORAGE_FLOAT16", 4)
    assert _compression(fake_client.get_collection("d")) == _compression(col)


def test_compressed_collection_ingest_search_explain(fake_client: Client) -> None:
    col = fake_client.create_collection(
        "zoo", compression={"tokens": "turbo8", "dense": "float16", "token_pool_factor": 2}
    )
    assert _compression(col) == ("VECTOR_STORAGE_TURBO8", "VECTOR_STORAGE_FLOAT16", 2)
    acks = list(fake_client.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    assert all(a.ok for a in acks), acks
    r = fake_client.search("zoo", "which animals hunt mice at night", top_k=2)
    assert [x.document_id for x in r.results] == ["owls", "cats"]
    # a passage long enough to be pooled (48 words -> 24 vectors)
    text = [f"w{i}" for i in range(48)]
    assert all(a.ok for a in fake_client.ingest("zoo", [text_item("long", " ".join(text))]))
    r = fake_client.search("zoo", "w7 w30 w41", top_k=1, explain=True)
    assert r.results[0].document_id == "long" and len(r.results[0].explanation.matches) == 3
    for m in r.results[0].explanation.matches:
        # the matched vector is a cluster; it is named by a word of the passage at that word's position
        assert text[m.document_position] == m.document_token
        assert -1.01 <= m.similarity <= 1.01

    # an ingest asking to create the collection never alters an existing one's compression
    acks = list(fake_client.ingest("zoo", [text_item("bats", "Bats hunt moths at night.")], create=True))
    assert all(a.ok for a in acks)
    assert _compression(fake_client.get_collection("zoo")) == _compression(col)
    with pytest.raises(MMSearchError) as err:
        fake_client.create_collection("zoo", compression={"tokens": "float32"})
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "compression" in err.value.details and "`mmsearch drop`" in err.value.details


def test_invalid_compression_is_invalid_argument(fake_client: Client) -> None:
    with pytest.raises(MMSearchError) as err:
        fake_client.create_collection("bad", compression={"token_pool_factor": 0})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "token_pool_factor" in err.value.details
    req = collections_pb2.CreateCollectionRequest(
        name="bad", config=collections_pb2.CollectionConfig(compression=collections_pb2.CompressionOptions(tokens=9))
    )
    with pytest.raises(MMSearchError) as err:
        fake_client._call(fake_client.collections.CreateCollection, req, retry=False)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "unknown vector storage" in err.value.details


def test_pooled_page_explanations_name_a_word_of_the_page_and_its_box(fake_client: Client) -> None:
    from .pagegen import text_page
    from .test_pages import image_item

    words = ["INVOICE", "4471", "Harbour", "Freight", "Company", "Limited"]
    list(
        fake_client.ingest("p", [image_item("inv", text_page([" ".join(words[:3]), " ".join(words[3:])]), "image/png")])
    )
    assert _compression(fake_client.get_collection("p"))[2] == 4  # created by the ingest, with the defaults
    r = fake_client.search("p", "harbour", top_k=1, explain=True)
    for m in r.results[0].explanation.matches:
        assert m.document_token in words and m.box.x1 > m.box.x0 and m.box.y1 > m.box.y0


@pytest.mark.slow
def test_default_page_compression_keeps_the_top_10_of_exact_maxsim(
    tmp_path: Path, tiny_colpali_dir: Path, shared_data: Path
) -> None:
    """Pages stored with the server's default page compression (pooled, quantised) and scored by the
    engine rank the same top 10 as exact float32 MaxSim over every unpooled patch. A tiny random
    checkpoint with real ColPali's 1,024 patches per page (pooling 16 patches to 5 says nothing about
    real pages)
    measures what compression does to MaxSim, not retrieval quality (docs/benchmarks.md)."""
    from PIL import Image

    from mmsearch.encoders.registry import create
    from mmsearch.server.settings import Settings

    from .tiny_colpali import build_tiny

    enc = create("colpali", str(build_tiny("colpali_1024", tiny_colpali_dir)))
    # Real pages (forms and receipts, as in docs/benchmarks.md): synthetic pages that differ by a word
    # tie under a random model, and top 10 among ties is arbitrary.
    files = sorted((shared_data / "funsd_forms").rglob("*.png"))[:20]
    files += sorted((shared_data / "sroie_receipts" / "images").glob("*.jpg"))[:20]
    images = [Image.open(f).convert("RGB") for f in files]
    rows = (json.loads(line) for line in (shared_data / "vidore_arxivqa_sample" / "queries.jsonl").open())
    lines = [r["text"] for r in rows][:10]
    lines += ["invoice total amount", "receipt date and tax", "company name and address", "form with signature"]
    lines += ["table of results", "annual report revenue", "total due cash change", "registration form fields"]
    pages = enc.encode_images(images)
    queries = [q.tokens for q in enc.encode_texts(lines, as_query=True)]
    s = Settings()
    c = Compression(s.page_token_storage, s.dense_storage, s.page_token_pool_factor)
    store = EdgeStore(tmp_path)
    store.create_collection(
        CollectionSpec("p", "fake", "fake", spaces={"page": SpaceSpec("page", "colpali", "m", enc.dim, ["page"], c)})
    )
    ids = [point_id(f"p{i}", 0) for i in range(len(pages))]
    store.upsert(
        "p",
        [
            PointData(pid, "page", e.pooled, pool_tokens(e.tokens, c.token_pool_factor).tokens, None, {"doc_id": pid})
            for pid, e in zip(ids, pages, strict=True)
        ],
    )
    overlaps = []
    for q in queries:
        exact = np.array([(q @ e.tokens.T).max(axis=1).sum() for e in pages])
        got = store.score_ids("p", "page_tokens", q, ids)
        top_exact = {ids[i] for i in np.argsort(-exact, kind="stable")[:10]}
        overlaps.append(len(top_exact & set(sorted(got, key=got.__getitem__, reverse=True)[:10])) / 10)
    store.close()
    assert np.mean(overlaps) >= 0.9, overlaps
