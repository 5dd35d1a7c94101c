"""The ColPali-family encoder on tiny random checkpoints of each backbone, loaded from disk exactly as
real weights are (the vectors mean nothing; shapes, masking, padding and scoring are what is tested)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmsearch.encoders import registry
from mmsearch.encoders.base import Encoder, EncoderError
from mmsearch.encoders.colpali import ColPaliEncoder

from .tiny_colpali import build_tiny

FAMILIES = ["colpali", "colqwen2", "colqwen2_5", "colidefics3"]
#: Families whose patches tile one grid over the page, so every patch gets a page-relative box.
WITH_BOXES = {"colpali", "colqwen2", "colqwen2_5"}
QUERIES = ["what is the total amount", "invoice date"]
# transformers' PaliGemma processor builds its labels with np.array(..., copy=False) semantics numpy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_encoder(request: pytest.FixtureRequest, tiny_colpali_dir: Path) -> Encoder:
    path = build_tiny(request.param, tiny_colpali_dir)
    return registry.create("colpali", str(path), "cpu")


def _page(size: tuple[int, int], seed: int) -> Image.Image:
    """A synthetic page: white background, a title bar and a few text-like lines."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", size, 255)  # greyscale on purpose: the encoder must convert to RGB
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle([w // 10, h // 12, w - w // 10, h // 6], fill=40)
    for y in range(h // 4, h - h // 10, max(h // 10, 4)):
        draw.line([w // 10, y, int(w * rng.uniform(0.4, 0.9)), y], fill=0, width=2)
    return image


PAGES = [_page((60, 80), 0), _page((120, 90), 1), _page((200, 50), 2)]


def _check(encoded: list, dim: int) -> None:
    for e in encoded:
        assert e.tokens.ndim == 2 and e.tokens.shape[1] == dim and e.tokens.shape[0] >= 1
        assert e.pooled.shape == (dim,)
        assert e.tokens.dtype == np.float32 and e.pooled.dtype == np.float32
        assert np.isfinite(e.tokens).all() and np.isfinite(e.pooled).all()
        np.testing.assert_allclose(np.linalg.norm(e.tokens, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(e.pooled), 1.0, atol=1e-5)
        assert len(e.token_strings) == e.tokens.shape[0]


def test_pages_shapes_norms_and_boxes(tiny_encoder: ColPaliEncoder) -> None:
    assert tiny_encoder.kind == "colpali" and tiny_encoder.dim == 128
    pages = tiny_encoder.encode_images(PAGES)
    assert len(pages) == 3
    _check(pages, tiny_encoder.dim)
    family = Path(tiny_encoder.model).name
    for page in pages:
        assert all(s.startswith("patch ") for s in page.token_strings)
        if family not in WITH_BOXES:
            assert page.token_boxes is None
            continue
        boxes = page.token_boxes
        assert boxes is not None and boxes.shape == (len(page.tokens), 4)
        assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        # The patches tile the page: their areas sum to 1.
        assert np.prod(boxes[:, 2:] - boxes[:, :2], axis=1).sum() == pytest.approx(1.0, abs=1e-5)
    if family in WITH_BOXES - {"colpali"}:  # the grid follows the page's shape: the 4:1 page has wide-set columns
        wide = pages[2].token_boxes
        assert wide is not None and (wide[:, 2] - wide[:, 0] < wide[:, 3] - wide[:, 1]).all()
    if family == "colpali":  # 64 px square input, 16 px patches: 4 x 4 image tokens, prompt tokens dropped
        assert {len(p.tokens) for p in pages} == {16}
    else:  # dynamic resolution: pages of different shapes give different token counts (so the batch is padded)
        assert len({len(p.tokens) for p in pages}) > 1


def test_batched_pages_equal_one_by_one(tiny_encoder: ColPaliEncoder) -> None:
    """Padding must not leak into the kept rows: a page encodes the same alone or in a padded batch."""
    batched = tiny_encoder.encode_images(PAGES)
    single = [tiny_encoder.encode_images([p])[0] for p in PAGES]
    for b, s in zip(batched, single, strict=True):
        assert b.tokens.shape == s.tokens.shape
        np.testing.assert_allclose(b.tokens, s.tokens, atol=1e-4)
        np.testing.assert_allclose(b.pooled, s.pooled, atol=1e-4)
    queries = tiny_encoder.encode_texts(["total", "what is the invoice date of this page"], as_query=True)
    alone = tiny_encoder.encode_texts(["total"], as_query=True)[0]
    np.testing.assert_allclose(queries[0].tokens, alone.tokens, atol=1e-4)


def test_maxsim_matches_colpali_engine(tiny_encoder: ColPaliEncoder) -> None:
    import torch

    pages = tiny_encoder.encode_images(PAGES)
    queries = tiny_encoder.encode_texts(QUERIES, as_query=True)
    _check(queries, tiny_encoder.dim)
    ours = np.array([[(q.tokens @ d.tokens.T).max(axis=1).sum() for d in pages] for q in queries])
    score = tiny_encoder._processor.score_multi_vector
    # One pair per call: in a batch the reference pads pages with zero rows, which outscore a query token
    # whose best real match is negative (random weights do that); real vectors never contain such rows.
    reference = [[float(score([torch.from_numpy(q.tokens)], [torch.from_numpy(d.tokens)], device="cpu")[0, 0])
                  for d in pages] for q in queries]  # fmt: skip
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-4)


def test_documents_and_queries_as_text(tiny_encoder: ColPaliEncoder) -> None:
    docs = tiny_encoder.encode_texts(["The invoice total is 42.", "A page about tax."], as_query=False)
    _check(docs, tiny_encoder.dim)
    query = tiny_encoder.encode_texts(["The invoice total is 42."], as_query=True)[0]
    # Queries carry the model's augmentation tokens on top of the text; documents are encoded raw.
    assert len(query.tokens) > len(docs[0].tokens)
    assert "invoice" in "".join(docs[0].token_strings)
    long = " ".join(["invoice total"] * 400)
    assert len(tiny_encoder.encode_texts([long], as_query=False)[0].tokens) <= tiny_encoder.max_tokens + 2


def test_concurrent_calls_match_sequential(tiny_encoder: ColPaliEncoder) -> None:
    expected = [tiny_encoder.encode_images([p])[0].tokens for p in PAGES]
    query = tiny_encoder.encode_texts(QUERIES[:1], as_query=True)[0].tokens
    with ThreadPoolExecutor(4) as pool:
        pages = [pool.submit(tiny_encoder.encode_images, [p]) for p in PAGES]
        texts = pool.submit(tiny_encoder.encode_texts, QUERIES[:1], as_query=True)
        for want, got in zip(expected, pages, strict=True):
            np.testing.assert_allclose(got.result()[0].tokens, want, atol=1e-5)
        np.testing.assert_allclose(texts.result()[0].tokens, query, atol=1e-5)


def test_missing_model_dir_fails_fast_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-colpali"
    started = time.perf_counter()
    with pytest.raises(EncoderError, match="no-such-colpali"):
        registry.create("colpali", str(missing), "cpu")
    assert time.perf_counter() - started < 2.0


def test_unknown_family_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(EncoderError, match=r"unsupported model_type 'bert'.*paligemma.*qwen2_vl"):
        registry.create("colpali", str(tmp_path), "cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderError, match=r"no config\.json"):
        ColPaliEncoder(str(empty))


def test_registered() -> None:
    # an unknown kind's error lists the registered kinds
    with pytest.raises(EncoderError, match=r"known kinds: colpali, fake, sentence-transformers$"):
        registry.create("nope", "m")
