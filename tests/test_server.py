"""Server behaviour over real gRPC channels, fake encoder, on both storage backends."""

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import SERVICE_NAMES, App
from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2, search_pb2_grpc

from .documents import ANIMALS, text_item


def _ingest(c: Client, items: list, collection: str = "zoo") -> list:
    return list(c.ingest(collection, items))


def _load_zoo(c: Client, compression: dict[str, str | int] | None = None) -> None:
    c.create_collection("zoo", indexed_fields={"kind": "keyword", "legs": "integer"}, compression=compression)
    acks = _ingest(c, [text_item(k, t, m) for k, (t, m) in ANIMALS.items()])
    assert all(a.ok for a in acks), acks


def _expect(code: grpc.StatusCode, fn, *args, match: str = "", **kw) -> MMSearchError:  # type: ignore[no-untyped-def]
    with pytest.raises(MMSearchError) as err:
        fn(*args, **kw)
    assert err.value.code == code, err.value
    assert match.lower() in err.value.details.lower()
    return err.value


def test_collections_crud_and_errors(fake_client: Client) -> None:
    col = fake_client.create_collection("docs")
    assert col.name == "docs" and col.spaces[0].dim == 32 and col.config.chunking.max_words == 180
    _expect(grpc.StatusCode.ALREADY_EXISTS, fake_client.create_collection, "docs", match="'docs' already exists")
    _expect(grpc.StatusCode.NOT_FOUND, fake_client.get_collection, "nope", match="'nope' does not exist")
    _expect(grpc.StatusCode.INVALID_ARGUMENT, fake_client.create_collection, "bad name!", match="invalid")
    # A model the operator did not allow is refused before the path is looked at (tests/test_security.py:
    # an allowed one that is missing is FAILED_PRECONDITION).
    _expect(
        grpc.StatusCode.PERMISSION_DENIED,
        fake_client.create_collection,
        "m",
        text_model="/no/such/model",
        text_kind="sentence-transformers",
        match="/no/such/model",
    )
    assert [c.name for c in fake_client.list_collections()] == ["docs"]
    fake_client.delete_collection("docs")
    _expect(grpc.StatusCode.NOT_FOUND, fake_client.delete_collection, "docs")
    assert fake_client.list_collections() == []


def test_ingest_search_and_counts(fake_client: Client) -> None:
    _load_zoo(fake_client)
    col = fake_client.get_collection("zoo")
    assert (col.document_count, col.point_count) == (4, 4)
    r = fake_client.search("zoo", "which animals hunt mice at night", top_k=2)
    assert [x.document_id for x in r.results] == ["owls", "cats"]
    top = r.results[0]
    assert top.modality == common_pb2.MODALITY_TEXT and top.page == 0 and "Owls hunt" in top.snippet
    assert dict(top.metadata.fields)["kind"] == "bird"
    assert 0.0 <= top.score <= 1.0 and top.score >= r.results[1].score


def test_filters(fake_client: Client) -> None:
    _load_zoo(fake_client)
    ids = lambda r: {x.document_id for x in r.results}  # noqa: E731
    q = "animals"
    assert ids(fake_client.search("zoo", q, filter={"kind": "mammal"})) == {"cats", "dogs"}
    assert ids(fake_client.search("zoo", q, filter={"kind": ["bird", "fish"]})) == {"owls", "trout"}
    assert ids(fake_client.search("zoo", q, filter={"legs": {"lt": 3}})) == {"owls", "trout"}
    assert ids(fake_client.search("zoo", q, filter={"legs": 4, "tag": "pet"})) == {"cats", "dogs"}
    assert ids(fake_client.search("zoo", q, filter={"kind": "reptile"})) == set()
    assert ids(fake_client.search("zoo", q, modalities=["page"])) == set()
    assert len(fake_client.search("zoo", q, modalities=["text"]).results) == 4


