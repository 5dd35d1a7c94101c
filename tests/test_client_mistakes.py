"""Every client mistake gets INVALID_ARGUMENT (or its proper code), never INTERNAL: undecodable bytes
on every method, non-finite numbers, names with a trailing newline, unknown encoder names."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import SERVICE_NAMES, App, create_server
from mmsearch.v1 import common_pb2, embed_pb2, rerank_pb2, search_pb2

from .conftest import fake_settings
from .documents import ANIMALS, text_item
from .pagegen import text_page


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = create_server(fake_settings(tmp_path))
    yield app
    app.stop(grace=None)


def all_methods() -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    names = [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME]
    return [m for name in names for m in pool.FindServiceByName(name).methods]


def raw_call(channel: grpc.Channel, method: MethodDescriptor, data: bytes, timeout: float = 10) -> None:
    """Sends `data` as the request bytes of `method` (identity serializers); raises grpc.RpcError."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming and method.server_streaming:
        list(channel.stream_stream(path)(iter([data]), timeout=timeout))
    elif method.client_streaming:
        channel.stream_unary(path)(iter([data]), timeout=timeout)
    elif method.server_streaming:
        list(channel.unary_stream(path)(data, timeout=timeout))
    else:
        channel.unary_unary(path)(data, timeout=timeout)


def bad_utf8(method: MethodDescriptor) -> bytes | None:
    """The request with its first string field set to bytes that are not UTF-8."""
    for f in method.input_type.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            return bytes([f.number << 3 | 2, 2]) + b"\xff\xfe"
    return None


CORRUPT = [b"\xff\xff\xff\xff", b"\x0a\x7fshort", b"\x08"]  # bad tag varint, truncated field, missing value


@pytest.mark.parametrize("method", all_methods(), ids=lambda m: m.full_name)
def test_undecodable_requests_are_invalid_argument_on_every_method(app: App, method: MethodDescriptor) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        payloads = [*CORRUPT, *filter(None, [bad_utf8(method)])]
        for data in payloads:
            with pytest.raises(grpc.RpcError) as err:
                raw_call(channel, method, data)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (data, err.value)
            assert "not a valid message" in (err.value.details() or "")


def test_non_finite_metadata_refuses_that_item_only(fake_client: Client) -> None:
    items = [
        text_item("before", "cats purr"),
        text_item("nan", "dogs bark", {"x": math.nan}),
        text_item("inf", "owls hoot", {"nested": {"y": [1, -math.inf]}}),
        text_item("after", "trout swim"),
    ]
    acks = list(fake_client.ingest("c", items))
    assert [a.ok for a in acks] == [True, False, False, True]
    for a in acks[1:3]:
        assert a.error_code == "INVALID_ARGUMENT" and "NaN or infinity" in a.error
    assert fake_client.get_collection("c").document_count == 2


def _code(fn, *args, **kw) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(MMSearchError) as err:
        fn(*args, **kw)
    return err.value.code


