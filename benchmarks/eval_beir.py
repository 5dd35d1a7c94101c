"""Retrieval quality on a BEIR dataset (default: SciFact) through the real server and client.

Starts an in-process server, ingests the corpus over gRPC (once: pass --data-dir to keep the stored
collection and reuse it), runs the test queries through Client.search (top_k=100) under several
ranking configurations, and reports nDCG@10, recall@100 and MRR@10 (standard BEIR definitions).

    HF_HUB_OFFLINE=1 uv run python benchmarks/eval_beir.py --data-dir /tmp/mmsearch-bench/scifact
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmsearch.client import Client
from mmsearch.client.files import Rejected, items_from_file
from mmsearch.server.app import create_server
from mmsearch.server.settings import Settings
from mmsearch.v1 import ingest_pb2, search_pb2

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "beir_scifact"
FUSION = {
    "zscore": search_pb2.FUSION_STRATEGY_WEIGHTED_ZSCORE,
    "rrf": search_pb2.FUSION_STRATEGY_RRF,
    "dbsf": search_pb2.FUSION_STRATEGY_DBSF,
    "maxsim": search_pb2.FUSION_STRATEGY_MAXSIM,
}
Qrels = dict[str, dict[str, int]]


def code_version() -> str:
    """HEAD of the repository, "+dirty" when server/ or encoders/ have uncommitted changes."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "server", "encoders"], capture_output=True, text=True)
    return head + ("+dirty" if dirty.stdout.strip() else "")


@dataclass
class Config:
    name: str
    dense: float | None = None
    maxsim: float | None = None
    lexical: float | None = None
    fusion: str = "zscore"
    prefetch_k: int = 0  # 0: the server's default (100)
    group: str = "main"

    def options(self) -> search_pb2.RankingOptions:
        opts = search_pb2.RankingOptions(fusion=FUSION[self.fusion], prefetch_k=self.prefetch_k)
        for key in ("dense", "maxsim", "lexical"):
            value = getattr(self, key)
            if value is not None:
                setattr(opts, f"{key}_weight", value)
        return opts


@dataclass
class Outcome:
    config: Config
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    latency_p50_ms: float
    per_query_ndcg: dict[str, float] = field(default_factory=dict, repr=False)


