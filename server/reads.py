"""Unary requests read with a timeout, on the gRPC port.

grpcio's synchronous server reads a unary call's request message on the pool thread before any
handler or interceptor behaviour runs, and waits for it without a timeout. A client that opens a
call and never sends its message therefore holds a worker thread until its deadline (or forever),
unseen by the admission slots (server/limits.py); enough of them fill the pool and then even
Health/Check is refused.

On the wire a unary call and a client-streaming call are the same (the client sends messages and
half-closes), so this interceptor serves every unary-request method as a request-streaming one:
the behaviour starts at once, takes a bounded "pending read" slot (`max_pending_reads`), waits for
the one message for at most `request_read_timeout_s`, gives the slot back and then runs the method's
own handler chain (security, errors, admission) exactly as if grpcio had read the request. Clients do
not change. The HTTP/Connect port reads its bodies itself and does not use this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from .errors import DeadlineExceeded
from .interceptors import REQUESTS
from .limits import HEALTH_CHECK, IdleTimeoutIterator, handler_behaviour

log = logging.getLogger("mmsearch.rpc")

_NOTHING = object()


class UnaryReadInterceptor(grpc.ServerInterceptor):
    """Outermost on the gRPC server: the inner interceptors see the unary handlers they always saw."""

    def __init__(self, timeout_s: float, max_pending: int) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._pending = threading.BoundedSemaphore(max_pending)

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.request_streaming:
            return handler
        method = details.method
        _, inner = handler_behaviour(handler)
        if handler.response_streaming:

            def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
                yield from inner(self.read(method, requests, context), context)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer
            )

        def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            return inner(self.read(method, requests, context), context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )

    def read(self, method: str, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        """The call's one request message; aborts the call when it does not come in time, when
        there is none or more than one, or when every pending-read slot is taken."""
        # Health checks are never refused for want of a slot: their threads are kept apart
        # (health_threads), and a stalled one still ends after the timeout.
        slot = method != HEALTH_CHECK
        if slot and not self._pending.acquire(blocking=False):
            _abort(
                context, method, grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server busy: {self.max_pending} calls are already waiting for their request message "
                "(setting max_pending_reads); retry later",
            )  # fmt: skip
        # The message is read on a thread of its own so that waiting for it can time out; that thread
        # ends when the call does (a timed-out call is ended by the abort below).
        reader = IdleTimeoutIterator(requests, self.timeout_s)
        deadline = time.monotonic() + self.timeout_s
        try:
            request = next(reader, _NOTHING)
            if request is _NOTHING:  # grpcio's own answer to a unary call without a message
                missing = f'"{method}" requires exactly one request message.'
                _abort(context, method, grpc.StatusCode.UNIMPLEMENTED, missing)
            reader.timeout_s = max(0.001, deadline - time.monotonic())  # the end of the stream, by the same time
            if next(reader, _NOTHING) is not _NOTHING:
                _abort(
                    context, method, grpc.StatusCode.INVALID_ARGUMENT,
                    f'"{method}" requires exactly one request message; the client sent more',
                )  # fmt: skip
            return request
        except DeadlineExceeded:
            _abort(
                context, method, grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the request message (and the end of the request stream) did not arrive within {self.timeout_s:g} s "
                "(setting request_read_timeout_s); send the request with the call",
            )  # fmt: skip
        except grpc.RpcError:  # the client cancelled or its deadline passed: nobody hears the answer
            _abort(context, method, grpc.StatusCode.CANCELLED, "the call ended before its request message arrived")
        finally:
            reader.close()
            if slot:
                self._pending.release()


def _abort(context: grpc.ServicerContext, method: str, code: grpc.StatusCode, message: str) -> NoReturn:
    REQUESTS.labels(method, code.name).inc()
    if code != grpc.StatusCode.CANCELLED:
        log.info("%s -> %s: %s", method, code.name, message)
    context.abort(code, message)
    raise AssertionError("unreachable")  # abort raises
