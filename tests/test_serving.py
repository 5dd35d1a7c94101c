"""Fair serving: idle or slow clients cannot starve health checks and searches; idle ingest streams
end; the ingest byte budget; the per-class slots (server/limits.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mmsearch.client import Client
from mmsearch.server.app import App, create_server
from mmsearch.server.errors import DeadlineExceeded, ResourceExhausted
from mmsearch.server.limits import ClassLimit, IdleTimeoutIterator, Slots
from mmsearch.v1 import ingest_pb2, ingest_pb2_grpc

from .conftest import fake_settings
from .documents import ANIMALS, text_item


def _idle_requests(stop: threading.Event) -> Iterator[ingest_pb2.IngestRequest]:
    stop.wait()  # sends nothing until the test ends
    return
    yield  # a generator


def _health_seconds(channel: grpc.Channel) -> float:
    start = time.perf_counter()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.perf_counter() - start


@pytest.fixture
def zoo_app(tmp_path: Path) -> Iterator[App]:
    app = create_server(fake_settings(tmp_path))  # default limits: 4 ingest streams
    with Client(f"127.0.0.1:{app.port}", timeout=10, retries=0) as c:
        c.create_collection("zoo")
        assert all(a.ok for a in c.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    yield app
    app.stop(grace=None)


@pytest.mark.parametrize("streams", [8, 64])
def test_idle_ingest_streams_leave_health_and_search_answering(zoo_app: App, streams: int) -> None:
    stop = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{zoo_app.port}")
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    calls = [stub.Ingest(_idle_requests(stop), timeout=30) for _ in range(streams)]
    try:
        # Beyond max_ingest_streams (4), streams are refused at once, not queued. Which four are
        # let in depends on the order they reach the server (under load, not the order they were
        # opened), so the refused ones are the calls that end; the four let in stay open.
        deadline = time.monotonic() + 10
        while sum(c.done() for c in calls) < streams - 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # and no fifth stream ends after them
        refused = [c for c in calls if c.done()]
        assert len(refused) == streams - 4
        for call in refused:
            assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, call.details()
            assert "max_ingest_streams" in (call.details() or "")
        assert max(_health_seconds(channel) for _ in range(5)) < 1.0
        with Client(f"127.0.0.1:{zoo_app.port}", timeout=5, retries=0) as c:
            start = time.perf_counter()
            assert c.search("zoo", "mice at night", top_k=2).results
            assert time.perf_counter() - start < 2.0
    finally:
        stop.set()
        for call in calls:
            call.cancel()
        channel.close()


def test_idle_stream_is_ended_with_a_clear_status(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, stream_idle_timeout_s=0.5))
    stop = threading.Event()

    def one_then_idle() -> Iterator[ingest_pb2.IngestRequest]:
        yield ingest_pb2.IngestRequest(collection="c", item=text_item("a", "some words"), create_collection=True)
        stop.wait()

    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        call = ingest_pb2_grpc.IngestServiceStub(channel).Ingest(one_then_idle(), timeout=20)
        start = time.perf_counter()
        assert next(call).ok  # the item is acknowledged; only then does idling count
        with pytest.raises(grpc.RpcError) as err:
            next(call)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "stream_idle_timeout_s" in (err.value.details() or "")
        assert time.perf_counter() - start < 5
        # The acknowledged item stays; the slot is free again for a new stream.
        with Client(f"127.0.0.1:{app.port}", timeout=10, retries=0) as c:
            assert c.get_collection("c").document_count == 1
            assert all(a.ok for a in c.ingest("c", [text_item("b", "more words")]))
        deadline = time.monotonic() + 5
        while any(t.name == "stream-reader" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(t.name == "stream-reader" for t in threading.enumerate())
    finally:
        stop.set()
        channel.close()
        app.stop(grace=None)


def test_idle_timer_waits_while_the_stream_has_work_pending() -> None:
    source: queue.Queue[object] = queue.Queue()

    def requests() -> Iterator[object]:
        while (r := source.get()) is not None:
            yield r

    busy = [True]
    it = IdleTimeoutIterator(requests(), 0.2, busy=lambda: busy[0])
    threading.Timer(0.8, source.put, args=("late",)).start()
    assert next(it) == "late"  # 4 timeouts passed, but an item was awaiting its acknowledgement
    busy[0] = False
    start = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        next(it)
    assert 0.15 < time.perf_counter() - start < 2
    it.close()
    source.put(None)


def test_slots_refuse_at_once_or_after_the_queue_wait() -> None:
    now = Slots(ClassLimit("ingest streams", 1, setting="max_ingest_streams"))
    release = now.acquire()
    refused = r"all 1 slots for ingest streams are taken \(none may wait; setting max_ingest_streams\)"
    with pytest.raises(ResourceExhausted, match=refused):
        now.acquire()
    release()
    release()  # idempotent: a second release does not add a slot
    now.acquire()
    with pytest.raises(ResourceExhausted):
        now.acquire()

    queued = Slots(ClassLimit("calls", 1, queued=1, wait_s=0.3))
    release = queued.acquire()
    start = time.perf_counter()
    with pytest.raises(ResourceExhausted, match=r"no slot freed within 0.3 s"):
        queued.acquire()  # waits its turn, then gives up
    assert time.perf_counter() - start >= 0.25
    threading.Timer(0.1, release).start()
    queued.acquire()()  # a slot freed while waiting is taken


def test_ingest_byte_budget_refuses_what_does_not_fit_and_is_given_back(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, ingest_budget_mb=1))
    blob = "x" * 600_000
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
            items = [text_item("big", "a big one", {"blob": blob * 2}), text_item("small", "a small one")]
            acks = list(c.ingest("c", items))
            assert acks[0].error_code == "RESOURCE_EXHAUSTED" and "ingest_budget_mb" in acks[0].error
            assert acks[1].ok
            # 0.6 MB items one after another in new streams: each fits only if the last one's bytes came back.
            for i in range(4):
                acks = list(c.ingest("c", [text_item(f"doc{i}", "words", {"blob": blob})]))
                assert acks[0].ok, acks[0]
            assert c.get_collection("c").document_count == 5
    finally:
        app.stop(grace=None)
