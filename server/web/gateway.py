"""The HTTP port: Connect/gRPC-Web calls on /mmsearch.v1.<Service>/<Method>, the web console on /.

Served by waitress (a pure-Python production WSGI server) on a thread of the same process, so every
call reaches the same catalog, encoders and store as the gRPC port.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import grpc
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.server import ConnectWSGIApplication

from .connect import HandlerRegistry, endpoints

log = logging.getLogger("mmsearch.http")

CONSOLE_DIR = Path(__file__).parent / "console"
# Request content types of the protocols connectrpc serves: Connect unary (json, proto), Connect
# streams (connect+json, connect+proto) and gRPC-Web.
_ACCEPTED = ("application/json", "application/proto", "application/connect+", "application/grpc-web")

StartResponse = Callable[..., Any]


class _Services(ConnectWSGIApplication):
    path = "/"  # every service at the root, as gRPC names them


def _error(start_response: StartResponse, status: HTTPStatus, code: str, message: str) -> list[bytes]:
    """The Connect error shape for mistakes the protocol library answers with a bare HTTP status."""
    body = json.dumps({"code": code, "message": message}).encode()
    start_response(
        f"{status.value} {status.phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


class Gateway:
    """The WSGI application of the HTTP port."""

    def __init__(
        self, registry: HandlerRegistry, interceptors: Sequence[grpc.ServerInterceptor], max_body_bytes: int
    ) -> None:
        self.endpoints: dict[str, Any] = endpoints(registry, interceptors)
        # Unknown JSON fields are refused: a misspelt "topk" should fail loudly, not search with defaults.
        codecs = [google_protobuf_binary_codec(), google_protobuf_json_codec(ignore_unknown_fields=False)]
        self.services = _Services(endpoints=self.endpoints, read_max_bytes=max_body_bytes, codecs=codecs)
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO") or "/"
        if path in self.endpoints:
            content_type = environ.get("CONTENT_TYPE", "")
            if environ["REQUEST_METHOD"] == "POST" and not content_type.startswith(_ACCEPTED):
                return _error(
                    start_response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "invalid_argument",
                    f"content type {content_type!r} is not supported: send application/json (Connect) "
                    "or application/proto",
                )  # fmt: skip
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > self.max_body_bytes:
                return _error(
                    start_response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "resource_exhausted",
                    f"request body of {length} bytes is over the limit of {self.max_body_bytes} (max_message_mb)",
                )  # fmt: skip
            return self.services(environ, start_response)
        if path.startswith("/mmsearch.") or path.startswith("/grpc."):
            known = ", ".join(sorted(self.endpoints))
            return _error(
                start_response, HTTPStatus.NOT_FOUND, "unimplemented", f"unknown method {path}; known: {known}"
            )
        return self._console(path, start_response)

    def _console(self, path: str, start_response: StartResponse) -> list[bytes]:
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        file = (CONSOLE_DIR / name).resolve()
        if not file.is_relative_to(CONSOLE_DIR.resolve()) or not file.is_file():
            return _error(start_response, HTTPStatus.NOT_FOUND, "not_found", f"no such page: {path}")
        body = file.read_bytes()
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", mime), ("Content-Length", str(len(body)))])
        return [body]


class HttpServer:
    """waitress on a background thread; `port` is the bound port (0 in settings picks a free one)."""

    scheme = "http"

    def __init__(self, app: Gateway, host: str, port: int, threads: int) -> None:
        from waitress.server import create_server

        self._server: Any = create_server(
            # waitress buffers a body before the app sees it, and answers one over its own limit with
            # plain text; twice the message limit leaves the gateway to answer most oversized calls in
            # the Connect shape while bounding what waitress buffers.
            app, host=host, port=port, threads=threads, max_request_body_size=2 * app.max_body_bytes,
            ident="mmsearch", clear_untrusted_proxy_headers=True,
        )  # fmt: skip
        self.port = int(self._server.effective_port)  # waitress reports a configured port as a string
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:  # the listening socket closed under the loop: that is how it stops
            pass

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)
