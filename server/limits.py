"""Fair serving on the synchronous gRPC server: bounded admission per class of method, so that no
client, slow or idle, can take every worker thread; idle ingest streams are ended; the bytes held by
in-flight ingest streams have one global budget.

Why classes: grpcio runs each call on a thread of one pool for the whole call. An open Ingest stream
holds its thread while the client sends nothing, so 8 idle streams used to take all 8 threads and
Health and Search waited behind them. Each class now has its own number of slots, the pool has a
thread for every slot plus a few for health checks, and the server's `maximum_concurrent_rpcs` equals
the pool size, so a call never waits for a thread in the pool's queue: it runs, waits briefly for a
slot of its class, or is answered RESOURCE_EXHAUSTED at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from .errors import DeadlineExceeded, ResourceExhausted

T = TypeVar("T")

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
INGEST = "/mmsearch.v1.IngestService/Ingest"


@dataclass(frozen=True)
class ClassLimit:
    name: str
    running: int  # calls of the class that run at once
    queued: int = 0  # calls that may wait for a running slot (each holds a thread while it waits)
    wait_s: float = 0.0  # how long a queued call waits before RESOURCE_EXHAUSTED
    setting: str = ""  # the setting that raises `running`, named in the refusal


class Slots:
    """Running slots of one class, with a bounded queue in front of them."""

    def __init__(self, limit: ClassLimit) -> None:
        self.limit = limit
        self._running = threading.BoundedSemaphore(limit.running)
        self._lock = threading.Lock()
        self._waiting = 0

    def acquire(self) -> Callable[[], None]:
        """Takes a slot or raises ResourceExhausted; returns the (idempotent) release."""
        lim = self.limit
        if not self._running.acquire(blocking=False):
            with self._lock:
                if self._waiting >= lim.queued:
                    raise self._busy(f"{lim.queued} waiting already, the most" if lim.queued else "none may wait")
                self._waiting += 1
            try:
                got = lim.wait_s > 0 and self._running.acquire(timeout=lim.wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise self._busy(f"no slot freed within {lim.wait_s:g} s")
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._running.release()

        return release

    def _busy(self, why: str) -> ResourceExhausted:
        # The limits, not live counts: the message said "8 running and 64 waiting" when 14 calls existed.
        lim = self.limit
        return ResourceExhausted(
            f"server busy: all {lim.running} slots for {lim.name} are taken ({why}"
            + (f"; setting {lim.setting}" if lim.setting else "")
            + "); retry later"
        )


class Admission:
    """The classes: Health/Check is never queued or refused (it has threads of its own); Ingest
    streams; other streaming calls (health Watch, reflection); every other (unary) call."""

    def __init__(
        self,
        requests: ClassLimit,
        ingest: ClassLimit,
        streams: ClassLimit,
        health_threads: int = 4,
        pending_reads: int = 0,
    ) -> None:
        self.classes = {c.name: Slots(c) for c in (requests, ingest, streams)}
        self._requests, self._ingest, self._streams = requests.name, ingest.name, streams.name
        self.health_threads = health_threads
        self.pending_reads = pending_reads  # calls still waiting for their request (server/reads.py)

    @property
    def threads(self) -> int:
        """Pool size: a thread for every running or queued slot, every pending read, and the health
        checks' own."""
        slots = sum(s.limit.running + s.limit.queued for s in self.classes.values())
        return self.health_threads + self.pending_reads + slots

    def slots_for(self, method: str, streaming: bool) -> Slots | None:
        if method == HEALTH_CHECK:
            return None
        if method == INGEST:
            return self.classes[self._ingest]
        return self.classes[self._streams if streaming else self._requests]


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Takes a slot of the call's class before its handler runs and gives it back when the call ends.
    A refusal is raised as ResourceExhausted for the error interceptor (outside this one) to map."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        streaming = handler.request_streaming or handler.response_streaming
        slots = self.admission.slots_for(details.method, streaming)
        if slots is None:
            return handler
        kind, inner = handler_behaviour(handler)

        def admitted(context: grpc.ServicerContext) -> Callable[[], None]:
            release = slots.acquire()
            if not context.add_callback(release):  # the call has already ended
                release()
            return release

        if not handler.response_streaming:

            def unary_response(request: Any, context: grpc.ServicerContext) -> Any:
                release = admitted(context)
                try:
                    return inner(request, context)
                finally:
                    release()

            return rebuild_handler(handler, kind, unary_response)

        def stream_response(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            release = admitted(context)
            try:
                yield from inner(request, context)
            finally:
                release()

        return rebuild_handler(handler, kind, stream_response)


def handler_behaviour(handler: grpc.RpcMethodHandler) -> tuple[str, Callable[..., Any]]:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        fn = getattr(handler, kind)
        if fn is not None:
            return kind, fn
    raise ValueError("a method handler without a behaviour")


def rebuild_handler(
    handler: grpc.RpcMethodHandler,
    kind: str,
    behaviour: Callable[..., Any],
    deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """The same kind of handler with another behaviour (and optionally another request deserializer)."""
    make = getattr(grpc, f"{kind}_rpc_method_handler")
    return make(  # type: ignore[no-any-return]
        behaviour, deserializer or handler.request_deserializer, handler.response_serializer
    )


_END = object()


class IdleTimeoutIterator(Iterator[T]):
    """The requests of a client stream, read on a thread of its own so that waiting for the next one
    can time out: when the client has sent nothing for `timeout_s` and `busy()` is false (no work of
    the stream is pending, e.g. no item awaits its acknowledgement), the next `next()` raises
    DeadlineExceeded. A client that waits for an acknowledgement before sending more is not idle."""

    def __init__(self, requests: Iterator[T], timeout_s: float, busy: Callable[[], bool] = lambda: False) -> None:
        self.timeout_s = timeout_s
        self.busy = busy
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=1)  # one request read ahead, no more
        self._closed = threading.Event()
        threading.Thread(target=self._read, args=(requests,), name="stream-reader", daemon=True).start()

    def close(self) -> None:
        """The consumer is done: the reader thread stops instead of waiting to hand over a request."""
        self._closed.set()

    def _read(self, requests: Iterator[T]) -> None:
        try:
            for r in requests:
                if not self._offer(r):
                    return
            self._offer(_END)
        except BaseException as exc:  # the call was cancelled or ended: the consumer raises it
            self._offer(exc)

    def _offer(self, thing: object) -> bool:
        while not self._closed.is_set():
            try:
                self._inbox.put(thing, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        while True:
            try:
                got = self._inbox.get(timeout=self.timeout_s)
                break
            except queue.Empty:
                if not self.busy():
                    raise DeadlineExceeded(
                        f"the stream sent nothing for {self.timeout_s:g} s and the server has nothing pending "
                        "for it: ended (setting stream_idle_timeout_s); send items or close the stream"
                    ) from None
        if got is _END:
            self._inbox.put(_END)  # later calls end too
            raise StopIteration
        if isinstance(got, BaseException):
            raise got
        return got  # type: ignore[no-any-return]


class ByteBudget:
    """Bytes held by in-flight ingest items, across all streams: an item is counted from when it is
    read until it is acknowledged; one that does not fit is refused (RESOURCE_EXHAUSTED)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.held = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.held + n > self.limit:
                return False
            self.held += n
            return True

    def give_back(self, n: int) -> None:
        with self._lock:
            self.held -= n


class StreamBytes:
    """One stream's share of a ByteBudget: bytes per item position, given back when the item is
    acknowledged and all at once when the stream ends (also what the reading thread takes later)."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self._held: dict[int, int] = {}
        self._closed = False
        self._lock = threading.Lock()

    def take(self, position: int, n: int) -> bool:
        with self._lock:
            if self._closed or not self.budget.take(n):
                return False
            self._held[position] = n
            return True

    def give_back(self, position: int) -> None:
        with self._lock:
            self.budget.give_back(self._held.pop(position, 0))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.budget.give_back(sum(self._held.values()))
            self._held.clear()