def test_threshold_top_k_and_explain(fake_client: Client) -> None:
    # Exact token vectors (no pooling, float32): an identical word then matches with similarity 1;
    # tests/test_compression.py explains compressed collections.
    _load_zoo(fake_client, {"tokens": "float32", "token_pool_factor": 1})
    everything = fake_client.search("zoo", "mice at night", top_k=10)
    cut = (everything.results[0].score + everything.results[1].score) / 2
    assert [x.document_id for x in fake_client.search("zoo", "mice at night", score_threshold=cut).results] == [
        everything.results[0].document_id
    ]
    assert len(fake_client.search("zoo", "mice", top_k=1).results) == 1
    r = fake_client.search("zoo", "silent owls", top_k=1, explain=True)
    e = r.results[0].explanation
    assert {m.query_token for m in e.matches} == {"silent", "owls"}
    assert all(m.document_token == m.query_token and m.similarity == pytest.approx(1.0, abs=1e-2) for m in e.matches)
    assert set(e.signals) == {"dense", "maxsim", "lexical"}


def test_reingest_replaces_and_deletes(fake_client: Client) -> None:
    fake_client.create_collection("long", max_words=10, overlap_words=2)
    long_text = " ".join(f"word{i}" for i in range(40))
    acks = _ingest(fake_client, [text_item("doc", long_text), text_item("other", "unrelated short text")], "long")
    assert acks[0].points == 5 and acks[1].points == 1
    assert fake_client.get_collection("long").point_count == 6
    # passages remember their document and position
    r = fake_client.search("long", "word35 word36", top_k=3, all_passages=True)
    assert r.results[0].document_id == "doc" and r.results[0].passage == 4
    # same id again, shorter: replaced, no stale passages
    acks = _ingest(fake_client, [text_item("doc", "now a short text")], "long")
    col = fake_client.get_collection("long")
    assert (col.document_count, col.point_count) == (2, 2)
    assert fake_client.search("long", "word35", top_k=5).results[0].snippet in (
        "now a short text",
        "unrelated short text",
    )
    assert fake_client.delete("long", ids=["doc"]) == 1
    assert fake_client.get_collection("long").point_count == 1


def test_delete_by_filter(fake_client: Client) -> None:
    _load_zoo(fake_client)
    assert fake_client.delete("zoo", filter={"tag": "pet"}) == 2
    assert {x.document_id for x in fake_client.search("zoo", "animals").results} == {"owls", "trout"}
    _expect(grpc.StatusCode.INVALID_ARGUMENT, fake_client.delete, "zoo", match="ids or a filter")
    _expect(grpc.StatusCode.NOT_FOUND, fake_client.delete, "nope", ids=["x"])


def test_per_item_rejections_do_not_sink_the_batch(fake_client: Client) -> None:
    fake_client.create_collection("mixed")
    items = [
        text_item("good1", "a perfectly fine text"),
        ingest_pb2.IngestItem(
            id="latin1", source="latin1.txt", text_file=ingest_pb2.TextFile(data="café".encode("latin-1"))
        ),
        text_item("", "no id here", source="noid"),
        text_item("blank", "   \n "),
        ingest_pb2.IngestItem(id="nothing", source="nothing"),
        ingest_pb2.IngestItem(id="utf8", text_file=ingest_pb2.TextFile(data="café au lait".encode())),
        text_item("good2", "another fine text"),
    ]
    acks = _ingest(fake_client, items, "mixed")
    assert [a.sequence for a in acks] == list(range(7))
    assert [a.ok for a in acks] == [True, False, False, False, False, True, True]
    assert "not valid UTF-8 (byte 0xe9 at offset 3)" in acks[1].error and acks[1].error_code == "INVALID_ARGUMENT"
    assert "no id" in acks[2].error and acks[2].source == "noid"
    assert "has no text" in acks[3].error
    assert "no content" in acks[4].error
    assert fake_client.get_collection("mixed").document_count == 3


def test_ingest_unknown_collection_and_autocreate(fake_client: Client) -> None:
    with pytest.raises(MMSearchError) as err:
        list(fake_client.ingest("ghost", [text_item("a", "text")], create=False))
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "'ghost'" in err.value.details
    acks = list(fake_client.ingest("auto", [text_item("a", "text")], create=True))
    assert acks[0].ok and fake_client.get_collection("auto").document_count == 1


