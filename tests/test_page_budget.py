"""Page batches bounded by estimated activation memory (encoders/page_budget.py): the plan keeps page
order and the budget, a page over the budget goes alone, and a ColPali-family model's vectors do not
depend on how its pages were batched."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.encoders.colpali import ColPaliEncoder
from mmsearch.encoders.page_budget import PageCost, plan_batches

from .tiny_colpali import build_tiny


def test_plan_keeps_order_budget_and_page_cap(caplog: pytest.LogCaptureFixture) -> None:
    cost = PageCost(lambda w, h: w * h // 100, bytes_per_token=10)  # 100x100 px -> 100 tokens -> 1,000 B
    sizes = [(100, 100)] * 5 + [(1000, 1000)] + [(100, 100), (200, 100)]
    with caplog.at_level(logging.WARNING):
        batches = plan_batches(sizes, cost, budget_bytes=3_000, max_pages=4)
    assert [list(b) for b in batches] == [[0, 1, 2], [3, 4], [5], [6], [7]]
    # every batch but the lone giant fits: pages x longest sequence x bytes per token
    for b in batches:
        tokens = [cost.tokens_of(*sizes[i]) for i in b]
        assert cost.batch_bytes(tokens) <= 3_000 or len(b) == 1
    assert "encoded alone" in caplog.text and "1000x1000 page" in caplog.text
    assert [list(b) for b in plan_batches(sizes, cost, 10**9, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plan_batches([], cost, 1, 4) == []


@pytest.mark.parametrize("family", ["colpali", "colqwen2"])
def test_budget_batches_give_the_same_vectors(family: str, tiny_colpali_dir: Path) -> None:
    """Pages of different sizes (Qwen2-VL: different sequence lengths) encoded under a tight budget (one
    or two pages per pass) equal those encoded in one batch of four, row for row."""
    model = str(build_tiny(family, tiny_colpali_dir))
    rng = np.random.default_rng(0)
    sizes = [(60, 80), (120, 90), (200, 260), (64, 64)]
    pages = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    loose = ColPaliEncoder(model, "cpu", batch_size=4)
    tight = ColPaliEncoder(model, "cpu", batch_size=4, page_batch_mb=1e-9)  # every page over budget
    one_pass = loose.encode_images(pages)
    alone = tight.encode_images(pages)
    assert len(plan_batches([p.size for p in pages], tight.page_cost, tight.page_batch_bytes, 4)) == 4
    for a, b in zip(one_pass, alone, strict=True):
        assert a.tokens.shape == b.tokens.shape
        np.testing.assert_allclose(a.tokens, b.tokens, atol=2e-4)
    if family == "colqwen2":  # dynamic resolution: bigger pages are estimated (and are) longer sequences
        est = [tight.page_cost.tokens_of(w, h) for w, h in sizes]
        lengths = [len(e.tokens) for e in alone]
        assert est[2] > est[0] and lengths[2] > lengths[0]
    # the estimate covers each page's own sequence (its kept patch rows are part of it)
    assert all(tight.page_cost.tokens_of(w, h) >= len(e.tokens) for (w, h), e in zip(sizes, alone, strict=True))
