"""Unary calls whose request message never arrives (server/reads.py): they wait in bounded
pending-read slots, not in the worker pool, so Health and Search keep answering; they end after
request_read_timeout_s; a call with no message or with two keeps grpcio's codes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import App, create_server
from mmsearch.v1 import search_pb2

from .conftest import fake_settings
from .documents import ANIMALS, text_item

SEARCH = "/mmsearch.v1.SearchService/Search"
READ_TIMEOUT_S = 4.0
PENDING = 110


def _stalled(stop: threading.Event) -> Iterator[bytes]:
    stop.wait()  # the request message never comes while the test runs
    return
    yield b""


def _raw(channel: grpc.Channel, method: str) -> grpc.StreamUnaryMultiCallable:
    # Bytes in, bytes out: on the wire this is the same as the generated unary stub's call.
    return channel.stream_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


@pytest.fixture
def zoo(tmp_path: Path) -> Iterator[App]:
    settings = fake_settings(tmp_path, request_read_timeout_s=READ_TIMEOUT_S, max_pending_reads=PENDING)
    app = create_server(settings)
    with Client(f"127.0.0.1:{app.port}", timeout=10, retries=0) as c:
        c.create_collection("zoo")
        assert all(a.ok for a in c.ingest("zoo", [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
    yield app
    app.stop(grace=None)


def _health_s(channel: grpc.Channel) -> float:
    start = time.perf_counter()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.perf_counter() - start


def _search_s(port: int) -> float:
    with Client(f"127.0.0.1:{port}", timeout=5, retries=0) as c:
        start = time.perf_counter()
        assert c.search("zoo", "mice at night", top_k=2).results
        return time.perf_counter() - start


# 250: more than the whole pool (80 threads for the classes and health checks + 110 pending reads), so
# without the read slots the stalled calls would take every thread; with them, 140 are refused at once.
@pytest.mark.parametrize("stalled", [8, 64, 250])
def test_stalled_unary_calls_leave_health_and_search_answering(zoo: App, stalled: int) -> None:
    target = f"127.0.0.1:{zoo.port}"
    baseline = grpc.insecure_channel(target)
    before_health = min(_health_s(baseline) for _ in range(5))
    before_search = min(_search_s(zoo.port) for _ in range(3))
    stop = threading.Event()
    # Channels of their own: the stalled calls must not share an HTTP/2 connection with the probes.
    stalled_channel = grpc.insecure_channel(target)
    calls = [_raw(stalled_channel, SEARCH).future(_stalled(stop), timeout=30) for _ in range(stalled)]
    try:
        time.sleep(1.0)  # every stalled call has reached the server
        refused = [c for c in calls if c.done() and c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
        # Exactly those beyond the read slots, unless a loaded machine took so long to open them all
        # that the first ones already timed out and gave their slots to later ones.
        early = [c for c in calls if c.done() and c not in refused]  # timed out already (DEADLINE_EXCEEDED)
        assert stalled - PENDING - len(early) <= len(refused) <= max(0, stalled - PENDING)
        assert all("max_pending_reads" in (c.details() or "") for c in refused)
        calls = [c for c in calls if c not in refused]
        health = [_health_s(baseline) for _ in range(10)]
        if stalled > PENDING:  # every read slot is taken: a search is refused at once, never left waiting
            start = time.perf_counter()
            with Client(f"127.0.0.1:{zoo.port}", timeout=5, retries=0) as c:
                try:
                    c.search("zoo", "mice at night", top_k=2)
                    assert early  # answered only where a slot came free
                except MMSearchError as refusal:
                    assert "max_pending_reads" in str(refusal)
            search = [time.perf_counter() - start]
            assert search[0] < 1.0
        else:
            search = [_search_s(zoo.port) for _ in range(3)]
        print(
            f"\n{stalled} stalled: health max {max(health) * 1000:.1f} ms (before {before_health * 1000:.1f}), "
            f"search min {min(search) * 1000:.1f} ms (before {before_search * 1000:.1f})"
        )
        assert max(health) < 0.5  # the target is 100 ms; generous for a loaded CI machine
        assert min(search) < max(1.0, 5 * before_search)
        # The stalled calls end after the read timeout with a status naming the setting.
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call.result(timeout=READ_TIMEOUT_S + 10)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.value
            assert "request_read_timeout_s" in (err.value.details() or "")
    finally:
        stop.set()
        for call in calls:
            call.cancel()
        stalled_channel.close()
        baseline.close()


def test_pending_reads_beyond_the_limit_are_refused_at_once(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, request_read_timeout_s=READ_TIMEOUT_S, max_pending_reads=2))
    stop = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        calls = [_raw(channel, SEARCH).future(_stalled(stop), timeout=30) for _ in range(2)]
        time.sleep(0.3)
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as err:
            _raw(channel, SEARCH)(_stalled(stop), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_pending_reads" in (err.value.details() or "")
        assert time.perf_counter() - start < 1.0
        assert _health_s(channel) < 0.5  # health checks take no pending-read slot
        stop.set()  # the stalled calls half-close without a message
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call.result(timeout=5)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "requires exactly one request message" in (err.value.details() or "")
    finally:
        stop.set()
        channel.close()
        app.stop(grace=None)


def test_message_counts_and_undecodable_bytes_keep_their_codes(fake_app: App) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{fake_app.port}")
    search = _raw(channel, SEARCH)
    request = search_pb2.SearchRequest(collection="nope", query=search_pb2.Query(text="x")).SerializeToString()
    try:
        with pytest.raises(grpc.RpcError) as err:  # a well-formed request still reaches the handler
            search(iter([request]), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value
        with pytest.raises(grpc.RpcError) as err:
            search(iter([request, request]), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "exactly one request message" in (err.value.details() or "")
        with pytest.raises(grpc.RpcError) as err:
            search(iter([]), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as err:  # not a SearchRequest: the error interceptor's answer
            search(iter([b"\xff\xff\xff"]), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid message" in (err.value.details() or "")
    finally:
        channel.close()


def test_a_message_without_the_end_of_the_stream_times_out_too(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, request_read_timeout_s=1.0))
    stop = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    request = search_pb2.SearchRequest(collection="nope", query=search_pb2.Query(text="x")).SerializeToString()

    def one_then_nothing() -> Iterator[bytes]:
        yield request
        stop.wait()  # never half-closes

    try:
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as err:
            _raw(channel, SEARCH)(one_then_nothing(), timeout=10)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "request_read_timeout_s" in (err.value.details() or "")
        assert time.perf_counter() - start < 2.5  # one timeout for the message and the end together
    finally:
        stop.set()
        channel.close()
        app.stop(grace=None)
