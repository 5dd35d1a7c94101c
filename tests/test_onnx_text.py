"""The text model on ONNX Runtime: the export matches torch, is cached and reused, a broken cache is
rebuilt, and the setting reaches the server's encoders. One export per backend per session."""

from __future__ import annotations

import json
import logging
import shutil
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.encoders.base import Encoder, EncoderError
from mmsearch.encoders.onnx_text import MANIFEST, MODEL_FILE, _problem
from mmsearch.encoders.pool import EncoderPool
from mmsearch.encoders.registry import create
from mmsearch.encoders.text import DEFAULT_BACKEND, TEXT_BACKENDS, SentenceTransformerEncoder
from mmsearch.server.app import create_server, make_encoders
from mmsearch.server.settings import Settings

from .documents import text_item

pytestmark = pytest.mark.slow

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "Owls hunt mice at night with silent wings.",
    "x",
    "Café crème, naïve façade: accents and ünïcödé survive tokenisation.",
    " ".join(f"word{i}" for i in range(400)),  # past max_seq_length: truncated the same way
    *(f"Passage {i}: " + "the quick brown fox jumps over the lazy dog " * (i % 7 + 1) for i in range(36)),
]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server data directory whose models/ holds the session's exports."""
    return tmp_path_factory.mktemp("onnx-data")


@pytest.fixture(scope="session")
def torch_encoder() -> Encoder:
    return create("sentence-transformers", MODEL, "cpu")


@pytest.fixture(scope="session")
def onnx_encoder(data_dir: Path) -> Encoder:
    return create("sentence-transformers", MODEL, "cpu", backend="onnx", cache_dir=data_dir / "models")


@pytest.fixture(scope="session")
def int8_encoder(data_dir: Path) -> Encoder:
    return create("sentence-transformers", MODEL, "cpu", backend="onnx-int8", cache_dir=data_dir / "models")


def _compare(a: Encoder, b: Encoder) -> tuple[list[float], list[float]]:
    """Per text: pooled cosine, and the least token cosine; token strings and spans must be equal."""
    pooled, tokens = [], []
    for x, y in zip(a.encode_texts(TEXTS, as_query=False), b.encode_texts(TEXTS, as_query=False), strict=True):
        assert x.token_strings == y.token_strings and x.token_spans == y.token_spans
        assert x.tokens.shape == y.tokens.shape and y.tokens.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(y.tokens, axis=1), 1.0, atol=1e-5)
        pooled.append(float(x.pooled @ y.pooled))
        tokens.append(float((x.tokens * y.tokens).sum(axis=1).min()))
    return pooled, tokens


def test_onnx_matches_torch(torch_encoder: Encoder, onnx_encoder: Encoder) -> None:
    assert (onnx_encoder.dim, onnx_encoder.max_tokens) == (torch_encoder.dim, torch_encoder.max_tokens)
    pooled, tokens = _compare(torch_encoder, onnx_encoder)
    assert min(pooled) > 0.9999 and min(tokens) > 0.999, (min(pooled), min(tokens))
    # A query alone (batch of one, no padding) as the server encodes it.
    q_torch, q_onnx = (e.encode_texts(["owls at night"], as_query=True)[0] for e in (torch_encoder, onnx_encoder))
    assert float(q_torch.pooled @ q_onnx.pooled) > 0.9999


def test_int8_is_close_to_torch(torch_encoder: Encoder, int8_encoder: Encoder) -> None:
    pooled, tokens = _compare(torch_encoder, int8_encoder)
    # Measured ~0.99 per vector (docs/benchmarks.md); looser bounds catch a broken quantisation.
    assert min(pooled) > 0.97 and np.mean(pooled) > 0.98 and min(tokens) > 0.9, (min(pooled), min(tokens))


def test_second_load_reuses_the_cache(onnx_encoder: Encoder, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = data_dir / "models" / f"{MODEL}-onnx" / MODEL_FILE
    before = model.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="mmsearch.encoders.onnx_text"):
        again = create("sentence-transformers", MODEL, "cpu", backend="onnx", cache_dir=data_dir / "models")
    assert not [r for r in caplog.records if "export" in r.getMessage()]
    assert model.stat().st_mtime_ns == before
    assert (
        float(
            again.encode_texts(["owls"], as_query=True)[0].pooled
            @ onnx_encoder.encode_texts(["owls"], as_query=True)[0].pooled
        )
        > 0.99999
    )


