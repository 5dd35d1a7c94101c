"""Foundation performance: encoder throughput vs ingest throughput over gRPC, and search latency.

(a) raw encoder: encode_texts(batch of 32, as_query=False) on the passages, passages/s;
(b) ingest: the same passages, one item each, through Client.ingest into an in-process server,
    passages/s, and b/a (target >= 0.85); (a) is measured before and after (b), and b/a uses
    their mean, because the machine is shared and timings drift;
(c) search: p50/p95 of Client.search at concurrency 1 over >= 200 queries, next to the p50 of
    encoding the query alone (interleaved query by query); target p50 <= 1.3 x encode_p50 + 10 ms.

Passages: SciFact abstracts (title. text) split with the server's own chunker at its defaults
(180 words, 40 overlap), so each item is exactly one passage and both sides encode identical
texts. Beyond the distinct passages, the list repeats with distinct ids (id suffix "~r<k>").

    HF_HUB_OFFLINE=1 uv run python benchmarks/bench_foundation.py --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mmsearch.client import Client
from mmsearch.encoders.base import Encoder
from mmsearch.encoders.registry import EncoderPool
from mmsearch.server.app import create_server
from mmsearch.server.ingest.text import split_passages
from mmsearch.server.settings import Settings
from mmsearch.v1 import ingest_pb2

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "beir_scifact"
KIND, MODEL = "sentence-transformers", "all-MiniLM-L6-v2"


def code_version() -> str:
    """HEAD of the repository, "+dirty" when server/ or encoders/ have uncommitted changes."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "server", "encoders"], capture_output=True, text=True)
    return head + ("+dirty" if dirty.stdout.strip() else "")


def load_passages(beir: Path, n: int, words: int, overlap: int) -> tuple[list[tuple[str, str]], int]:
    """n (id, text) passages and how many of them are distinct."""
    distinct: list[tuple[str, str]] = []
    with (beir / "corpus.jsonl").open() as fh:
        for line in fh:
            rec = json.loads(line)
            text = f"{rec['title'].strip()}. {rec['text']}" if rec.get("title") else rec["text"]
            for p in split_passages(text, words, overlap):
                distinct.append((f"{rec['_id']}-p{p.index}", p.text))
    out = []
    for i in range(n):
        pid, text = distinct[i % len(distinct)]
        out.append((pid if i < len(distinct) else f"{pid}~r{i // len(distinct)}", text))
    return out, min(n, len(distinct))


