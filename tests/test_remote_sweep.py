"""The startup sweep on a Qdrant shared by several mmsearch servers (storage/slots.py): a server's
start spares the hidden points another is writing (younger than remote_sweep_grace_s), still
deletes old leftovers, and a commit whose points were swept anyway fails instead of showing part of
a document. qdrant-client's in-memory engine stands in for the shared cluster."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qdrant_client import QdrantClient

from mmsearch.server.errors import Unavailable
from mmsearch.server.ingest.versions import Version, commit
from mmsearch.server.storage.base import Cond, Where
from mmsearch.server.storage.remote import RemoteStore
from mmsearch.server.storage.slots import WRITTEN_AT

from .qdrant_standins import SerializedClient
from .test_documents_atomic import _pt
from .test_storage import _spec


def _replica(client: SerializedClient, grace_s: float) -> RemoteStore:
    return RemoteStore(client=client, sweep_grace_s=grace_s)  # type: ignore[arg-type]


def _doc(doc: str) -> Where:
    return Where(must=[Cond(key="doc_id", match=doc)])


@pytest.fixture
def cluster() -> SerializedClient:
    return SerializedClient(QdrantClient(location=":memory:"))


def test_a_starting_replica_spares_hidden_points_another_is_writing(cluster: SerializedClient) -> None:
    rng = np.random.default_rng(0)
    writer = _replica(cluster, grace_s=600)
    writer.create_collection(_spec())
    writer.upsert("c", [_pt("d", i, 0, 0, rng) for i in range(3)])  # version 1, visible
    writer.upsert("c", [_pt("d", i, 1, 0, rng) for i in range(5)])  # version 2, hidden: in flight
    writer.upsert("c", [_pt("old", i, 1, 0, rng) for i in range(2)])  # a leftover from long ago...
    writer.set_payload("c", _doc("old"), {WRITTEN_AT: int(time.time()) - 3600})
    # ...and one written before write times were kept (straight to the engine: no write time)
    legacy = [writer.dialect.point(_pt("legacy", i, 1, 0, rng)) for i in range(2)]
    cluster.upsert("mmsearch-c", legacy, wait=True)
    assert writer.count("c", hidden=True) == 3 + 5 + 2 + 2

    starting = _replica(cluster, grace_s=600)  # another server starts on the same cluster
    assert starting.sweep("c") == 4  # the old leftover and the legacy one
    assert starting.count("c", _doc("d"), hidden=True) == 8  # the in-flight version is untouched

    commit(writer, "c", "d", Version(slot=1, live=0), written=5)  # the writer finishes
    assert writer.count("c", _doc("d")) == 5 and writer.count("c", hidden=True) == 5


def test_a_commit_whose_points_were_swept_fails_and_keeps_the_old_version(cluster: SerializedClient) -> None:
    rng = np.random.default_rng(1)
    writer = _replica(cluster, grace_s=600)
    writer.create_collection(_spec())
    writer.upsert("c", [_pt("d", i, 0, 0, rng) for i in range(3)])
    writer.upsert("c", [_pt("d", i, 1, 0, rng) for i in range(5)])
    careless = _replica(cluster, grace_s=0)  # no grace: takes the in-flight points (the old behaviour)
    assert careless.sweep("c") == 5
    with pytest.raises(Unavailable, match="remote_sweep_grace_s"):
        commit(writer, "c", "d", Version(slot=1, live=0), written=5)
    assert writer.count("c", _doc("d")) == 3 and writer.count("c", hidden=True) == 3  # version 1, whole
