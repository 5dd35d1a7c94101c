"""The HTTP port: Connect/gRPC-Web calls on /mmsearch.v1.<Service>/<Method>, the web console on /.

Served by waitress (a pure-Python production WSGI server) on a thread of the same process, so every
call reaches the same catalog, encoders and store as the gRPC port.
"""

from __future__ import annotations

import io
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
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

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
            if environ["REQUEST_METHOD"] != "POST":  # the library answered a bare 405 without a body
                return _error(
                    start_response, HTTPStatus.METHOD_NOT_ALLOWED, "unimplemented",
                    f"{environ['REQUEST_METHOD']} {path}: calls are POST requests (Connect: application/json "
                    "or application/proto)",
                )  # fmt: skip
            content_type = environ.get("CONTENT_TYPE", "")
            if not content_type.startswith(_ACCEPTED):
                return _error(
                    start_response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "invalid_argument",
                    f"content type {content_type!r} is not supported: send application/json (Connect) "
                    "or application/proto",
                )  # fmt: skip
            if not environ.get("CONTENT_LENGTH") and not self._take_unsized_body(environ):
                return _error(
                    start_response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "resource_exhausted",
                    f"request body is over the limit of {self.max_body_bytes} (max_message_mb)",
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

    def _take_unsized_body(self, environ: dict[str, Any]) -> bool:
        """A body sent without a length (chunked; waitress hands every body over with one, cheroot
        does not) is read here up to one byte past the limit: False when it is longer, else it
        becomes a sized body, so an oversized one is answered the same way on both servers."""
        body = environ["wsgi.input"].read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return False
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return True

    def _console(self, path: str, start_response: StartResponse) -> list[bytes]:
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        file = (CONSOLE_DIR / name).resolve()
        if not file.is_relative_to(CONSOLE_DIR.resolve()) or not file.is_file():
            return _error(start_response, HTTPStatus.NOT_FOUND, "not_found", f"no such page: {path}")
        body = file.read_bytes()
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", mime), ("Content-Length", str(len(body)))])
        return [body]


class _ConnectErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress refuses some requests before the application sees them: a body over the limit (by its
    Content-Length, before any of it is read; a chunked one once the limit is passed) or a malformed
    request. It answers those here, in the Connect error shape like every other refusal."""

    def execute(self) -> None:
        e = self.request.error
        if isinstance(e, RequestEntityTooLarge):
            limit = self.channel.server.adj.max_request_body_size - 1  # waitress refuses at >= its setting
            size = f"of {self.request.content_length} bytes " if self.request.content_length else ""
            code, message = "resource_exhausted", f"request body {size}is over the limit of {limit} (max_message_mb)"
        else:
            code = _WAITRESS_CODES.get(e.code, "invalid_argument")
            message = f"{e.reason}: {e.body}"
        body = json.dumps({"code": code, "message": message}).encode()
        self.status = f"{e.code} {e.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


_WAITRESS_CODES = {413: "resource_exhausted", 431: "resource_exhausted", 501: "unimplemented", 500: "internal"}


class _ConnectChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _ConnectErrorTask


class HttpServer:
    """waitress on a background thread; `port` is the bound port (0 in settings picks a free one)."""

    scheme = "http"

    def __init__(self, app: Gateway, host: str, port: int, threads: int) -> None:
        sockets: dict[int, Any] = {}
        self._server: Any = create_server(
            # waitress reads a whole body before the app sees it (spooled to a temporary file once
            # large); its limit is the message limit, so an oversized body is refused by its length
            # alone, with the error task above, and never read.
            app, map=sockets, host=host, port=port, threads=threads, max_request_body_size=app.max_body_bytes + 1,
            ident="mmsearch", clear_untrusted_proxy_headers=True,
        )  # fmt: skip
        for listener in sockets.values():  # one per address the host resolves to; nothing accepted yet
            if isinstance(listener, BaseWSGIServer):
                listener.channel_class = _ConnectChannel
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
