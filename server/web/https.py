"""The HTTP port over TLS (and mutual TLS) when the gRPC port has TLS: the same certificate, key and
client CA, so that an API key never crosses the network in plaintext on either port.

waitress, which serves the plaintext HTTP port, has no TLS; cheroot (CherryPy's WSGI server, built on
the standard library's ssl) does. Each handshake first checks the files' modification times: replaced
files are checked and loaded for the next connections, as on the gRPC port; files that do not check
out are logged and the previous certificate stays in force.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from ..security.tls import CertificateWatcher

log = logging.getLogger("mmsearch.http")


def server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ with the server's certificate; with a client CA, a client certificate it signed is
    required (mutual TLS), as on the gRPC port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _ReloadingAdapter(BuiltinSSLAdapter):  # type: ignore[misc]
    """cheroot's adapter with a context rebuilt when the gRPC port's CertificateWatcher (its own
    instance: each watcher remembers what it last saw) finds the files replaced and usable."""

    def __init__(self, watcher: CertificateWatcher) -> None:
        super().__init__(str(watcher.cert), str(watcher.key))
        self.watcher = watcher
        self.context = server_context(watcher.cert, watcher.key, watcher.client_ca)
        self._lock = threading.Lock()  # cheroot wraps sockets from several threads

    def wrap(self, sock: Any) -> Any:
        with self._lock:
            if self.watcher.fetch() is not None:  # changed, and checked by the watcher
                try:
                    self.context = server_context(self.watcher.cert, self.watcher.key, self.watcher.client_ca)
                except (OSError, ssl.SSLError) as exc:  # replaced again between the check and this load
                    log.error("TLS files changed but unusable; HTTPS keeps the previous certificate: %s", exc)
        return super().wrap(sock)


class HttpsServer:
    """cheroot with TLS on a background thread; the same interface as gateway.HttpServer."""

    scheme = "https"

    def __init__(self, app: Any, host: str, port: int, threads: int, tls: tuple[Path, Path, Path | None]) -> None:
        # timeout: seconds a silent connection may hold a worker thread (cheroot serves a connection per
        # thread, unlike waitress, so this is what bounds a slow client there).
        self._server = wsgi.Server((host, port), app, numthreads=threads, server_name="mmsearch", timeout=30)
        # No body limit in cheroot itself (it would answer in plain text): cheroot hands the app the
        # body unread, and the gateway refuses an oversized Content-Length before reading, while
        # connectrpc stops reading a chunked body at the limit; both answer in the Connect shape.
        self._server.max_request_body_size = 0
        self._server.ssl_adapter = _ReloadingAdapter(CertificateWatcher(*tls))
        self._server.prepare()  # binds now: a taken port fails here, in the caller's thread
        self.port = int(self._server.bind_addr[1])
        self._thread = threading.Thread(target=self._server.serve, name="https", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(timeout=5)
