"""The vocabulary on the wire: every proto enum value has its vocab member and back; metadata and
filters as the client writes them and the server reads them."""

from __future__ import annotations

import typing

import pytest

from mmsearch.protocol.vocab import DenseQuantization, FieldType, Fusion, Modality, RerankMethod, VectorStorage
from mmsearch.protocol.wire import (
    DENSE_QUANTIZATION,
    DUPLICATE_POLICY,
    FIELD_TYPE,
    FUSION,
    MODALITY,
    RERANK_METHOD,
    VECTOR_STORAGE,
    WireEnum,
    dict_to_metadata,
    make_filter,
    metadata_to_dict,
)
from mmsearch.server.settings import DenseCopy, Storage
from mmsearch.v1 import collections_pb2, common_pb2, rerank_pb2, search_pb2


@pytest.mark.parametrize(
    ("table", "proto"),
    [
        (MODALITY, common_pb2.Modality),
        (FIELD_TYPE, common_pb2.FieldType),
        (FUSION, search_pb2.FusionStrategy),
        (RERANK_METHOD, rerank_pb2.RerankMethod),
        (VECTOR_STORAGE, collections_pb2.VectorStorage),
        (DUPLICATE_POLICY, common_pb2.DuplicatePolicy),
        (DENSE_QUANTIZATION, collections_pb2.DenseQuantization),
    ],
)
def test_every_proto_value_has_its_member(table: WireEnum, proto: object) -> None:  # type: ignore[type-arg]
    numbers = {n for name, n in proto.items() if not name.endswith("_UNSPECIFIED")}  # type: ignore[attr-defined]
    assert {table.from_wire(n) for n in numbers} == set(table.vocab)
    assert {table.to_wire(m) for m in table.vocab} == numbers
    assert table.from_wire(0) is None and table.from_wire(99) is None
    assert table.to_wire("no-such-member") == 0  # UNSPECIFIED: the server says what is wrong


def test_settings_offer_every_vector_storage() -> None:
    assert list(typing.get_args(Storage)) == list(VectorStorage)
    assert list(typing.get_args(DenseCopy)) == list(DenseQuantization)


def test_names_follow_the_proto() -> None:
    assert FUSION.to_wire("calibrated_zscore") == search_pb2.FUSION_STRATEGY_CALIBRATED_ZSCORE
    assert MODALITY.from_wire(common_pb2.MODALITY_PAGE) is Modality.PAGE
    assert FIELD_TYPE.from_wire(common_pb2.FIELD_TYPE_BOOL) is FieldType.BOOL
    assert RERANK_METHOD.from_wire(rerank_pb2.RERANK_METHOD_CROSS_ENCODER) is RerankMethod.CROSS_ENCODER
    assert list(Fusion) == ["weighted_zscore", "calibrated_zscore", "rrf", "dbsf", "maxsim"]


def test_metadata_round_trip_keeps_integers() -> None:
    meta = {"year": 2020, "score": 0.5, "tags": ["a", 3], "nested": {"n": 1}, "ok": True, "title": "x"}
    back = metadata_to_dict(dict_to_metadata(meta))
    assert back == meta and isinstance(back["year"], int) and isinstance(back["nested"]["n"], int)
    assert metadata_to_dict(common_pb2.Metadata()) == {}


def test_make_filter() -> None:
    f = make_filter({"lang": "en", "tag": ["a", "b"], "year": {"gte": 2020}, "ok": True, "n": 3})
    assert f is not None
    by_key = {c.key: c for c in f.must}
    assert by_key["lang"].match.string_value == "en" and by_key["ok"].match.bool_value is True
    assert by_key["n"].match.int_value == 3
    assert [v.string_value for v in by_key["tag"].any_of.values] == ["a", "b"]
    assert by_key["year"].range.gte == 2020 and not by_key["year"].range.HasField("lt")
    assert make_filter(None) is None and make_filter(f) is f
