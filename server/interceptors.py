"""Turns domain errors into their status codes and anything unexpected into INTERNAL, with a log
line and without leaking the traceback to the client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from .errors import MMSearchError, status_code
from .security.principal import current_principal

log = logging.getLogger("mmsearch.rpc")

# Exposed with --metrics-port (Prometheus text format); cheap enough to record always.
REQUESTS = Counter("mmsearch_requests_total", "RPCs by method and status code", ["method", "code"])
LATENCY = Histogram(
    "mmsearch_request_seconds", "RPC latency by method", ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)  # fmt: skip


def _abort(context: grpc.ServicerContext, method: str, exc: BaseException) -> None:
    code = status_code(exc).name if isinstance(exc, MMSearchError) else "INTERNAL"
    REQUESTS.labels(method, code).inc()
    key = current_principal().key_id  # the API key's id (never the key), "-" without keys
    if isinstance(exc, MMSearchError):
        log.info("%s -> %s (key %s): %s", method, status_code(exc).name, key, exc)
        context.abort(status_code(exc), str(exc))
    log.exception("%s failed unexpectedly (key %s)", method, key)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


class ErrorInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary:
            inner = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    response = inner(request, context)
                    REQUESTS.labels(method, "OK").inc()
                    return response
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    _abort(context, method, exc)
                finally:
                    LATENCY.labels(method).observe(time.perf_counter() - start)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
        if handler.stream_stream:
            inner_stream = handler.stream_stream

            def stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
                start = time.perf_counter()
                try:
                    yield from inner_stream(requests, context)
                    REQUESTS.labels(method, "OK").inc()
                    LATENCY.labels(method).observe(time.perf_counter() - start)
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    _abort(context, method, exc)

            return grpc.stream_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def _is_abort(exc: Exception) -> bool:
    # context.abort raises a bare Exception subclass private to grpc; let it through untouched.
    return type(exc).__module__.startswith("grpc")
