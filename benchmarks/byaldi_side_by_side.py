"""mmsearch beside byaldi on the same tiny ColPali checkpoint, pages and 50 text queries, in one run.

byaldi lives in its own environment (it is never a dependency of mmsearch):

    python3 -m uv venv /tmp/byaldi-env
    python3 -m uv pip install --python /tmp/byaldi-env/bin/python byaldi==0.0.7   # colpali-engine 0.3.18, torch 2.13
    python benchmarks/byaldi_side_by_side.py --model DIR --pages 1000 --splice 10000 --out results.json

DIR is a checkpoint both load (tests/tiny_colpali.py's build_tiny("colpali", root)). Pages: the real
ones in ../shared/data first (SROIE receipts, FUNSD forms, ViDoRe arXivQA figures, the PDFs' pages
rendered at 72 dpi), then generated pages (benchmarks/colpali_first_stage.py) up to the largest size,
as image files. byaldi indexes the folder (benchmarks/byaldi_runner.py, run with --byaldi-python) and
mmsearch ingests the same files through an in-process server (embedded storage, `ocr: never`, patch
vectors stored in float32 as byaldi keeps them: --token-storage); both are timed from the files to a
searchable index. Then they answer the same queries in turn, query by query (interleaved, so load
changes hit both alike), each query once to warm up and once timed: byaldi a call in its process,
mmsearch a gRPC call through the client.

--splice N: after the encoded pages, each system gets N - pages more pages made from its own vectors of
the encoded ones by the same plan (the top `cut` patches of page a over the rest of page b, plus the same
small noise: benchmarks/colpali_first_stage.py's splice), written straight into its index (byaldi's
list of tensors, mmsearch's store), so 10,000 pages need not be encoded on this machine. Ingest is not
timed for those.

Exact MaxSim: the pages' and queries' vectors as mmsearch's encoder makes them (image patches only),
in float32, every page scored; a result agrees when its exact score is at least the exact 10th best
(scores of the random model tie closely). byaldi keeps the prompt's rows ("Describe the image.") in its
page vectors, so its ranking is exact MaxSim over other vectors: its agreement is reported too.

torch runs byaldi on --byaldi-threads intra-op threads (default 1: on this shared 2-core machine one
thread made the tiny model 3-8x faster, which mmsearch's encoder does by itself for small models; byaldi
is given the same, its best case).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def page_files(work: Path, n: int) -> list[Path]:
    """The real pages (up to n), then generated ones up to n, as files in work/all."""
    import pypdfium2 as pdfium

    from benchmarks.colpali_first_stage import page_image

    folder = work / "all"
    folder.mkdir()
    real = sorted((DATA / "sroie_receipts").rglob("*.jpg")) + sorted((DATA / "funsd_forms").rglob("*.png"))
    real += sorted((DATA / "vidore_arxivqa_sample").rglob("*.png"))
    files = []
    for i, f in enumerate(real[:n]):
        files.append(folder / f"r{i:05d}{f.suffix}")
        files[-1].symlink_to(f)
    for pdf in sorted((DATA / "pdf_documents").glob("*.pdf")):
        for page in pdfium.PdfDocument(str(pdf)):
            if len(files) < n:
                files.append(folder / f"d{len(files):05d}.png")
                page.render(scale=1.0).to_pil().save(files[-1])
    rng = random.Random(0)
    while len(files) < n:
        files.append(folder / f"g{len(files):05d}.png")
        page_image(rng).save(files[-1])
    return files


class Byaldi:
    def __init__(self, python: str, model: str, folder: Path, index: Path, splice: Path | None, threads: int):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
        runner = Path(__file__).with_name("byaldi_runner.py")
        command = [python, str(runner), model, str(folder), str(index), *([str(splice)] if splice else [])]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.index = self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("byaldi runner ended")
            if line.startswith("{"):
                return json.loads(line)

    def search(self, q: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(q) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def splice_plan(pages: int, total: int, patches: int, side: int, seed: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    splices = []
    for n in range(total - pages):
        a, b = (int(x) for x in rng.integers(0, pages, 2))
        splices.append([a, b, int(rng.integers(1, side)) * side, 1000 + n])
    return {"patches": patches, "noise": 0.02, "splices": splices}


def spliced(tokens: list[np.ndarray], plan: dict) -> list[np.ndarray]:
    out = []
    for a, b, cut, seed in plan["splices"]:
        rows = np.concatenate([tokens[a][:cut], tokens[b][cut:]]).astype(np.float64)
        rows = rows + np.random.default_rng(seed).normal(0, plan["noise"], rows.shape)
        out.append((rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--splice", default="", help="comma-separated totals beyond --pages, e.g. 10000")
    ap.add_argument("--byaldi-python", default="/tmp/byaldi-env/bin/python")
    ap.add_argument("--byaldi-threads", type=int, default=1)
    ap.add_argument("--splice-only", action="store_true", help="run only the --splice sizes")
    ap.add_argument("--token-storage", default="float32", help="mmsearch's patch storage (byaldi keeps float32)")
    ap.add_argument("--out")
    args = ap.parse_args()
    from PIL import Image

    from benchmarks.colpali_first_stage import WORDS
    from mmsearch.client import Client
    from mmsearch.encoders.colpali import ColPaliEncoder
    from mmsearch.server.app import create_server
    from mmsearch.server.ingest.page_encoding import rowcol
    from mmsearch.server.settings import Settings
    from mmsearch.server.storage.base import PointData
    from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2

    work = Path(tempfile.mkdtemp(prefix="byaldi-bench-"))
    qrng = random.Random(1)
    queries = [" ".join(qrng.choice(WORDS) for _ in range(qrng.randint(3, 6))) for _ in range(50)]
    files = page_files(work, args.pages)
    kinds = {k: sum(f.name[0] == k for f in files) for k in "rdg"}
    # mmsearch's vectors in float32, for exact MaxSim and for splicing
    encoder = ColPaliEncoder(args.model)
    encoded = []
    for start in range(0, len(files), 32):
        encoded += encoder.encode_images([Image.open(f) for f in files[start : start + 32]])
    tokens = [e.tokens for e in encoded]
    boxes = encoded[0].token_boxes
    side = round(len(tokens[0]) ** 0.5)
    query_tokens = [e.tokens for e in encoder.encode_texts(queries, as_query=True)]
    results: dict = {"model": args.model, "queries": len(queries), "pages": kinds, "sizes": {},
                     "token_storage": args.token_storage, "byaldi_threads": args.byaldi_threads}  # fmt: skip

    mime = {".jpg": "image/jpeg", ".png": "image/png"}
    settings = Settings(port=0, data_dir=work / "mmsearch", text_kind="fake", text_model="fake-32",
                        allowed_models=["*"], max_message_mb=64)  # fmt: skip
    app = create_server(settings)
    byaldi = None
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=3600, retries=0) as client:
            sizes = [] if args.splice_only else [args.pages]
            for total in [*sizes, *(int(x) for x in args.splice.split(",") if x)]:
                plan = splice_plan(args.pages, total, len(tokens[0]), side)
                plan_file = work / f"splice-{total}.json"
                plan_file.write_text(json.dumps(plan))
                load_before = os.getloadavg()
                byaldi = Byaldi(args.byaldi_python, args.model, work / "all", work / f"idx-{total}",
                                plan_file if total > args.pages else None, args.byaldi_threads)  # fmt: skip
                name = f"bench{total}"
                client.create_collection(
                    name, page_kind="colpali", page_model=args.model, ocr="never",
                    compression={"tokens": args.token_storage},
                )  # fmt: skip
                client.search(name, "warm up the model", top_k=1)  # loads it, as byaldi's from_pretrained does
                items = (
                    ingest_pb2.IngestItem(id=f.stem, image=common_pb2.Image(data=f.read_bytes(), mime_type=mime[s]))
                    for f in files
                    if (s := f.suffix)
                )
                t = time.perf_counter()
                assert all(a.ok for a in client.ingest(name, items))
                ingest_s = time.perf_counter() - t
                extra = spliced(tokens, plan)
                for start in range(0, len(extra), 500):
                    app.store.upsert(name, [
                        PointData(id=f"00000000-0000-4000-8000-{start + i:012d}", space="page",
                                  dense=(t.mean(0) / np.linalg.norm(t.mean(0))).astype(np.float32), tokens=t,
                                  lexical=None, prefetch=rowcol(t, boxes),
                                  payload={"doc_id": f"s{start + i:05d}", "seq": 0, "space": "page",
                                           "modality": "page", "page": 1})
                        for i, t in enumerate(extra[start : start + 500])
                    ])  # fmt: skip
                every = tokens + extra
                ids = [f.stem for f in files] + [f"s{i:05d}" for i in range(len(extra))]
                flat = np.concatenate(every)
                offsets = np.cumsum([0] + [len(t) for t in every])
                ranking = search_pb2.RankingOptions(fusion=search_pb2.FUSION_STRATEGY_MAXSIM)
                timed: dict[str, list[float]] = {"byaldi": [], "mmsearch": []}
                agree: dict[str, list[float]] = {"byaldi": [], "mmsearch": []}
                for rnd in range(2):
                    for q, qt in zip(queries, query_tokens, strict=True):
                        b = byaldi.search(q)
                        t = time.perf_counter()
                        res = client.search(name, q, top_k=10, ranking=ranking)
                        ms = (time.perf_counter() - t) * 1000
                        if rnd == 0:
                            continue
                        exact = np.maximum.reduceat(flat @ qt.T, offsets[:-1], axis=0).sum(axis=1)
                        score = dict(zip(ids, exact, strict=True))
                        tenth = np.sort(exact)[-10] - 1e-4 * len(qt)
                        timed["byaldi"].append(b["ms"])
                        timed["mmsearch"].append(ms)
                        agree["byaldi"].append(float(np.mean([score[i] >= tenth for i in b["top10"]])))
                        agree["mmsearch"].append(float(np.mean([score[r.document_id] >= tenth for r in res.results])))
                index = byaldi.index
                byaldi.close()
                byaldi = None
                row = {
                    "byaldi": {**index, "search_ms_p50": statistics.median(timed["byaldi"]),
                               "agreement_with_exact@10": statistics.mean(agree["byaldi"])},
                    "mmsearch": {"pages": total, "index_s": ingest_s, "index_pages_per_s": args.pages / ingest_s,
                                 "search_ms_p50": statistics.median(timed["mmsearch"]),
                                 "agreement_with_exact@10": statistics.mean(agree["mmsearch"])},
                    "load_before": load_before,
                    "load_after": os.getloadavg(),
                }  # fmt: skip
                results["sizes"][str(total)] = row
                print(total, json.dumps(row), flush=True)
    finally:
        if byaldi is not None:
            byaldi.close()
        app.stop(grace=None)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