def test_accepted_nonsense_is_refused(fake_client: Client) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert _code(fake_client.create_collection, "c\n") == invalid
    assert [c.name for c in fake_client.list_collections()] == []
    fake_client.create_collection("zoo", indexed_fields={"legs": "integer"})
    assert all(a.ok for a in fake_client.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    for weight in (math.nan, math.inf, -math.inf):
        ranking = search_pb2.RankingOptions(dense_weight=weight)
        assert _code(fake_client.search, "zoo", "mice", ranking=ranking) == invalid
    for bound in (math.nan, math.inf):
        f = common_pb2.Filter()
        f.must.add(key="legs", range=common_pb2.Range(gt=bound))
        assert _code(fake_client.search, "zoo", "mice", filter=f) == invalid
    f = common_pb2.Filter()
    f.must.add(key="legs\n", match=common_pb2.FilterValue(int_value=4))
    assert _code(fake_client.search, "zoo", "mice", filter=f) == invalid
    assert fake_client.search("zoo", "mice", filter={"legs": {"gt": 1.5}}).results  # finite bounds still work


@pytest.mark.parametrize(
    ("kind", "model"),
    [("fake", "fake-abc"), ("fake", "fake-0"), ("sentence-transformers", "m" * 300), ("nope", "x")],
)
def test_embed_with_an_unknown_model_is_refused_not_internal(
    fake_client: Client, tmp_path: Path, kind: str, model: str
) -> None:
    """Outside the operator's allowed models: PERMISSION_DENIED before anything is loaded. With any
    model allowed, a name no loader can make sense of is FAILED_PRECONDITION."""
    ref = embed_pb2.EncoderRef(kind=kind, model=model)
    req = embed_pb2.EmbedRequest(inputs=[embed_pb2.EmbedInput(text="hi")], encoder=ref)
    with pytest.raises(grpc.RpcError) as err:
        fake_client.embed_stub.Embed(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    app = create_server(fake_settings(tmp_path / "open", allowed_models=["*"]))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as open_client:
            with pytest.raises(grpc.RpcError) as err:
                open_client.embed_stub.Embed(req, timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value
    finally:
        app.stop(grace=None)


def test_rerank_checks_the_query_before_reading_image_documents(fake_client: Client) -> None:
    page = rerank_pb2.RerankDocument(image=common_pb2.Image(data=text_page(["some words"] * 20), mime_type="image/png"))
    for query in ("", "q" * 5000):
        req = rerank_pb2.RerankRequest(query=query, documents=[page] * 20)
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as err:
            fake_client.rerank_stub.Rerank(req, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert time.perf_counter() - start < 1.0  # no OCR ran (20 pages take seconds)


def test_declared_fields_hold_their_type_and_filters_ask_for_it(fake_client: Client) -> None:
    """A declared field refuses a record of the wrong type (it used to be stored, and then every search
    boosted on the field failed); a filter on it must ask for its type (a typo matched nothing)."""
    fake_client.create_collection(
        "typed", indexed_fields={"year": "integer", "team": "keyword", "price": "float", "sizes": "integer"}
    )
    items = [
        text_item("ok", "budget plan for the finance team", {"year": 2021, "team": "finance", "price": 2.5}),
        text_item("words", "budget review by the sales team", {"year": "nineteen"}),
        text_item("list", "budget archive of old plans", {"year": 2019, "team": ["a", "b"], "sizes": [1, 2]}),
        text_item("bool", "budget notes", {"team": True}),
        text_item("mixed", "budget sizes", {"sizes": [1, "XL"]}),
        text_item("null", "budget draft", {"year": None}),
    ]
    acks = list(fake_client.ingest("typed", items))
    assert [a.ok for a in acks] == [True, False, True, False, False, True]
    assert acks[1].error_code == "INVALID_ARGUMENT"
    assert "field 'year' is declared integer" in acks[1].error and "'nineteen'" in acks[1].error
    assert "field 'team' is declared keyword" in acks[3].error
    assert "field 'sizes' is declared integer" in acks[4].error and "'XL'" in acks[4].error
    boosted = search_pb2.RankingOptions()
    boosted.boosts.numeric.add(key="year", direction=search_pb2.BOOST_DIRECTION_HIGHER, weight=0.5)
    assert {r.document_id for r in fake_client.search("typed", "budget", ranking=boosted).results} == {
        "ok",
        "list",
        "null",
    }
    assert [r.document_id for r in fake_client.search("typed", "budget", filter={"year": 2021}).results] == ["ok"]
    refused = {
        "year": ">2020",  # `--filter year=>2020`
        "team": {"gte": 1},  # a range on a keyword
        "price": "cheap",
    }
    for key, value in refused.items():
        with pytest.raises(MMSearchError) as err:
            fake_client.search("typed", "budget", filter={key: value})
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, key
        assert f"filter on {key!r}: the field is declared" in err.value.details, err.value.details
    assert "a range is written year>=N" in _details(fake_client.search, "typed", "b", filter={"year": ">2020"})
    assert _code(fake_client.delete, "typed", filter={"year": "2021"}) == grpc.StatusCode.INVALID_ARGUMENT
    assert fake_client.get_collection("typed").document_count == 3  # nothing deleted
    assert [r.document_id for r in fake_client.search("typed", "b", filter={"price": {"lte": 2.5}}).results] == ["ok"]
    # a whole number against a keyword field is its text (`--filter team=123` cannot send "123")
    big = 2**60  # a Struct carries it as a float: still a whole number
    assert all(
        a.ok for a in fake_client.ingest("typed", [text_item("code", "budget code", {"team": "123", "year": big})])
    )
    assert [r.document_id for r in fake_client.search("typed", "b", filter={"team": 123}).results] == ["code"]
    assert [r.document_id for r in fake_client.search("typed", "b", filter={"team": [123, 7]}).results] == ["code"]


def _details(fn, *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(MMSearchError) as err:
        fn(*args, **kw)
    return err.value.details


def test_the_python_client_reports_unsendable_arguments_as_invalid_argument(fake_client: Client) -> None:
    """protobuf raised a bare ValueError or TypeError for these, or sent None as the text "None"."""
    fake_client.create_collection("c")
    for top_k in (-1, 2**40, "5", True):
        assert "top_k must be" in _details(fake_client.search, "c", "q", top_k=top_k)
    bad_filters = {
        "{'gt': 'x'}": {"year": {"gt": "x"}},
        "bounds gt, gte, lt, lte": {"year": {"above": 3}},
        "cannot be matched exactly": {"year": 1.5},
        "None cannot be matched": {"year": None},
    }
    for message, flt in bad_filters.items():
        details = _details(fake_client.search, "c", "q", filter=flt)
        assert "filter on 'year'" in details, details
        assert message in details or "must be a number" in details, details
        assert _code(fake_client.delete, "c", filter=flt) == grpc.StatusCode.INVALID_ARGUMENT
    assert fake_client.search("c", "q", filter={"year": 2020.0}).results == []  # 2020.0 is 2020
    assert "too large for a float" in _details(fake_client.search, "c", "q", filter={"year": {"gt": 2**1100}})
    # numpy's numbers and Decimal are numbers (protobuf took them before these checks)
    import decimal

    import numpy as np

    assert fake_client.search("c", "q", top_k=np.int64(5)).results == []
    bounds = {"gte": np.int64(2020), "lt": np.float32(2030.5), "lte": decimal.Decimal("2031")}
    assert fake_client.search("c", "q", filter={"year": bounds, "n": np.int32(3)}).results == []


@pytest.mark.parametrize("name", ["bad name!", "x" * 300])
def test_ingest_that_would_create_a_badly_named_collection_says_why(fake_client: Client, name: str) -> None:
    """As `create` says it: it was NOT_FOUND "collection 'bad name!' does not exist"."""
    with pytest.raises(MMSearchError) as err:
        list(fake_client.ingest(name, [text_item("a", "hello")]))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "is invalid: 1-64 letters, digits, '_' or '-'" in err.value.details
    with pytest.raises(MMSearchError) as err:
        fake_client.create_collection(name)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("weight", ["dense_weight", "maxsim_weight", "lexical_weight"])
def test_negative_ranking_weights_are_refused(fake_client: Client, weight: str) -> None:
    """A negative weight was accepted and ranked the best matches last; 0 still turns a signal off."""
    fake_client.create_collection("zoo")
    assert all(a.ok for a in fake_client.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    with pytest.raises(MMSearchError) as err:
        fake_client.search("zoo", "mice", ranking=search_pb2.RankingOptions(**{weight: -1}))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"ranking weight {weight} is -1.0; weights must be 0 or more" in err.value.details
    assert fake_client.search("zoo", "mice", ranking=search_pb2.RankingOptions(**{weight: 0})).results


@pytest.mark.parametrize(
    ("bounds", "said"),
    [
        ({"gt": 10, "lt": 5}, "> 10 and < 5"),
        ({"gte": 4, "lt": 4}, ">= 4 and < 4"),
        ({"gt": 4, "lte": 4}, "> 4 and <= 4"),
        ({"gte": 7, "lte": 2, "gt": 1}, ">= 7 and <= 2"),
    ],
)
def test_empty_ranges_are_refused_for_searches_and_deletes(
    fake_client: Client, bounds: dict[str, float], said: str
) -> None:
    """A range no number falls in matched nothing, silently: most likely its bounds were swapped."""
    fake_client.create_collection("zoo")  # legs undeclared: the check does not depend on declared types
    assert all(a.ok for a in fake_client.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    for call in (fake_client.search, fake_client.delete):
        args = ("zoo", "mice") if call == fake_client.search else ("zoo",)
        with pytest.raises(MMSearchError) as err:
            call(*args, filter={"legs": bounds})
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, call
        assert f"filter on 'legs': the range {said} is empty" in err.value.details
    # nested (must_not) conditions too, and a one-value range stays valid
    f = common_pb2.Filter()
    f.must_not.add(key="legs", range=common_pb2.Range(gt=10, lt=5))
    assert _code(fake_client.search, "zoo", "mice", filter=f) == grpc.StatusCode.INVALID_ARGUMENT
    assert fake_client.search("zoo", "mice", filter={"legs": {"gte": 4, "lte": 4}}).results
    assert fake_client.get_collection("zoo").document_count == len(ANIMALS)


def test_unknown_names_and_negative_counts_are_named_before_sending(fake_client: Client) -> None:
    """An unknown policy went as UNSPECIFIED (= keep, silently), an unknown modality as 0 ("unknown
    modality 0"), a negative count as protobuf's bare "ValueError: Value out of range: -5"."""
    fake_client.create_collection("c")
    assert "on_duplicate 'merge' is not one of keep, skip, replace" in _details(
        fake_client.create_collection, "zz1", on_duplicate="merge"
    )
    assert "on_duplicate 'skipp' is not one of keep, skip, replace" in _details(
        lambda: list(fake_client.ingest("c", [text_item("a", "owls")], on_duplicate="skipp"))
    )
    assert "ocr 'sometimes' is not one of auto, always, never" in _details(
        fake_client.create_collection, "zz2", ocr="sometimes"
    )
    assert "modality 'video' is not one of text, page" in _details(fake_client.search, "c", "q", modalities=["video"])
    assert "'turbo2'" in _details(fake_client.create_collection, "zz3", compression={"tokens": "turbo2"})
    counts = {
        "max_words": lambda v: fake_client.create_collection("zz4", max_words=v),
        "overlap_words": lambda v: fake_client.create_collection("zz4", overlap_words=v),
        "token_pool_factor": lambda v: fake_client.create_collection("zz4", compression={"token_pool_factor": v}),
        "neighbours": lambda v: fake_client.find_duplicates("c", neighbours=v),
        "top_n": lambda v: fake_client.rerank("q", ["a"], top_n=v),
        "page": lambda v: fake_client.get_page("c", "a", v),
    }
    for name, call in counts.items():
        for bad in (-5, 2.5):
            with pytest.raises(MMSearchError) as err:
                call(bad)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and name in err.value.details, err.value
            assert repr(bad) in err.value.details
    assert {c.name for c in fake_client.list_collections()} == {"c"}  # nothing was created
