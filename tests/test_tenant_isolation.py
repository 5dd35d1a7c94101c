"""Property test: many tenants writing into one collection, random documents, random queries and
filters (must / should / must_not, document ids) and random deletes. No response under tenant A
ever holds a document of tenant B, and no delete under A removes anything of B."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsearch.client import Client
from mmsearch.protocol.wire import filter_value, metadata_to_dict
from mmsearch.server.app import App, create_server
from mmsearch.v1 import common_pb2

from .conftest import fake_settings
from .documents import text_item
from .test_security import secret, write_keys

TENANTS = ["t0", "t1", "t2"]
WORDS = ["alpha", "beta", "gamma", "delta", "report", "invoice"]
IDS = [f"d{i}" for i in range(5)]
_names = itertools.count()


@pytest.fixture(scope="module")
def tenants_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    tmp: Path = tmp_path_factory.mktemp("tenants")
    keys = {"admin": ("admin", ["*"], None, "")} | {t: ("write", ["*"], t, "") for t in TENANTS}
    app = create_server(fake_settings(tmp / "data", api_keys=write_keys(tmp / "keys.toml", keys)))
    yield app
    app.stop(grace=None)


def _condition(key: str, value: object) -> common_pb2.FieldCondition:
    c = common_pb2.FieldCondition(key=key)
    if isinstance(value, list):
        c.any_of.values.extend(filter_value(v) for v in value)
    else:
        c.match.CopyFrom(filter_value(value))
    return c


conditions = st.one_of(
    st.tuples(st.just("tag"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("n"), st.integers(0, 3)),
    st.tuples(st.just("owner"), st.sampled_from(TENANTS)),  # the user's own metadata, naming other tenants
    st.tuples(st.just("tag"), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)),
)


@st.composite
def filters(draw: st.DrawFn) -> common_pb2.Filter | None:
    if draw(st.booleans()):
        return None
    f = common_pb2.Filter()
    for part in (f.must, f.should, f.must_not):
        for key, value in draw(st.lists(conditions, max_size=2)):
            part.append(_condition(key, value))
    return f


documents = st.lists(
    st.tuples(
        st.sampled_from(TENANTS),
        st.sampled_from(IDS),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
        st.sampled_from(["a", "b"]),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=documents,
    queries=st.lists(
        st.tuples(
            st.sampled_from(TENANTS), st.sampled_from(WORDS), filters(), st.lists(st.sampled_from(IDS), max_size=3)
        ),
        min_size=1,
        max_size=4,
    ),
    deletes=st.lists(
        st.tuples(st.sampled_from(TENANTS), st.lists(st.sampled_from(IDS), max_size=3), st.sampled_from(["a", "b"])),
        max_size=3,
    ),
)
def test_no_tenant_ever_sees_or_deletes_another_tenants_documents(
    tenants_app: App,
    docs: list[tuple[str, str, str, str, int]],
    queries: list[tuple[str, str, common_pb2.Filter | None, list[str]]],
    deletes: list[tuple[str, list[str], str]],
) -> None:
    address = f"127.0.0.1:{tenants_app.port}"
    clients = {t: Client(address, timeout=20, retries=0, api_key=secret(t)) for t in [*TENANTS, "admin"]}
    name = f"c{next(_names)}"
    try:
        clients["admin"].create_collection(name, indexed_fields={"tag": "keyword", "n": "integer"})
        owned: dict[str, dict[str, str]] = {t: {} for t in TENANTS}  # tenant -> doc id -> text (last write wins)
        for tenant, doc_id, text, tag, n in docs:
            meta = {"tag": tag, "n": n, "owner": tenant}
            assert all(a.ok for a in clients[tenant].ingest(name, [text_item(doc_id, text, meta)]))
            owned[tenant][doc_id] = text
        for tenant, word, flt, ids in queries:
            results = clients[tenant].search(name, word, top_k=50, filter=flt, document_ids=ids).results
            for r in results:
                assert metadata_to_dict(r.metadata)["owner"] == tenant, (tenant, r)
                assert owned[tenant].get(r.document_id) == r.snippet, (tenant, r)
            if flt is None and not ids:  # unfiltered: every document of the tenant is a candidate
                assert {r.document_id for r in results} <= set(owned[tenant])
        for tenant, ids, tag in deletes:
            before = {t: clients[t].get_collection(name).document_count for t in TENANTS}
            if ids:
                clients[tenant].delete(name, ids=ids)
                for doc_id in ids:
                    owned[tenant].pop(doc_id, None)
            else:
                clients[tenant].delete(name, filter={"tag": tag})
                owned[tenant] = {d: t for d, t in owned[tenant].items() if _tag_of(docs, tenant, d) != tag}
            for other in TENANTS:
                count = clients[other].get_collection(name).document_count
                assert count == len(owned[other]), (other, count, owned[other])
                if other != tenant:
                    assert count == before[other]
                    found = clients[other].search(name, " ".join(WORDS), top_k=50, document_ids=list(IDS)).results
                    assert {r.document_id for r in found} == set(owned[other])
    finally:
        clients["admin"].delete_collection(name)
        for c in clients.values():
            c.close()


def _tag_of(docs: list[tuple[str, str, str, str, int]], tenant: str, doc_id: str) -> str:
    """The tag of the version of `doc_id` that `tenant` wrote last."""
    return [tag for t, d, _, tag, _ in docs if t == tenant and d == doc_id][-1]
