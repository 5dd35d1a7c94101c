"""Shared fixtures: real servers on port 0 over real channels.

Tiers: the fake encoder (seconds) covers server and storage behaviour; the bundled MiniLM covers the
real model path; `slow` marks the subprocess tests (CLI contract, kill -9) which still run in CI.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from mmsearch.client import Client
from mmsearch.encoders.pool import EncoderPool
from mmsearch.server.app import App, create_server
from mmsearch.server.settings import Settings

from .qdrant_standins import memory_store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.exists():  # CI clones main with shared/ beside it
    SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def fake_settings(tmp: Path, **kw: object) -> Settings:
    return Settings(port=0, data_dir=tmp, text_kind="fake", text_model="fake-32", workers=4, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["edge", "remote"])
def fake_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """A server with the fake encoder on each storage backend."""
    settings = fake_settings(tmp_path, max_message_mb=8)
    store = memory_store(tmp_path) if request.param == "remote" else None
    app = create_server(settings, store=store)
    yield app
    app.stop(grace=None)


@pytest.fixture
def fake_client(fake_app: App) -> Iterator[Client]:
    with Client(f"127.0.0.1:{fake_app.port}", timeout=20, retries=0) as c:
        yield c


@pytest.fixture(scope="session")
def minilm_pool() -> EncoderPool:
    pool = EncoderPool("cpu", pinned=[("sentence-transformers", "all-MiniLM-L6-v2")])  # shared: never evicted
    pool.get("sentence-transformers", "all-MiniLM-L6-v2")
    return pool


@pytest.fixture
def minilm_app(tmp_path: Path, minilm_pool: EncoderPool) -> Iterator[App]:
    app = create_server(Settings(port=0, data_dir=tmp_path, workers=4), encoders=minilm_pool)
    yield app
    app.stop(grace=None)


@pytest.fixture
def minilm_client(minilm_app: App) -> Iterator[Client]:
    with Client(f"127.0.0.1:{minilm_app.port}", timeout=120, retries=0) as c:
        yield c


@pytest.fixture(scope="session")
def tiny_colpali_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root folder of the tiny ColPali-family checkpoints; each family is built on first use."""
    return tmp_path_factory.mktemp("tiny-colpali")


# -- the HTTP port (tests/test_http.py, test_page_images.py, test_console.py) --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["edge", "remote"])
def http_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    settings = fake_settings(tmp_path, max_message_mb=1, http_port=free_port())
    store = memory_store(tmp_path) if request.param == "remote" else None
    app = create_server(settings, store=store)
    yield app
    app.stop(grace=None)


@pytest.fixture
def http(http_app: App) -> Iterator[httpx.Client]:
    assert http_app.http is not None
    with httpx.Client(base_url=f"http://127.0.0.1:{http_app.http.port}", timeout=30) as c:
        yield c
