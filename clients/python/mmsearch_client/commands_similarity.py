"""`mmsearch explain ... --similarity-map out.png`: a ColPali page's patch scores drawn as a heat map
over the page, as colpali-engine's interpretability module draws them (plot_similarity_map: scores
min-max normalised over the query, upscaled bicubically to the page, blended at half opacity), in
PIL and numpy rather than matplotlib. One image: per patch the best score over the query's tokens,
or one token's scores with --map-token; the hottest patch is outlined."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

#: A perceptually ordered dark-to-bright colour ramp (sampled from matplotlib's "magma").
_RAMP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 253, 191]], dtype=np.float32,
)  # fmt: skip


@dataclass
class HeatMap:
    grid: np.ndarray  # (rows, cols) the scores drawn
    hottest: tuple[int, int]  # (row, col) of the highest score
    tokens: list[str]  # the query tokens the map covers


def scores_grid(m: Any, token: str | None = None) -> HeatMap:
    """The (rows, cols) scores of a SimilarityMap message: the best over the query's tokens, or
    over the tokens equal to `token`."""
    scores = np.asarray(m.scores, dtype=np.float32).reshape(len(m.query_tokens), m.rows, m.cols)
    chosen = list(range(len(m.query_tokens)))
    if token is not None:
        chosen = [i for i, t in enumerate(m.query_tokens) if t.strip().lower() == token.strip().lower()]
        if not chosen:
            raise SystemExit(f"--map-token {token!r} is not a query token; the query's tokens: {list(m.query_tokens)}")
    grid = scores[chosen].max(axis=0)
    r, c = np.unravel_index(int(grid.argmax()), grid.shape)
    return HeatMap(grid, (int(r), int(c)), [m.query_tokens[i] for i in chosen])


def render_heat_map(page: Image.Image, heat: HeatMap, out: Path) -> None:
    g = heat.grid
    norm = (g - g.min()) / (g.max() - g.min() + 1e-10)  # normalize_similarity_map's min-max
    upscaled = Image.fromarray((norm * 255).astype(np.uint8)).resize(page.size, Image.Resampling.BICUBIC)
    v = np.asarray(upscaled, dtype=np.float32) / 255 * (len(_RAMP) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_RAMP) - 2)
    colour = _RAMP[lo] + (_RAMP[lo + 1] - _RAMP[lo]) * (v - lo)[..., None]
    blended = Image.blend(page.convert("RGB"), Image.fromarray(colour.astype(np.uint8)), 0.5)
    rows, cols = g.shape
    r, c = heat.hottest
    w, h = page.size
    box = (c * w / cols, r * h / rows, (c + 1) * w / cols, (r + 1) * h / rows)
    ImageDraw.Draw(blended).rectangle(box, outline=(0, 255, 0), width=max(2, w // 300))
    blended.save(out, "PNG")


def write_similarity_map(client: Any, args: Any, page_number: int, load_page: Any) -> None:
    """Fetches the page's similarity map and draws it over the page (--file, else the kept image)."""
    m = client.similarity_map(args.collection, args.document, page_number, args.query)
    heat = scores_grid(m, args.map_token)
    if args.file:
        page = load_page(Path(args.file), page_number)
    else:
        kept = client.get_page(args.collection, args.document, page_number)
        if not kept.image:
            raise SystemExit("the server keeps no image of this page: give --file, the page image or PDF")
        import io

        page = Image.open(io.BytesIO(kept.image)).convert("RGB")
    render_heat_map(page, heat, Path(args.similarity_map))
    r, c = heat.hottest
    print(
        f"wrote {args.similarity_map} ({m.rows}x{m.cols} patches, {m.source} vectors; hottest patch r{r}c{c} "
        f"{heat.grid[r, c]:.2f} for {' '.join(heat.tokens)})"
    )
