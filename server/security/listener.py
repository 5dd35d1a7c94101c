"""The security side of starting a server: the interceptor the settings ask for, the port bound
with or without TLS, and the refusal to listen on a network without keys or TLS unless told to."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import socket
from typing import IO

import grpc

from ..settings import Settings
from .interceptor import SecurityInterceptor
from .keys import KeyDefaults, KeyRing, parse_keys
from .tls import CertificateWatcher, check_files

log = logging.getLogger("mmsearch.security")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


class ExposureError(ValueError):
    """A listener on a network without keys or TLS that --insecure did not allow."""


class ListenError(OSError):
    """A port that cannot be listened on or a data directory that cannot be used (the message says which)."""


def check_listen(settings: Settings) -> None:
    """The ports are free and distinct, checked before the model loads (a taken port used to fail with
    gRPC's bare "Failed to bind" ~20 s into start-up). Binding can still fail later (a race with
    another process): create_server and serve raise ListenError then too."""
    ports = {"--port": settings.port, "--http-port": settings.http_port, "--metrics-port": settings.metrics_port}
    given = [(flag, port) for flag, port in ports.items() if port]
    for i, (flag, port) in enumerate(given):
        twin = next((other for other, p in given[:i] if p == port), None)
        if twin is not None:
            raise ListenError(f"{twin} and {flag} are both {port}; give each its own port")
        check_port(settings.host, port, flag)


def lock_data_dir(settings: Settings) -> IO[bytes] | None:
    """An exclusive lock on the data directory for as long as the returned file stays open (None for
    remote storage); creating the lock file also proves the directory usable. A second server on the
    same directory used to load its model, then die with the engine's "Can't init WAL: WouldBlock"
    traceback."""
    if settings.storage != "edge":
        return None
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fh = (settings.data_dir / "mmsearch.lock").open("a+b")
    except OSError as exc:
        raise ListenError(f"cannot use data directory {settings.data_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ListenError(
            f"data directory {settings.data_dir} is in use by another mmsearch server; stop it or give another "
            "--data-dir"
        ) from None
    return fh


def check_port(host: str, port: int, flag: str) -> None:
    """ListenError when the port is taken (or privileged) on every address the host resolves to; any
    other failure (no IPv6 on this kernel, a name that does not resolve) is left for the server's own
    bind to report or work around, as gRPC falls back from :: to 0.0.0.0."""
    try:
        addresses = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return
    refused: OSError | None = None
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
                s.bind(address)
            return
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                refused = exc
    if refused is not None:
        taken = " (another mmsearch still running?)" if refused.errno == errno.EADDRINUSE else ""
        raise ListenError(
            f"cannot listen on {host}:{port} ({flag}): {refused.strerror}{taken}; stop that process or give "
            f"another {flag}"
        )


def check_exposure(settings: Settings) -> None:
    """Raises ExposureError for a non-loopback listener with neither keys nor TLS and no --insecure;
    warns when --insecure allowed it."""
    if is_loopback(settings.host) or settings.api_keys is not None or settings.tls_cert is not None:
        return
    if not settings.insecure:
        raise ExposureError(
            f"refusing to listen on {settings.host} with neither API keys nor TLS: anyone who can reach the port "
            "could read, write and delete every collection in plaintext. Give --api-keys FILE and/or "
            "--tls-cert/--tls-key (docs/security.md), or --insecure to accept that"
        )
    log.warning(
        "listening on %s with neither API keys nor TLS (--insecure): anyone who can reach the port may do anything",
        settings.host,
    )


def preflight(settings: Settings) -> None:
    """Every check of the security settings, before anything slow (loading a model) starts:
    ExposureError, KeyFileError or TLSConfigError naming the file and line at fault."""
    check_exposure(settings)
    if settings.api_keys is not None:
        parse_keys(settings.api_keys)
    if settings.tls_cert is not None and settings.tls_key is not None:
        check_files(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def security_interceptor(settings: Settings) -> SecurityInterceptor:
    """Raises KeyFileError for an unusable key file (the message names file and line)."""
    keys = None
    if settings.api_keys is not None:
        defaults = KeyDefaults(settings.key_max_concurrent, settings.key_rate, settings.key_burst)
        keys = KeyRing(settings.api_keys, defaults)
        log.info("API keys required: %d keys from %s", len(keys), settings.api_keys)
    return SecurityInterceptor(keys, settings.health_open, settings.reflection_open)


def certificates(settings: Settings) -> CertificateWatcher | None:
    """The TLS files, checked (TLSConfigError names the file at fault); None without TLS."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return CertificateWatcher(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def bind(server: grpc.Server, settings: Settings, watcher: CertificateWatcher | None) -> int:
    """Adds the listening port, with TLS when configured; returns the port (0 if it cannot bind)."""
    address = f"{settings.host}:{settings.port}"
    try:
        if watcher is None:
            return server.add_insecure_port(address)
        mode = "mutual TLS" if settings.tls_client_ca is not None else "TLS"
        log.info("serving %s with certificate %s", mode, settings.tls_cert)
        return server.add_secure_port(address, watcher.credentials())
    except RuntimeError:  # grpcio raises "Failed to bind" where older releases returned 0
        return 0
