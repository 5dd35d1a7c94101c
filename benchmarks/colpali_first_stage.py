"""First stages for ColPali pages measured against exact MaxSim over every page (top-10 overlap, cost).

    python benchmarks/colpali_first_stage.py --model DIR --pages 1000,10000 [--out results.json]

Pages are generated images (random words from a fixed vocabulary in lines, some boxed like table
cells, at random sizes) encoded by the model in DIR (a tiny random checkpoint from
tests/tiny_colpali.py: the overlap then says how well a first stage approximates MaxSim over such
vectors, not retrieval quality). 50 text queries of 3-6 vocabulary words. Vectors are cached beside
--cache. Variants, each followed by exact MaxSim over the candidates' patches:

- mean@k: today's first stage, the page's mean patch vector (cosine with the query's mean), top k;
- rowcol@k: Qdrant's recipe for ColPali, mean-pooled rows and columns of the patch grid as a
  multivector, MaxSim of the query tokens over them, top k;
- exact: MaxSim over every page's patches (byaldi's search).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

WORDS = (
    "invoice total date receipt form name address amount tax company number table chart figure summary "
    "report year month day value item list price quantity payment cash change account balance order "
    "customer store branch phone email signature approved section results method model accuracy loss "
    "training layer attention dataset baseline experiment revenue profit quarter budget growth"
).split()


def page_pngs(n: int, seed: int = 0) -> list[bytes]:
    """`n` generated pages (page_image) as PNG bytes, the same for every script given the seed."""
    import io

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        page_image(rng).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def tiny_server_settings():  # type: ignore[no-untyped-def]
    """Settings of an in-process server for ColPali timing runs: fake text encoder, any model allowed."""
    import tempfile

    from mmsearch.server.settings import Settings

    return Settings(port=0, data_dir=Path(tempfile.mkdtemp()), text_kind="fake", text_model="fake-32",
                    allowed_models=["*"], max_message_mb=64)  # fmt: skip


def page_image(rng: random.Random):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw, ImageFont

    w, h = rng.choice([(612, 792), (800, 600), (400, 900), (700, 700)])
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=rng.choice([18, 24, 32]))
    y = 20
    while y < h - 40:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
        x = rng.randint(10, 80)
        draw.text((x, y), line, fill="black", font=font)
        if rng.random() < 0.2:
            draw.rectangle((x - 5, y - 5, min(w - 5, x + 14 * len(line)), y + 36), outline="black")
        y += rng.randint(30, 80)
    return img


def encode_pages(encoder, n: int, seed: int = 0, batch: int = 16) -> tuple[list[np.ndarray], float]:  # type: ignore[no-untyped-def]
    """Patch vectors of n generated pages, and the encoder's pages/s (model calls only)."""
    rng = random.Random(seed)
    out: list[np.ndarray] = []
    spent = 0.0
    for start in range(0, n, batch):
        images = [page_image(rng) for _ in range(min(batch, n - start))]
        t = time.perf_counter()
        out.extend(e.tokens for e in encoder.encode_images(images))
        spent += time.perf_counter() - t
    return out, n / spent


def splice(pages: list[np.ndarray], n: int, side: int, seed: int = 2) -> list[np.ndarray]:
    """n pages from encoded ones, beyond those: each new page is the top rows of one encoded page over
    the bottom rows of another (cut at a random row), plus a little noise, renormalised. Encoding 10,000
    pages takes hours on this shared 2-core machine; spliced pages keep the model's patch statistics."""
    rng = np.random.default_rng(seed)
    out = list(pages[:n])
    dim = pages[0].shape[1]
    while len(out) < n:
        a, b = rng.integers(0, len(pages), 2)
        cut = int(rng.integers(1, side)) * side
        rows = np.concatenate([pages[a][:cut], pages[b][cut:]]) + rng.normal(0, 0.02, (side * side, dim))
        out.append((rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32))
    return out