def test_bad_search_requests_keep_server_serving(fake_client: Client, fake_app: App) -> None:
    _load_zoo(fake_client)
    bad = grpc.StatusCode.INVALID_ARGUMENT
    _expect(bad, fake_client.search, "zoo", "   ", match="query is empty")
    _expect(grpc.StatusCode.NOT_FOUND, fake_client.search, "nope", "cats", match="'nope' does not exist")
    _expect(bad, fake_client.search, "", "cats", match="collection is empty")
    _expect(bad, fake_client.get_collection, "", match="collection is empty")
    _expect(bad, fake_client.search, "zoo", "cats", top_k=5000, match="top_k must be between 1 and 1000")
    _expect(bad, fake_client.search, "zoo", "cats", score_threshold=1.5, match="score_threshold")
    no_type = common_pb2.Filter(must=[common_pb2.FieldCondition(key="kind", match=common_pb2.FilterValue())])
    _expect(bad, fake_client.search, "zoo", "cats", filter=no_type, match="value has no type")
    no_cond = common_pb2.Filter(must=[common_pb2.FieldCondition(key="kind")])
    _expect(bad, fake_client.search, "zoo", "cats", filter=no_cond, match="has no condition")
    mixed = common_pb2.Filter(
        must=[
            common_pb2.FieldCondition(
                key="kind",
                any_of=common_pb2.FilterValues(
                    values=[common_pb2.FilterValue(string_value="a"), common_pb2.FilterValue(int_value=1)]
                ),
            )
        ]
    )
    _expect(bad, fake_client.search, "zoo", "cats", filter=mixed, match="all strings or all integers")
    # oversized message: the fixture limits messages to 8 MiB
    _expect(grpc.StatusCode.RESOURCE_EXHAUSTED, fake_client.search, "zoo", "x" * (9 * 1024 * 1024))
    with pytest.raises(MMSearchError) as err:
        list(fake_client.ingest("zoo", [text_item("huge", "word " * 2_000_000)]))
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # still serving, nothing lost
    assert fake_client.health() == "SERVING"
    assert fake_client.get_collection("zoo").document_count == 4
    assert fake_client.search("zoo", "mice").results