def configs(grid: str) -> list[Config]:
    out = [
        Config("dense only", 1, 0, 0),
        Config("lexical only (BM25)", 0, 0, 1),
        Config("maxsim only", fusion="maxsim"),
        Config("dense+lexical", 1, 0, 1),
        Config("default 1/0.3/1", 1, 0.3, 1),
        Config("server defaults (no options)"),
        Config("rrf, default weights", 1, 0.3, 1, fusion="rrf"),
        Config("rrf, dense+lexical", 1, 0, 1, fusion="rrf"),
        Config("dbsf, default weights", 1, 0.3, 1, fusion="dbsf"),
        Config("dbsf, dense+lexical", 1, 0, 1, fusion="dbsf"),
        Config("default, prefetch 100", 1, 0.3, 1, prefetch_k=100),
        Config("default, prefetch 200", 1, 0.3, 1, prefetch_k=200),
    ]
    if grid == "none":
        return out
    maxsims = [0.0, 0.15, 0.3, 0.5, 1.0] if grid == "small" else [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
    lexicals = [0.5, 0.75, 1.0, 1.25, 1.5] if grid == "small" else [0.5, 0.75, 1.0, 1.25, 1.5, 2.0]
    done = {(c.dense, c.maxsim, c.lexical) for c in out if c.fusion == "zscore" and not c.prefetch_k}
    for m in maxsims:
        for lex in lexicals:
            if (1, m, lex) not in done:
                out.append(Config(f"grid d=1 m={m:g} l={lex:g}", 1, m, lex, group="grid"))
    return out


def load_beir(folder: Path, split: str) -> tuple[dict[str, str], Qrels]:
    qrels: Qrels = {}
    with (folder / "qrels" / f"{split}.tsv").open() as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {}
    with (folder / "queries.jsonl").open() as fh:
        for line in fh:
            rec = json.loads(line)
            if str(rec["_id"]) in qrels:
                queries[str(rec["_id"])] = rec["text"]
    return queries, qrels


# -- metrics (BEIR / pytrec_eval definitions: linear gains, log2 discounts, judged rel > 0 is relevant)
def ndcg_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def ingest(client: Client, collection: str, corpus: Path) -> dict[str, float]:
    rejected = 0

    def items() -> Iterator[ingest_pb2.IngestItem]:
        nonlocal rejected
        for it in items_from_file(corpus):
            if isinstance(it, Rejected):
                rejected += 1
            else:
                yield it

    t0 = time.perf_counter()
    ok = failed = points = 0
    for ack in client.ingest(collection, items()):
        if ack.ok:
            ok += 1
            points += ack.points
        else:
            failed += 1
            print(f"  ingest error {ack.id}: {ack.error_code} {ack.error}", file=sys.stderr)
        if (ok + failed) % 500 == 0:
            print(f"  {ok + failed} documents, {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    return {
        "documents": ok,
        "failed": failed,
        "rejected": rejected,
        "points": points,
        "seconds": seconds,
        "passages_per_s": points / seconds,
    }


def evaluate(
    client: Client, collection: str, cfg: Config, queries: dict[str, str], qrels: Qrels, top_k: int
) -> Outcome:
    run: dict[str, list[str]] = {}
    latencies = []
    opts = cfg.options()
    for qid, text in queries.items():
        t0 = time.perf_counter()
        resp = client.search(collection, text, top_k=top_k, ranking=opts)
        latencies.append((time.perf_counter() - t0) * 1000)
        run[qid] = [r.document_id for r in resp.results]
    per_q = {q: ndcg_at(run[q], qrels[q], 10) for q in queries}
    n = len(queries)
    return Outcome(
        config=cfg,
        ndcg_at_10=sum(per_q.values()) / n,
        recall_at_100=sum(recall_at(run[q], qrels[q], 100) for q in queries) / n,
        mrr_at_10=sum(mrr_at(run[q], qrels[q], 10) for q in queries) / n,
        queries=n,
        latency_p50_ms=statistics.median(latencies),
        per_query_ndcg=per_q,
    )


def fmt_w(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir-dir", type=Path, default=DEFAULT_BEIR)
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-dir", type=Path, help="keep the stored collection here and reuse it on later runs")
    ap.add_argument("--collection", default="scifact")
    ap.add_argument("--grid", choices=["none", "small", "full"], default="small")
    ap.add_argument("--only", help="comma-separated substrings: run only configs whose name contains one")
    ap.add_argument("--weights", help='extra z-score configs, "dense,maxsim,lexical;..." e.g. "1,2,1;0,1,1"')
    ap.add_argument("--max-queries", type=int, default=0, help="evaluate only the first N queries (smoke runs)")
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE", help="server setting, e.g. maxsim_k=0"
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scifact.json")
    args = ap.parse_args()

    queries, qrels = load_beir(args.beir_dir, args.split)
    if args.max_queries:
        queries = dict(list(queries.items())[: args.max_queries])
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="mmsearch-beir-")
    data_dir = args.data_dir or Path(tmp.name)  # type: ignore[union-attr]
    overrides = dict(kv.split("=", 1) for kv in args.setting)
    app = create_server(Settings(port=0, data_dir=data_dir, log_level="WARNING", **overrides))
    client = Client(f"127.0.0.1:{app.port}", timeout=120)
    ingest_stats: dict[str, float] = {}
    try:
        existing = {c.name: c for c in client.list_collections()}
        corpus_docs = sum(1 for line in (args.beir_dir / "corpus.jsonl").open() if line.strip())
        have = existing[args.collection].document_count if args.collection in existing else 0
        if have >= corpus_docs:
            print(f"reusing collection {args.collection!r} in {data_dir} ({have} documents)", file=sys.stderr)
        else:
            print(f"ingesting {corpus_docs} documents into {data_dir} (have {have})", file=sys.stderr)
            ingest_stats = ingest(client, args.collection, args.beir_dir / "corpus.jsonl")
            print(
                f"  ingested in {ingest_stats['seconds']:.0f}s ({ingest_stats['passages_per_s']:.1f} passages/s)",
                file=sys.stderr,
            )
        client.search(args.collection, "warm up", top_k=10)
        selected = configs(args.grid)
        if args.only:
            keys = [k.strip() for k in args.only.split(",")]
            selected = [c for c in selected if any(k in c.name for k in keys)]
        for spec in filter(None, (args.weights or "").split(";")):
            d, m, lex = (float(x) for x in spec.split(","))
            selected.append(Config(f"extra d={d:g} m={m:g} l={lex:g}", d, m, lex, group="extra"))
        outcomes = []
        for cfg in selected:
            o = evaluate(client, args.collection, cfg, queries, qrels, args.top_k)
            outcomes.append(o)
            print(
                f"{cfg.name:32s} nDCG@10 {o.ndcg_at_10:.4f}  R@100 {o.recall_at_100:.4f}  "
                f"MRR@10 {o.mrr_at_10:.4f}  p50 {o.latency_p50_ms:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        client.close()
        app.stop()
        if tmp is not None:
            tmp.cleanup()

    code = code_version()
    rows = [{**asdict(o), "config": asdict(o.config), "code": code} for o in outcomes]
    for r in rows:
        r["per_query_ndcg"] = {q: round(v, 5) for q, v in r["per_query_ndcg"].items()}
    report: dict = {"dataset": args.beir_dir.name, "split": args.split, "queries": len(queries), "top_k": args.top_k}
    report["settings"] = overrides  # results under other server settings are not merged with these
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    if all(old.get(k) == v for k, v in report.items()):  # same evaluation: merge, this run's configs win
        names = {r["config"]["name"] for r in rows}
        rows = [r for r in old.get("results", []) if r["config"]["name"] not in names] + rows
        ingest_stats = ingest_stats or old.get("ingest") or {}
    print_table(rows)
    zscore = [r for r in rows if r["config"]["fusion"] == "zscore" and r["config"]["dense"] is not None]
    best = max(zscore, key=lambda r: r["ndcg_at_10"]) if zscore else None
    default = next((r for r in rows if r["config"]["name"] == "default 1/0.3/1"), None)
    if best and default and "per_query_ndcg" in best and "per_query_ndcg" in default:
        report["best_vs_default"] = compare(best, default)
        print(f"\nbest z-score weights vs default: {json.dumps(report['best_vs_default'])}")
    report.update(ingest=ingest_stats or None, best_zscore=best["config"]["name"] if best else None, results=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} ({len(rows)} configurations)", file=sys.stderr)


def print_table(rows: list[dict]) -> None:
    print("\n| config | fusion | dense | maxsim | lexical | prefetch | nDCG@10 | R@100 | MRR@10 | p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["config"]
        print(
            f"| {c['name']} | {c['fusion']} | {fmt_w(c['dense'])} | {fmt_w(c['maxsim'])} | {fmt_w(c['lexical'])} | "
            f"{c['prefetch_k'] or 'default'} | {r['ndcg_at_10']:.4f} | {r['recall_at_100']:.4f} | "
            f"{r['mrr_at_10']:.4f} | {r['latency_p50_ms']:.1f} |"
        )


def compare(a: dict, b: dict, rounds: int = 10_000) -> dict[str, object]:
    """Paired comparison of nDCG@10 over the same queries: mean difference, a paired bootstrap 95%
    interval, and how many queries got better / worse."""
    qs = sorted(a["per_query_ndcg"])
    diffs = [a["per_query_ndcg"][q] - b["per_query_ndcg"][q] for q in qs]
    rng = random.Random(0)
    means = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(rounds))
    return {
        "best": a["config"]["name"],
        "best_ndcg_at_10": round(a["ndcg_at_10"], 4),
        "default_ndcg_at_10": round(b["ndcg_at_10"], 4),
        "difference": round(sum(diffs) / len(diffs), 4),
        "bootstrap_95ci": [round(means[int(0.025 * rounds)], 4), round(means[int(0.975 * rounds)], 4)],
        "queries_better": sum(d > 0 for d in diffs),
        "queries_worse": sum(d < 0 for d in diffs),
    }


if __name__ == "__main__":
    main()
