"""The gRPC services over the Connect protocol (HTTP/JSON, gRPC-Web), from the same handlers.

The protocol itself (framing, codecs, error bodies, gRPC-Web) is connectrpc's WSGI application. Its code
generator would make a second set of service interfaces to implement; instead the endpoints are built
here from the registered gRPC method handlers, so each HTTP call runs exactly what a gRPC call runs:
the servicer method wrapped by the same server interceptors (error mapping, metrics, and auth, which
reads the `authorization` header as invocation metadata).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import EndpointSync
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor


class GrpcAbort(Exception):
    """Raised by `HttpCallContext.abort`. Named so the error interceptor lets it through like grpc's own
    abort exception (its module starts with "grpc", see interceptors._is_abort)."""

    __module__ = "grpc_over_http"

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class HttpCallContext:
    """The part of grpc.ServicerContext the servicers and interceptors use, over one HTTP call."""

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._callbacks: list[Callable[[], None]] = []
        self._start = time.monotonic()

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return [(k.lower(), v) for k, v in self._ctx.request_headers.allitems()]

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise GrpcAbort(code, details)

    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        ms = self._ctx.timeout_ms
        return None if ms is None else max(0.0, ms / 1000 - (time.monotonic() - self._start))

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self._callbacks.append(callback)
        return True

    def peer(self) -> str:
        return f"http:{self._ctx.client_address or 'unknown'}"

    def set_code(self, code: grpc.StatusCode) -> None:  # accepted and ignored, as trailers are not used
        pass

    def set_details(self, details: str) -> None:
        pass

    def finish(self) -> None:
        for callback in self._callbacks:
            callback()


def connect_error(exc: GrpcAbort) -> ConnectError:
    name = "CANCELED" if exc.code == grpc.StatusCode.CANCELLED else exc.code.name
    return ConnectError(Code[name], exc.details)


class _Details(NamedTuple):
    """grpc.HandlerCallDetails for the interceptors."""

    method: str
    invocation_metadata: Sequence[tuple[str, str]]


class HandlerRegistry:
    """Passed to the generated add_*_to_server functions in place of the grpc.Server: keeps each service's
    method handlers for the HTTP port and hands them on to the gRPC server, so both serve one set of
    servicer objects."""

    def __init__(self, server: grpc.Server) -> None:
        self.server = server
        self.services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.services[service] = handlers
        self.server.add_registered_method_handlers(service, handlers)


def _call(
    handler: grpc.RpcMethodHandler, interceptors: Sequence[grpc.ServerInterceptor], path: str, ctx: RequestContext
) -> tuple[grpc.RpcMethodHandler, HttpCallContext]:
    context = HttpCallContext(ctx)
    details = _Details(path, tuple(context.invocation_metadata()))
    for interceptor in reversed(interceptors):
        inner = handler

        def continuation(_: Any, inner: grpc.RpcMethodHandler = inner) -> grpc.RpcMethodHandler:
            return inner

        handler = interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]
    return handler, context


def endpoints(registry: HandlerRegistry, interceptors: Sequence[grpc.ServerInterceptor]) -> dict[str, Any]:
    """Connect endpoints ("/pkg.Service/Method" -> endpoint) for every registered unary and bidi method."""
    pool = descriptor_pool.Default()
    out: dict[str, Any] = {}
    for service_name, handlers in registry.services.items():
        service = pool.FindServiceByName(service_name)
        for name, handler in handlers.items():
            method: MethodDescriptor = service.methods_by_name[name]
            path = f"/{service_name}/{name}"
            bidi = handler.stream_stream is not None
            info = MethodInfo(
                name=name,
                service_name=service_name,
                input=message_factory.GetMessageClass(method.input_type),
                output=message_factory.GetMessageClass(method.output_type),
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.BIDI_STREAM if bidi else StreamType.UNARY,
            )
            if bidi:
                out[path] = EndpointSync.bidi_stream(info, _bidi(handler, interceptors, path))
            elif handler.unary_unary is not None:
                out[path] = EndpointSync.unary(method=info, function=_unary(handler, interceptors, path))
    return out


def _unary(handler: grpc.RpcMethodHandler, interceptors: Sequence[grpc.ServerInterceptor], path: str) -> Callable:
    def call(request: Any, ctx: RequestContext) -> Any:
        wrapped, context = _call(handler, interceptors, path, ctx)
        try:
            return wrapped.unary_unary(request, context)
        except GrpcAbort as exc:
            raise connect_error(exc) from None
        finally:
            context.finish()

    return call


def _bidi(handler: grpc.RpcMethodHandler, interceptors: Sequence[grpc.ServerInterceptor], path: str) -> Callable:
    def call(requests: Iterator[Any], ctx: RequestContext) -> Iterator[Any]:
        wrapped, context = _call(handler, interceptors, path, ctx)
        try:
            yield from wrapped.stream_stream(requests, context)
        except GrpcAbort as exc:
            raise connect_error(exc) from None
        finally:
            context.finish()

    return call