def load_queries(beir: Path, n: int) -> list[str]:
    with (beir / "queries.jsonl").open() as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]
    return texts[:n]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def encoder_throughput(encoder: Encoder, texts: list[str], batch: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        encoder.encode_texts(texts[i : i + batch], as_query=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "passages_per_s": len(texts) / seconds}


def ingest_throughput(client: Client, collection: str, passages: list[tuple[str, str]]) -> dict[str, float]:
    client.create_collection(collection)  # model loading and collection creation stay outside the timing

    def items() -> Iterator[ingest_pb2.IngestItem]:
        for pid, text in passages:
            yield ingest_pb2.IngestItem(id=pid, text=text)

    t0 = time.perf_counter()
    ok = points = 0
    first_ack = 0.0
    for ack in client.ingest(collection, items(), create=False):
        if not first_ack:
            first_ack = time.perf_counter() - t0
        if not ack.ok:
            raise SystemExit(f"ingest failed for {ack.id}: {ack.error_code} {ack.error}")
        ok += 1
        points += ack.points
    seconds = time.perf_counter() - t0
    if points != len(passages):
        print(f"warning: {len(passages)} passages became {points} points", file=sys.stderr)
    return {"seconds": seconds, "passages_per_s": points / seconds, "points": points, "first_ack_s": first_ack}


def search_latency(
    clients: dict[str, Client], encoder: Encoder, collection: str, queries: list[str], top_k: int
) -> dict[str, dict[str, Any]]:
    """Per query: the query encoded alone, then one search on each server (order alternating)."""
    for q in queries[:5]:  # warm-up
        encoder.encode_texts([q], as_query=True)
        for c in clients.values():
            c.search(collection, q, top_k=top_k)
    enc: list[float] = []
    total: dict[str, list[float]] = {label: [] for label in clients}
    server: dict[str, dict[str, list[float]]] = {
        label: {k: [] for k in ("encode_ms", "retrieve_ms", "rerank_ms", "total_ms")} for label in clients
    }
    for n, q in enumerate(queries):
        t0 = time.perf_counter()
        encoder.encode_texts([q], as_query=True)
        enc.append((time.perf_counter() - t0) * 1000)
        for label in list(clients)[:: 1 if n % 2 == 0 else -1]:
            t1 = time.perf_counter()
            resp = clients[label].search(collection, q, top_k=top_k)
            total[label].append((time.perf_counter() - t1) * 1000)
            for key, values in server[label].items():
                values.append(getattr(resp.timings, key))
    encode_p50 = statistics.median(enc)
    budget = 1.3 * encode_p50 + 10.0
    return {
        label: {
            "queries": len(queries),
            "top_k": top_k,
            "search_p50_ms": statistics.median(t),
            "search_p95_ms": pct(t, 95),
            "search_mean_ms": statistics.fmean(t),
            "encode_p50_ms": encode_p50,
            "encode_p95_ms": pct(enc, 95),
            "budget_ms": budget,
            "meets_target": statistics.median(t) <= budget,
            "server_p50_ms": {k: statistics.median(v) for k, v in server[label].items()},
        }
        for label, t in total.items()
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "loadavg_start": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="passages to encode and ingest")
    ap.add_argument("--queries", type=int, default=300, help="search queries (SciFact claims)")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32, help="encoder batch size for (a); the server uses its own")
    ap.add_argument("--beir-dir", type=Path, default=DEFAULT_BEIR)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "foundation.json")
    ap.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also search through a second server on the same store with this setting changed (e.g. maxsim_k=0)",
    )
    args = ap.parse_args()

    settings = Settings(port=0, data_dir=Path("unused"), log_level="WARNING")
    passages, distinct = load_passages(args.beir_dir, args.n, settings.chunk_words, settings.chunk_overlap)
    texts = [t for _, t in passages]
    queries = load_queries(args.beir_dir, args.queries)
    info = machine()
    print(
        f"{len(passages)} passages ({distinct} distinct), {len(queries)} queries, "
        f"torch threads {info['torch_threads']}, load {info['loadavg_start']}",
        file=sys.stderr,
    )

    pool = EncoderPool("cpu")
    encoder = pool.get(KIND, MODEL)  # shared with the server: one model in memory, both warm
    encoder.encode_texts(texts[:64], as_query=False)

    enc_before = encoder_throughput(encoder, texts, args.batch)
    print(f"(a) encoder: {enc_before['passages_per_s']:.1f} passages/s", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="mmsearch-bench-") as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp)})
        app = create_server(settings, encoders=pool)
        client = Client(f"127.0.0.1:{app.port}", timeout=120)
        alt_settings = Settings(**{**settings.model_dump(), **dict(kv.split("=", 1) for kv in args.compare)})
        alt = create_server(alt_settings, store=app.store, encoders=pool) if args.compare else None
        clients = {"default": client}
        if alt:
            clients["compare"] = Client(f"127.0.0.1:{alt.port}", timeout=120)
        try:
            ing = ingest_throughput(client, "bench", passages)
            print(f"(b) ingest: {ing['passages_per_s']:.1f} passages/s", file=sys.stderr, flush=True)
            enc_after = encoder_throughput(encoder, texts, args.batch)
            print(f"(a) encoder again: {enc_after['passages_per_s']:.1f} passages/s", file=sys.stderr, flush=True)
            lats = search_latency(clients, encoder, "bench", queries, args.top_k)
        finally:
            for c in clients.values():
                c.close()
            if alt:
                alt.server.stop(None).wait()  # shares the store: the first server closes it
            app.stop()
    lat = lats["default"]
    if "compare" in lats:
        lats["compare"]["settings"] = dict(kv.split("=", 1) for kv in args.compare)

    enc_rate = (enc_before["passages_per_s"] + enc_after["passages_per_s"]) / 2
    ratio = ing["passages_per_s"] / enc_rate
    result = {
        "n": len(passages),
        "distinct_passages": distinct,
        "passages": "SciFact title. abstract, split by the server chunker (180 words, 40 overlap); "
        "repeated with distinct ids beyond the distinct count",
        "encoder": {
            "kind": KIND,
            "model": MODEL,
            "batch": args.batch,
            "before": enc_before,
            "after": enc_after,
            "passages_per_s": enc_rate,
        },
        "ingest": {**ing, "encode_batch_size": settings.encode_batch_size},
        "ingest_over_encoder": ratio,
        "ingest_target_met": ratio >= 0.85,
        "search": lat,
        "search_compare": lats.get("compare"),
        "machine": {**info, "loadavg_end": os.getloadavg()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "code": code_version(),
    }
    print("\n| N | encoder p/s | ingest p/s | ingest/encoder | search p50 | search p95 | encode p50 | target |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(passages)} | {enc_rate:.1f} | {ing['passages_per_s']:.1f} | {ratio:.2f} "
        f"{'(>= 0.85 ok)' if ratio >= 0.85 else '(< 0.85)'} | {lat['search_p50_ms']:.1f} ms | "
        f"{lat['search_p95_ms']:.1f} ms | {lat['encode_p50_ms']:.1f} ms | "
        f"p50 {'<=' if lat['meets_target'] else '>'} {lat['budget_ms']:.1f} ms |"
    )
    for label, r in lats.items():
        print(
            f"{label} {r.get('settings', '')}: search p50 {r['search_p50_ms']:.1f} ms, "
            f"p95 {r['search_p95_ms']:.1f} ms; "
            f"server-side p50 (ms) {json.dumps({k: round(v, 2) for k, v in r['server_p50_ms'].items()})}"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(args.out.read_text()).get("runs", {}) if args.out.exists() else {}
    runs[str(len(passages))] = result
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out} (runs: {', '.join(sorted(runs, key=int))})", file=sys.stderr)


if __name__ == "__main__":
    main()
