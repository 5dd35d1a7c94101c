"""A --server without a port dials mmsearch's 50051 (gRPC took 443, the HTTPS port), and an unreachable
server is named as host:port actually tried."""

from __future__ import annotations

import socket

import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.channel import target
from mmsearch.client.cli import main

from .documents import text_item


@pytest.mark.parametrize(
    ("given", "dialled"),
    [
        ("myhost", "myhost:50051"),
        ("127.0.0.1", "127.0.0.1:50051"),
        ("myhost:", "myhost:50051"),
        ("myhost:7000", "myhost:7000"),
        ("::1", "[::1]:50051"),
        ("[::1]", "[::1]:50051"),
        ("[::1]:7000", "[::1]:7000"),
        ("unix:/run/mmsearch.sock", "unix:/run/mmsearch.sock"),
        ("dns:///myhost:7000", "dns:///myhost:7000"),
        ("ipv6:[::1]:7000", "ipv6:[::1]:7000"),
    ],
)
def test_a_host_without_a_port_gets_50051(given: str, dialled: str) -> None:
    assert target(given) == dialled


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_an_unreachable_server_is_named_with_the_port_tried(capsys: pytest.CaptureFixture[str]) -> None:
    if not _port_is_free(50051):
        pytest.skip("something listens on 127.0.0.1:50051 here")
    with Client("127.0.0.1", retries=0) as c:
        assert c.address == "127.0.0.1:50051"
        with pytest.raises(MMSearchError, match=r"cannot reach mmsearch at 127\.0\.0\.1:50051"):
            c.health(timeout=1)
        # the ingest stream too (it reported the bare gRPC details, without the address)
        with pytest.raises(MMSearchError, match=r"cannot reach mmsearch at 127\.0\.0\.1:50051"):
            list(c.ingest("c", [text_item("a", "owls")], timeout=2))
    assert main(["health", "--server", "127.0.0.1", "--timeout", "1"]) == 1
    assert "cannot reach mmsearch at 127.0.0.1:50051" in capsys.readouterr().err
