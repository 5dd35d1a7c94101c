"""Turns domain errors into their status codes and anything unexpected into INTERNAL, with a log
line and without leaking the traceback to the client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from .errors import InvalidArgument, MMSearchError, Unimplemented, status_code
from .limits import handler_behaviour, rebuild_handler
from .security.principal import current_principal

log = logging.getLogger("mmsearch.rpc")

# Exposed with --metrics-port (Prometheus text format); cheap enough to record always.
REQUESTS = Counter("mmsearch_requests_total", "RPCs by method and status code", ["method", "code"])
LATENCY = Histogram(
    "mmsearch_request_seconds", "RPC latency by method", ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)  # fmt: skip


def _abort(context: grpc.ServicerContext, method: str, exc: BaseException) -> None:
    if isinstance(exc, NotImplementedError):  # how generated base servicers (e.g. Health/List) say it
        exc = Unimplemented(f"{method} is not implemented by this server")
    code = status_code(exc).name if isinstance(exc, MMSearchError) else "INTERNAL"
    REQUESTS.labels(method, code).inc()
    key = current_principal().key_id  # the API key's id (never the key), "-" without keys
    if isinstance(exc, MMSearchError):
        log.info("%s -> %s (key %s): %s", method, status_code(exc).name, key, exc)
        context.abort(status_code(exc), str(exc))
    log.exception("%s failed unexpectedly (key %s)", method, key)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


class Undecodable:
    """Stands for a request whose bytes are not the method's message. grpcio answers INTERNAL when a
    deserializer raises (before any handler or interceptor runs), so ours never raises: it hands this
    on, and the handler wrapper below answers INVALID_ARGUMENT."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def check(self) -> None:
        raise InvalidArgument(f"the request is not a valid message of this method: {self.error}")


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, bad UTF-8 in a string field, ...
            return Undecodable(exc)

    return deserialize


def _checked(requests: Iterator[Any]) -> Iterator[Any]:
    for r in requests:
        if isinstance(r, Undecodable):
            r.check()
        yield r


class ErrorInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        kind, inner = handler_behaviour(handler)

        def request_of(request: Any) -> Any:
            if handler.request_streaming:
                return _checked(request)
            if isinstance(request, Undecodable):
                request.check()
            return request

        if not handler.response_streaming:

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    response = inner(request_of(request), context)
                    REQUESTS.labels(method, "OK").inc()
                    return response
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    _abort(context, method, exc)
                finally:
                    LATENCY.labels(method).observe(time.perf_counter() - start)

            return rebuild_handler(handler, kind, unary, _tolerant(handler.request_deserializer))

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            try:
                yield from inner(request_of(request), context)
                REQUESTS.labels(method, "OK").inc()
                LATENCY.labels(method).observe(time.perf_counter() - start)
            except Exception as exc:
                if _is_abort(exc):
                    raise
                _abort(context, method, exc)

        return rebuild_handler(handler, kind, stream, _tolerant(handler.request_deserializer))


def _is_abort(exc: Exception) -> bool:
    # context.abort raises a bare Exception subclass private to grpc; let it through untouched.
    return type(exc).__module__.startswith("grpc")
