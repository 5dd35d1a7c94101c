"""Stand-ins for a Qdrant server: qdrant-client's in-memory engine made safe to share between
threads, and servers (REST, gRPC) that answer every call with one error status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from qdrant_client import QdrantClient
from qdrant_client import grpc as qdrant_grpc

from mmsearch.server.storage.remote import RemoteStore


class SerializedClient:
    """qdrant-client's local mode (":memory:") is not thread-safe: a search racing an upsert reads
    half-written arrays. Every call here holds one lock; a real server needs none."""

    def __init__(self, client: QdrantClient) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def memory_store(data_dir: Path | None = None) -> RemoteStore:
    """A RemoteStore over qdrant-client's in-memory engine: the remote backend without a server
    (with snapshots in data_dir/snapshots when given)."""
    client = SerializedClient(QdrantClient(location=":memory:"))
    return RemoteStore(client=client, data_dir=data_dir)  # type: ignore[arg-type]


@contextmanager
def rest_answering(status: int, error: str) -> Iterator[QdrantClient]:
    """A client of a REST server that lists no collections and answers every other request with
    `status` and Qdrant's error body."""

    class Answer(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.path == "/collections":
                code, answer = 200, {"result": {"collections": []}, "status": "ok", "time": 0.0}
            else:
                code, answer = status, {"status": {"error": error}, "time": 0.0}
            body = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Retry-After", "1")  # what Qdrant sends with 429
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = QdrantClient(url=f"http://127.0.0.1:{server.server_port}", prefer_grpc=False, check_compatibility=False)
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        server.server_close()


@contextmanager
def grpc_answering(code: grpc.StatusCode, error: str) -> Iterator[QdrantClient]:
    """A client of a gRPC server that lists no collections and aborts every other call with `code`."""

    class Refuse(grpc.GenericRpcHandler):
        def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
            def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
                if handler_call_details.method == "/qdrant.Collections/List":
                    return qdrant_grpc.ListCollectionsResponse().SerializeToString()
                context.abort(code, error)

            return grpc.unary_unary_rpc_method_handler(answer)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[Refuse()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = QdrantClient(host="127.0.0.1", grpc_port=port, prefer_grpc=True, check_compatibility=False)
    try:
        yield client
    finally:
        client.close()
        server.stop(None)