def rowcol(tokens: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean-pooled rows and columns of a row-major patch grid, normalised (rows + cols vectors)."""
    grid = tokens.reshape(rows, cols, -1)
    pooled = np.concatenate([grid.mean(axis=1), grid.mean(axis=0)])
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def maxsim(q: np.ndarray, docs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """MaxSim of query tokens q (m, d) over each document of a flat (N, d) array split at offsets."""
    sims = docs @ q.T  # (N, m)
    return np.maximum.reduceat(sims, offsets[:-1], axis=0).sum(axis=1)


def measure(pages: list[np.ndarray], queries: list[np.ndarray], grid: tuple[int, int], ks: list[int]) -> dict:
    flat = np.concatenate(pages).astype(np.float32)
    offsets = np.cumsum([0] + [len(p) for p in pages])
    means = np.stack([p.mean(axis=0) for p in pages])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    rc = [rowcol(p, *grid) for p in pages]
    rc_flat, rc_off = np.concatenate(rc).astype(np.float32), np.cumsum([0] + [len(r) for r in rc])
    out: dict[str, dict[str, float]] = {}

    def rerank(q: np.ndarray, cand: np.ndarray) -> list[int]:
        sub = [pages[i] for i in cand]
        scores = maxsim(q, np.concatenate(sub), np.cumsum([0] + [len(p) for p in sub]))
        return [int(cand[i]) for i in np.argsort(-scores)[:10]]

    def run(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        overlaps, ms = [], []
        for q, truth in zip(queries, exact, strict=True):
            t = time.perf_counter()
            top = fn(q)
            ms.append((time.perf_counter() - t) * 1000)
            overlaps.append(len(set(top) & set(truth)) / 10)
        out[name] = {"overlap@10": float(np.mean(overlaps)), "ms_p50": float(np.median(ms))}

    exact = []
    for q in queries:
        exact.append([int(i) for i in np.argsort(-maxsim(q, flat, offsets))[:10]])
    run("exact", lambda q: [int(i) for i in np.argsort(-maxsim(q, flat, offsets))[:10]])
    for k in ks:
        if k >= len(pages):
            continue

        def mean_first(q: np.ndarray, k: int = k) -> list[int]:
            qm = q.mean(axis=0)
            return rerank(q, np.argpartition(-(means @ qm), k)[:k])

        def rowcol_first(q: np.ndarray, k: int = k) -> list[int]:
            return rerank(q, np.argpartition(-maxsim(q, rc_flat, rc_off), k)[:k])

        run(f"mean@{k}", mean_first)
        run(f"rowcol@{k}", rowcol_first)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pages", default="1000,10000")
    ap.add_argument("--ks", default="50,100,200,500")
    ap.add_argument(
        "--encode", type=int, default=0, help="pages to encode (default: the largest size); more are spliced"
    )
    ap.add_argument("--cache", default="/tmp/colpali-first-stage")
    ap.add_argument("--out")
    args = ap.parse_args()
    from mmsearch.encoders.colpali import ColPaliEncoder

    encoder = ColPaliEncoder(args.model)
    side = round(float(encoder._processor.image_seq_length) ** 0.5)
    sizes = [int(x) for x in args.pages.split(",")]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    n_encoded = args.encode or max(sizes)
    store = cache / f"pages-{n_encoded}.npy"
    pps = None
    if store.exists():
        encoded = list(np.load(store))
    else:
        encoded, pps = encode_pages(encoder, n_encoded)
        np.save(store, np.stack(encoded))  # the square-grid family: every page has side x side patches
    all_pages = splice(encoded, max(sizes), side)
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6))) for _ in range(50)]
    queries = [e.tokens for e in encoder.encode_texts(texts, as_query=True)]
    ks = [int(x) for x in args.ks.split(",")]
    results = {"model": args.model, "grid": [side, side], "encoded_pages": n_encoded, "encode_pages_per_s": pps,
               "sizes": {}}  # fmt: skip
    for n in sizes:
        results["sizes"][str(n)] = measure(all_pages[:n], queries, (side, side), ks)
        print(n, json.dumps(results["sizes"][str(n)], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