def test_broken_cache_is_rebuilt(
    onnx_encoder: Encoder, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model file that ONNX Runtime cannot read (manifest intact, same size) and a crashed build's
    leftover folder: logged, rebuilt, loaded."""
    good = data_dir / "models" / f"{MODEL}-onnx"
    assert good.is_dir(), "the onnx_encoder fixture builds it first"
    cache = tmp_path / "models"
    broken = cache / good.name
    broken.mkdir(parents=True)
    shutil.copy(good / MANIFEST, broken / MANIFEST)
    (broken / MODEL_FILE).write_bytes(b"\0" * (good / MODEL_FILE).stat().st_size)
    (cache / f".{good.name}.tmp-crashed").mkdir()
    with caplog.at_level(logging.INFO), pytest.warns() as seen:
        enc = create("sentence-transformers", MODEL, "cpu", backend="onnx", cache_dir=cache)
        warnings.warn("the one warning here", UserWarning, stacklevel=1)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unusable" in m and "cannot be loaded" in m for m in warned), warned
    # The export's own lines only: no line per fusion from ONNX Runtime's fuser, no tracer warnings.
    assert {r.name for r in caplog.records} <= {"mmsearch.encoders.onnx_text", "sentence_transformers.base.model"}
    assert [str(w.message) for w in seen] == ["the one warning here"]
    assert _problem(broken, json.loads((good / MANIFEST).read_text())["source"]) is None
    assert len(enc.encode_texts(["owls"], as_query=True)[0].pooled) == 384
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [good.name]


def test_cache_problems_are_named(onnx_encoder: Encoder, data_dir: Path, tmp_path: Path) -> None:
    good = data_dir / "models" / f"{MODEL}-onnx"
    source = json.loads((good / MANIFEST).read_text())["source"]
    assert _problem(good, source) is None
    assert _problem(good, {**source, "recipe": -1}) == "built from other weights, recipe or runtime"
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / MODEL_FILE).write_bytes(b"half")
    assert "no readable manifest" in str(_problem(partial, source))
    shutil.copy(good / MANIFEST, partial / MANIFEST)
    assert "has 4 bytes" in str(_problem(partial, source))


def test_bad_backend_options_are_named() -> None:
    with pytest.raises(EncoderError, match="unknown text backend 'tensorrt'"):
        create("sentence-transformers", MODEL, "cpu", backend="tensorrt")
    with pytest.raises(EncoderError, match="needs a cache directory"):
        create("sentence-transformers", MODEL, "cpu", backend="onnx")


def test_a_failed_export_runs_on_torch(
    torch_encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The default backend exports on first start; if that fails (here: the export disagrees with
    torch), the server still starts: the error is logged and the model runs on torch."""
    from mmsearch.encoders import onnx_text

    def disagree(*_: object) -> None:
        raise EncoderError("the ONNX export (onnx-int8) disagrees with torch: token cosine 0.5000")

    monkeypatch.setattr(onnx_text, "_build", disagree)
    with caplog.at_level(logging.ERROR, logger="mmsearch.encoders.text"):
        enc = create("sentence-transformers", MODEL, "cpu", backend="onnx-int8", cache_dir=tmp_path / "models")
    assert isinstance(enc, SentenceTransformerEncoder) and enc.backend == "torch"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("onnx-int8 is unavailable" in m and "token cosine 0.5000" in m and "runs on torch" in m for m in errors)
    got, want = enc.encode_texts(TEXTS[:3], as_query=False), torch_encoder.encode_texts(TEXTS[:3], as_query=False)
    for x, y in zip(got, want, strict=True):
        assert float(x.pooled @ y.pooled) > 0.9999 and x.token_spans == y.token_spans
    assert not (tmp_path / "models" / f"{MODEL}-onnx-int8").exists()


def test_setting_reaches_the_encoder_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    field = Settings.model_fields["text_backend"]
    assert field.default == DEFAULT_BACKEND == "onnx-int8"
    assert typing.get_args(field.annotation) == TEXT_BACKENDS
    monkeypatch.setenv("MMSEARCH_TEXT_BACKEND", "onnx")
    assert Settings.load(data_dir=tmp_path).text_backend == "onnx"
    monkeypatch.setenv("MMSEARCH_TEXT_BACKEND", "onnx-int8")
    settings = Settings.load(data_dir=tmp_path)
    assert settings.text_backend == "onnx-int8"
    assert make_encoders(settings).options == {
        "sentence-transformers": {"backend": "onnx-int8", "cache_dir": tmp_path / "models"},
        "colpali": {"page_batch_mb": 2048},  # the page models' batch budget (encoders/page_budget.py)
    }
    monkeypatch.setenv("MMSEARCH_TEXT_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="text_backend"):
        Settings.load()


@pytest.fixture
def onnx_client(onnx_encoder: Encoder, data_dir: Path) -> Iterator[Client]:
    """A server whose text encoder comes from settings (text_backend=onnx), reusing the export."""
    settings = Settings(port=0, data_dir=data_dir, workers=4, text_backend="onnx")
    pool = make_encoders(settings)
    assert isinstance(pool, EncoderPool)
    app = create_server(settings, encoders=pool)
    with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
        yield c
    app.stop(grace=None)


def test_search_through_the_server_on_onnx(onnx_client: Client) -> None:
    items = [
        text_item("owls", "Owls hunt mice at night with silent wings."),
        text_item("trout", "Trout swim upstream in cold rivers to spawn."),
        text_item("bread", "Sourdough bread needs a starter and a long proof."),
    ]
    assert all(a.ok for a in onnx_client.ingest("animals", items))
    top = onnx_client.search("animals", "nocturnal birds of prey", top_k=3).results
    assert top[0].document_id == "owls"
