"""The HTTP port: every RPC as Connect JSON from the same handlers, and its bad-input answers."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import httpx
import pytest

from mmsearch.client import Client
from mmsearch.encoders.pool import EncoderPool
from mmsearch.server.app import App, create_server
from mmsearch.server.settings import Settings

from .conftest import free_port


def call(http: httpx.Client, method: str, body: dict) -> httpx.Response:
    return http.post(f"/mmsearch.v1.{method}", json=body)


def ingest_text(http: httpx.Client, collection: str, doc_id: str, text: str) -> dict:
    r = call(http, "IngestService/IngestBatch", {
        "requests": [{"collection": collection, "createCollection": True, "item": {"id": doc_id, "text": text}}]
    })  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def test_json_search_finds_a_text_record(http: httpx.Client) -> None:
    acks = ingest_text(http, "kb", "apollo", "Apollo 11 landed on the moon in July 1969.")
    assert acks["acks"][0]["ok"] is True
    ingest_text(http, "kb", "batman", "Batman Returns is a super hero movie about bats.")
    r = call(http, "SearchService/Search", {"collection": "kb", "query": {"text": "moon landing apollo"}, "topK": 2})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    results = r.json()["results"]
    assert results[0]["documentId"] == "apollo"  # proto3 JSON names
    assert 0 <= results[0]["score"] <= 1


def test_ingest_batch_acknowledges_each_item_like_the_stream(http: httpx.Client) -> None:
    bad = base64.b64encode(b"\xff\xfe not utf-8").decode()
    r = call(http, "IngestService/IngestBatch", {"requests": [
        {"collection": "kb", "createCollection": True, "item": {"id": "a", "text": "good text"}},
        {"collection": "kb", "item": {"id": "b", "textFile": {"data": bad}}},
    ]})  # fmt: skip
    acks = r.json()["acks"]
    assert acks[0]["ok"] is True
    assert acks[1].get("ok") is not True and acks[1]["errorCode"] == "INVALID_ARGUMENT"
    assert "UTF-8" in acks[1]["error"]


def test_missing_collection_is_404_not_found(http: httpx.Client) -> None:
    r = call(http, "SearchService/Search", {"collection": "nope", "query": {"text": "x"}})
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "not_found"
    assert "nope" in body["message"]


def test_bad_argument_maps_through_the_error_table(http: httpx.Client) -> None:
    ingest_text(http, "kb", "a", "some text")
    r = call(http, "SearchService/Search", {"collection": "kb", "query": {"text": ""}})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_argument"


def test_unary_calls_of_other_services(http: httpx.Client) -> None:
    ingest_text(http, "kb", "a", "some text")
    r = call(http, "CollectionService/ListCollections", {})
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["collections"]] == ["kb"]
    r = call(http, "IngestService/Delete", {"collection": "kb", "ids": ["a"]})
    assert r.status_code == 200 and int(r.json()["deletedPoints"]) >= 1


def test_malformed_json_is_invalid_argument(http: httpx.Client) -> None:
    r = http.post(
        "/mmsearch.v1.SearchService/Search", content=b'{"collection": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_argument"
    assert r.json()["message"]


def test_unknown_method_names_the_known_ones(http: httpx.Client) -> None:
    r = call(http, "SearchService/Find", {})
    assert r.status_code == 404
    assert r.json()["code"] == "unimplemented"
    assert "/mmsearch.v1.SearchService/Search" in r.json()["message"]


def test_get_on_a_method_is_405_with_a_message(http: httpx.Client) -> None:
    """It was a bare 405 with an empty body, unlike every other refusal."""
    for method in ("GET", "PUT", "DELETE"):
        r = http.request(method, "/mmsearch.v1.SearchService/Search")
        assert r.status_code == 405 and r.json()["code"] == "unimplemented", (method, r.text)
        assert f"{method} /mmsearch.v1.SearchService/Search: calls are POST requests" in r.json()["message"]


def test_wrong_content_type_is_415_with_a_message(http: httpx.Client) -> None:
    r = http.post("/mmsearch.v1.SearchService/Search", content=b"collection=kb", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["code"] == "invalid_argument"
    assert "application/json" in r.json()["message"]


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_resource_exhausted(http: httpx.Client, chunked: bool) -> None:
    """3x the limit: refused in the Connect shape by its Content-Length before it is read, or, sent
    chunked (no length), once the limit is passed."""
    big = b'{"collection": "kb", "query": {"text": "' + b"x" * (3 * 1024 * 1024) + b'"}}'  # limit: 1 MiB
    content = (big[i : i + 65536] for i in range(0, len(big), 65536)) if chunked else big
    r = http.post("/mmsearch.v1.SearchService/Search", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "resource_exhausted"
    assert "over the limit of 1048576 (max_message_mb)" in r.json()["message"]
    assert call(http, "CollectionService/ListCollections", {}).status_code == 200  # the port still serves


def test_a_malformed_request_gets_the_connect_shape(http_app: App) -> None:
    """Requests waitress itself refuses, before any handler, answer like the rest."""
    import json
    import socket

    assert http_app.http is not None
    with socket.create_connection(("127.0.0.1", http_app.http.port), timeout=10) as s:
        s.sendall(b"POST /mmsearch.v1.SearchService/Search HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):  # waitress closes the connection after such an answer
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["code"] == "invalid_argument"


def test_authorization_header_reaches_the_handlers_as_metadata(http_app: App, http: httpx.Client) -> None:
    from mmsearch.server.web.connect import HttpCallContext

    seen: list[tuple[str, str]] = []
    original = HttpCallContext.invocation_metadata

    def spy(self: HttpCallContext) -> list[tuple[str, str]]:
        md = list(original(self))
        seen.extend(md)
        return md

    HttpCallContext.invocation_metadata = spy  # type: ignore[method-assign]
    try:
        http.post("/mmsearch.v1.CollectionService/ListCollections", json={}, headers={"Authorization": "Bearer k1"})
    finally:
        HttpCallContext.invocation_metadata = original  # type: ignore[method-assign]
    assert ("authorization", "Bearer k1") in seen


@pytest.mark.slow
def test_minilm_over_http_rerank_and_receipt(tmp_path: Path, minilm_pool: EncoderPool, shared_data: Path) -> None:
    """The README's curl examples with the bundled model: rerank puts the Apollo 11 chunk first, and a
    JSON search finds a scanned receipt by what is printed on it."""
    settings = Settings(port=0, data_dir=tmp_path, workers=4, http_port=free_port())
    app = create_server(settings, encoders=minilm_pool)
    assert app.http is not None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{app.http.port}", timeout=300) as http:
            chunks = [
                "The Great Wall of China is visible from low orbit only under ideal conditions.",
                "Apollo 11 was the spaceflight that first landed humans on the Moon, in July 1969.",
                "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
            ]
            r = call(http, "RerankService/Rerank", {
                "query": "Which mission first put people on the moon?",
                "documents": [{"text": c} for c in chunks], "returnDocuments": True,
            })  # fmt: skip
            assert r.status_code == 200, r.text
            top = r.json()["results"][0]
            assert top["index"] == 1 and top["document"]["text"].startswith("Apollo 11")
            receipt = (shared_data / "sroie_receipts" / "images" / "002.jpg").read_bytes()
            image = {"data": base64.b64encode(receipt).decode(), "mimeType": "image/jpeg"}
            item = {"id": "receipt-002", "image": image}
            ingest_text(http, "kb", "refund-policy", "Refunds need the original receipt within 7 days.")
            r = call(http, "IngestService/IngestBatch", {"requests": [{"collection": "kb", "item": item}]})
            assert r.json()["acks"][0]["ok"], r.text
            r = call(http, "SearchService/Search", {"collection": "kb", "query": {"text": "MR DIY chopping board"}})
            assert r.json()["results"][0]["documentId"] == "receipt-002"
            assert r.json()["results"][0]["modality"] == "MODALITY_PAGE"
    finally:
        app.stop(grace=None)


def test_unknown_json_field_is_refused_with_the_known_ones(http: httpx.Client) -> None:
    r = call(http, "SearchService/Search", {"collection": "kb", "query": {"text": "x"}, "topk": 3})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    assert '"topk"' in r.json()["message"] and "topK" in r.json()["message"]


def test_ingest_stream_over_connect_streaming(http: httpx.Client) -> None:
    """The bidirectional Ingest as a Connect stream (half duplex over HTTP/1.1): enveloped JSON
    messages in, one enveloped acknowledgement per item out, then the end-of-stream message."""
    import json
    import struct

    def envelope(flags: int, message: dict) -> bytes:
        data = json.dumps(message).encode()
        return struct.pack(">BI", flags, len(data)) + data

    items = [
        {"collection": "kb", "createCollection": True, "item": {"id": f"d{i}", "text": f"text {i}"}} for i in range(3)
    ]
    r = http.post(
        "/mmsearch.v1.IngestService/Ingest",
        content=b"".join(envelope(0, m) for m in items),
        headers={"content-type": "application/connect+json"},
    )
    assert r.status_code == 200, r.text
    body, messages = r.content, []
    while body:
        flags, n = struct.unpack(">BI", body[:5])
        messages.append((flags, json.loads(body[5 : 5 + n])))
        body = body[5 + n :]
    assert [m["id"] for f, m in messages if f == 0] == ["d0", "d1", "d2"]
    assert all(m["ok"] for f, m in messages if f == 0)
    assert messages[-1][0] == 2 and "error" not in messages[-1][1]  # end of stream, no error


def test_ingest_batch_and_get_page_over_grpc(fake_client: Client) -> None:
    from mmsearch.v1 import ingest_pb2, ingest_pb2_grpc, pages_pb2, pages_pb2_grpc

    from .documents import text_item

    stub = ingest_pb2_grpc.IngestServiceStub(fake_client.channel)
    req = ingest_pb2.IngestRequest(collection="kb", create_collection=True, item=text_item("a", "hello there"))
    acks = stub.IngestBatch(ingest_pb2.IngestBatchRequest(requests=[req])).acks
    assert [a.ok for a in acks] == [True]
    pages = pages_pb2_grpc.PageServiceStub(fake_client.channel)
    with pytest.raises(grpc.RpcError) as err:
        pages.GetPage(pages_pb2.GetPageRequest(collection="kb", document_id="a", page=1))  # a text document
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_web_for_browsers(http: httpx.Client) -> None:
    import struct

    from mmsearch.v1 import collections_pb2

    ingest_text(http, "kb", "a", "some text")
    data = collections_pb2.ListCollectionsRequest().SerializeToString()
    r = http.post(
        "/mmsearch.v1.CollectionService/ListCollections",
        content=struct.pack(">BI", 0, len(data)) + data,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    assert r.status_code == 200
    flags, n = struct.unpack(">BI", r.content[:5])
    assert flags == 0
    listed = collections_pb2.ListCollectionsResponse.FromString(r.content[5 : 5 + n])
    assert [c.name for c in listed.collections] == ["kb"]
    assert b"grpc-status:0" in r.content[5 + n :].replace(b" ", b"")  # the trailers frame


def test_health_check_over_http(http: httpx.Client) -> None:
    r = http.post("/grpc.health.v1.Health/Check", json={})
    assert r.status_code == 200 and r.json() == {"status": "SERVING"}


def test_http_port_taken_fails_start_cleanly(tmp_path: Path) -> None:
    import socket

    from .conftest import fake_settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            create_server(fake_settings(tmp_path, http_port=port))


def test_oversized_body_over_https_is_resource_exhausted_too(tmp_path: Path) -> None:
    """cheroot (the HTTPS port) leaves the limit to the gateway and connectrpc: the same answer."""
    import ssl

    from .certs import CA
    from .conftest import fake_settings

    ca = CA(tmp_path / "pki")
    cert = ca.issue("server", server=True)
    settings = fake_settings(
        tmp_path / "data", http_port=free_port(), max_message_mb=1, tls_cert=cert.cert, tls_key=cert.key
    )
    app = create_server(settings)
    try:
        assert app.http is not None and app.http.scheme == "https"
        ctx = ssl.create_default_context(cafile=str(ca.path))
        big = b'{"collection": "kb", "query": {"text": "' + b"x" * (3 * 1024 * 1024) + b'"}}'
        with httpx.Client(base_url=f"https://127.0.0.1:{app.http.port}", verify=ctx, timeout=30) as http:
            for content in (big, (big[i : i + 65536] for i in range(0, len(big), 65536))):
                r = http.post(
                    "/mmsearch.v1.SearchService/Search", content=content, headers={"content-type": "application/json"}
                )
                assert r.status_code == 413 and r.json()["code"] == "resource_exhausted", r.text
                assert "1048576" in r.json()["message"]
    finally:
        app.stop(grace=None)


def test_ingest_batch_creating_a_badly_named_collection_is_400(http: httpx.Client) -> None:
    r = call(http, "IngestService/IngestBatch", {
        "requests": [{"collection": "bad name!", "createCollection": True, "item": {"id": "a", "text": "x"}}]
    })  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_argument"
    assert "collection name 'bad name!' is invalid" in r.json()["message"]


def test_negative_weight_and_empty_range_are_400_naming_the_field(http: httpx.Client) -> None:
    ingest_text(http, "kb", "apollo", "Apollo 11 landed on the moon in July 1969.")
    query = {"collection": "kb", "query": {"text": "moon"}}
    r = call(http, "SearchService/Search", {**query, "ranking": {"denseWeight": -1}})
    assert r.status_code == 400 and "dense_weight is -1.0; weights must be 0 or more" in r.json()["message"]
    empty = {"must": [{"key": "year", "range": {"gt": 10, "lt": 5}}]}
    r = call(http, "SearchService/Search", {**query, "filter": empty})
    assert r.status_code == 400 and "filter on 'year': the range > 10 and < 5 is empty" in r.json()["message"]