def test_bad_image_query_and_broken_pdf(fake_client: Client) -> None:
    _load_zoo(fake_client)
    stub = search_pb2_grpc.SearchServiceStub(fake_client.channel)
    image = common_pb2.Image(data=b"not a png", mime_type="image/png")
    with pytest.raises(grpc.RpcError) as err:
        stub.Search(search_pb2.SearchRequest(collection="zoo", query=search_pb2.Query(image=image)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "does not match the bytes" in err.value.details()
    acks = _ingest(fake_client, [ingest_pb2.IngestItem(id="p", pdf=b"%PDF-1.4")])
    assert not acks[0].ok and acks[0].error_code == "INVALID_ARGUMENT" and "PDF cannot be opened" in acks[0].error


def test_health_reflection_info(fake_client: Client, fake_app: App) -> None:
    health = health_pb2_grpc.HealthStub(fake_client.channel)
    for name in ["", *SERVICE_NAMES]:
        assert (
            health.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING
        )
    refl = reflection_pb2_grpc.ServerReflectionStub(fake_client.channel)
    resp = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    listed = {s.name for s in resp.list_services_response.service}
    assert set(SERVICE_NAMES) <= listed and "grpc.health.v1.Health" in listed
    info = fake_client.info()
    assert info.storage_backend == fake_app.store.backend and info.max_top_k == 1000


def test_rerank_and_embed(fake_client: Client) -> None:
    docs = ["owls hunt mice at night", "trout swim in rivers", "cats chase mice"]
    r = fake_client.rerank("mice at night", docs, top_n=2, return_documents=True)
    assert [x.index for x in r.results] == [0, 2]
    assert r.results[0].relevance_score >= r.results[1].relevance_score and r.results[0].document.text == docs[0]
    _expect(grpc.StatusCode.INVALID_ARGUMENT, fake_client.rerank, "q", [], match="no documents")
    _expect(grpc.StatusCode.INVALID_ARGUMENT, fake_client.rerank, " ", ["d"], match="query is empty")
    _expect(grpc.StatusCode.RESOURCE_EXHAUSTED, fake_client.rerank, "q", ["d"] * 1001, match="limit is 1000")
    e = fake_client.embed(["hello world"], multi_vector=True)
    assert len(e.embeddings[0].pooled.values) == 32 and list(e.embeddings[0].token_strings) == ["hello", "world"]


def test_concurrent_searches_during_ingest(fake_client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _load_zoo(fake_client, compression={"tokens": "float16", "token_pool_factor": 1})  # exact word matches
    items = [text_item(f"n{i}", f"note {i} about mice and rivers number{i}") for i in range(300)]
    with ThreadPoolExecutor(4) as pool:
        searches = [pool.submit(fake_client.search, "zoo", "mice at night", top_k=3) for _ in range(40)]
        acks = list(fake_client.ingest("zoo", items))
        results = [f.result() for f in searches]
    assert all(a.ok for a in acks) and all(r.results for r in results)
    assert fake_client.get_collection("zoo").document_count == 304
    assert fake_client.search("zoo", "number123", top_k=1).results[0].document_id == "n123"


def test_true_and_false_match_stored_booleans_not_numbers(fake_client: Client) -> None:
    """qdrant-edge read a Python bool as 1/0: `flag=true` matched nothing stored true, and matched a
    stored 1, so a delete by it removed the wrong documents."""
    fake_client.create_collection("b", indexed_fields={"flag": "bool"})
    items = [
        text_item("yes", "owls hunt at night", {"flag": True, "n": 0}),
        text_item("no", "owls sleep by day", {"flag": False, "n": 1}),
        text_item("unset", "owls nest in barns", {"n": 1}),
    ]
    assert all(a.ok for a in fake_client.ingest("b", items))

    def ids(flt: dict) -> list[str]:
        return sorted(r.document_id for r in fake_client.search("b", "owls", top_k=10, filter=flt).results)

    assert ids({"flag": True}) == ["yes"]
    assert ids({"flag": False}) == ["no"]
    assert ids({"n": True}) == [] and ids({"n": 1}) == ["no", "unset"]  # undeclared: a number is no bool
    assert fake_client.delete("b", filter={"n": True}) == 0
    assert fake_client.delete("b", filter={"flag": True}) == 1
    assert ids({"n": 0}) == [] and fake_client.get_collection("b").document_count == 2


def test_a_missing_model_fails_ingest_and_search_alike(fake_client: Client, fake_app: App, tmp_path: Path) -> None:
    """The collection's model directory is gone (moved after the collection was made): the server's
    problem, FAILED_PRECONDITION, for ingest too (each item was INVALID_ARGUMENT, as if it were bad)."""
    import dataclasses

    fake_client.create_collection("template")
    template = fake_app.store.get_spec("template")
    gone = str(tmp_path / "moved-model")
    text = dataclasses.replace(template.spaces["text"], kind="sentence-transformers", model=gone)
    spec = dataclasses.replace(
        template, name="orphan", text_kind="sentence-transformers", text_model=gone, spaces={"text": text}
    )
    fake_app.store.create_collection(spec)
    _expect(grpc.StatusCode.FAILED_PRECONDITION, fake_client.search, "orphan", "cats", match="does not exist")
    acks = _ingest(fake_client, [text_item("z1", "cats and dogs"), text_item("z2", "more cats")], "orphan")
    assert [a.error_code for a in acks] == ["FAILED_PRECONDITION"] * 2, acks
    assert f"item 'z1' could not be encoded: model directory {gone!r} does not exist" in acks[0].error


def test_overlap_follows_a_passage_size_given_without_one(fake_client: Client) -> None:
    """max_words 50 alone took the server's 40 shared words: every word stored five times."""
    assert fake_client.create_collection("short", max_words=50).config.chunking.overlap_words == 11  # 40/180
    assert fake_client.create_collection("none", max_words=50, overlap_words=0).config.chunking.overlap_words == 0
    assert fake_client.create_collection("dflt").config.chunking.overlap_words == 40
