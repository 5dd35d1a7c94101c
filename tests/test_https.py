"""The HTTP port with TLS: when the gRPC port has TLS (and mutual TLS), so does the HTTP port, with the
same files, replaced the same way; API keys are checked there as on gRPC."""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

import httpx
import pytest

from mmsearch.server.app import create_server

from .certs import CA
from .conftest import fake_settings, free_port
from .test_security import secret, write_keys


def _client(base: str, ca: Path, cert: tuple[Path, Path] | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(base_url=base, verify=ctx, timeout=20)


def _list(http: httpx.Client, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return http.post("/mmsearch.v1.CollectionService/ListCollections", json={}, headers=headers)


@pytest.mark.parametrize("mutual", [False, True])
def test_http_port_serves_tls_when_the_grpc_port_does(tmp_path: Path, mutual: bool) -> None:
    ca = CA(tmp_path / "pki")
    server, client = ca.issue("server", server=True), ca.issue("client", server=False)
    keys = write_keys(tmp_path / "keys.toml", {"reader": ("read", ["*"], None, "")})
    settings = fake_settings(
        tmp_path / "data", http_port=free_port(), api_keys=keys, tls_cert=server.cert, tls_key=server.key,
        tls_client_ca=ca.path if mutual else None,
    )  # fmt: skip
    app = create_server(settings)
    try:
        assert app.http is not None and app.http.scheme == "https"
        base = f"https://127.0.0.1:{app.http.port}"
        with _client(base, ca.path, (client.cert, client.key)) as http:
            assert _list(http, secret("reader")).json() == {}  # no collections yet (empty list omitted)
            refused = _list(http, None)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
            assert http.get("/").status_code == 200  # the console, over TLS
        # Plaintext to the TLS port gets no answer from the handlers.
        plain = f"http://127.0.0.1:{app.http.port}"
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=plain, timeout=10) as http:
            _list(http, secret("reader")).raise_for_status()
        with _client(base, ca.path, None) as http:
            if mutual:
                with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                    _list(http, secret("reader"))
            else:
                assert _list(http, secret("reader")).status_code == 200
    finally:
        app.stop(grace=None)


def test_https_certificate_is_replaced_without_a_restart(tmp_path: Path) -> None:
    old_ca, new_ca = CA(tmp_path / "old", "old CA"), CA(tmp_path / "new", "new CA")
    issued = old_ca.issue("server", server=True)
    settings = fake_settings(tmp_path / "data", http_port=free_port(), tls_cert=issued.cert, tls_key=issued.key)
    app = create_server(settings)
    try:
        assert app.http is not None
        base = f"https://127.0.0.1:{app.http.port}"
        with _client(base, old_ca.path, None) as http:
            assert _list(http, None).status_code == 200
        # A half-written replacement (a certificate without its key) is ignored: the old one serves on.
        replacement = new_ca.issue("server", server=True)
        issued.cert.write_bytes(replacement.cert.read_bytes())
        os.utime(issued.cert, ns=(time.time_ns(), time.time_ns() + 10**9))
        with _client(base, old_ca.path, None) as http:
            assert _list(http, None).status_code == 200
        issued.key.write_bytes(replacement.key.read_bytes())
        os.utime(issued.key, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        with _client(base, new_ca.path, None) as http:
            assert _list(http, None).status_code == 200
        with _client(base, old_ca.path, None) as http, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
            _list(http, None)
    finally:
        app.stop(grace=None)
