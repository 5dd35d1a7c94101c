"""The client's channel: plaintext or TLS (mutual TLS with a client certificate), and the API key
sent as `authorization: Bearer <key>` metadata on every call."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc


class _BearerKey(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the key to every call. An interceptor rather than call credentials: gRPC sends call
    credentials only over TLS, and a key over plaintext on loopback is a valid set-up."""

    def __init__(self, key: str) -> None:
        self.header = ("authorization", f"Bearer {key}")

    def _with_key(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self.header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_key(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_key(details), requests)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


DEFAULT_PORT = 50051  # the server's default --port


def target(address: str) -> str:
    """The gRPC target for a --server value: a host without a port gets mmsearch's 50051 (gRPC would
    take 443, the HTTPS port, and report only that it cannot connect). IPv6 literals are bracketed
    ("::1" and "[::1]" are "[::1]:50051"). A target with a scheme (unix:/path, dns:///host:port,
    ipv4:...) is gRPC's own syntax and left as it is."""
    address = address.strip()
    if address.startswith("["):  # [v6] or [v6]:port
        return address if "]:" in address else f"{address}:{DEFAULT_PORT}"
    if address.count(":") > 1:
        try:
            return f"[{ipaddress.IPv6Address(address)}]:{DEFAULT_PORT}"  # a bare IPv6 literal
        except ValueError:
            return address  # a scheme (dns://..., ipv6:[::1]:50051)
    host, sep, rest = address.partition(":")
    if not sep:
        return f"{address}:{DEFAULT_PORT}"
    if not rest:  # "myhost:"
        return f"{host}:{DEFAULT_PORT}"
    return address  # host:port, or scheme:path (unix:/run/mmsearch.sock)


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def make_channel(
    address: str,
    *,
    api_key: str | None = None,
    tls: bool = False,
    tls_ca: str | Path | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """TLS when `tls` or any TLS file is given (tls_ca: the CA that signed the server's certificate,
    else the system's roots; tls_cert + tls_key: this client's certificate for mutual TLS). The key
    defaults to the MMSEARCH_API_KEY variable."""
    api_key = api_key if api_key is not None else os.environ.get("MMSEARCH_API_KEY") or None
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together (the client certificate and its private key)")
    if tls or tls_ca or tls_cert:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(tls_ca), private_key=_read(tls_key), certificate_chain=_read(tls_cert)
        )
        channel = grpc.secure_channel(address, creds, options=list(options))
    else:
        channel = grpc.insecure_channel(address, options=list(options))
    if api_key:
        channel = grpc.intercept_channel(channel, _BearerKey(api_key))
    return channel
