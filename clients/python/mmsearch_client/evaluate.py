"""`mmsearch eval`: retrieval quality on a BEIR-format set or a page-retrieval set, measured through a
running server exactly as users call it (ingest over gRPC, then Search per query), under one or more
ranking configurations.

BEIR folder: corpus.jsonl ({"_id", "title", "text"}), queries.jsonl ({"_id", "text"}),
qrels/<split>.tsv (query-id, corpus-id, score, with a header line).
Page folder (ViDoRe style): corpus.jsonl ({"corpus_id" or "_id", "image_path" or "image" or "pdf"}),
queries.jsonl ({"query_id" or "_id", "text"}), qrels.tsv or qrels/<split>.tsv. Extensions for a
mixed collection: a corpus record may hold "text" (and "title") instead of a file; a query may
name its "group" (metrics are then also reported per group); a qrels id "<corpus id>#<page>" judges
one page of a multi-page document (a PDF), and such documents are then ranked page by page.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmsearch.protocol.vocab import Fusion, Modality
from mmsearch.protocol.wire import FUSION
from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2

from .client import Client
from .files import IMAGE_TYPES, Rejected, items_from_file
from .metrics import mrr_at, ndcg_at, paired_bootstrap, recall_at

Qrels = dict[str, dict[str, int]]


class EvalError(Exception):
    """The folder or its files are not what the format needs (the message says what is wrong)."""


@dataclass
class EvalSet:
    name: str
    queries: dict[str, str]
    qrels: Qrels  # judged relevant pairs only (grade > 0)
    items: Callable[[], Iterator[ingest_pb2.IngestItem | Rejected]]
    corpus_ids: set[str]
    groups: dict[str, str] = field(default_factory=dict)  # query id -> its group, where queries name one
    by_page: frozenset[str] = frozenset()  # documents judged page by page ("<id>#<page>" in the qrels)

    def first(self, n: int) -> EvalSet:
        """The first n judged queries (quick runs)."""
        keep = list(self.qrels)[:n]
        return replace(self, queries={q: self.queries[q] for q in keep}, qrels={q: self.qrels[q] for q in keep})


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvalError(f"{path}:{n}: malformed JSON ({exc.msg})") from None


def _qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts and not parts[-1].lstrip("-").isdigit():
                continue  # header
            if len(parts) < 3:
                raise EvalError(f"{path}:{n}: expected query-id<TAB>corpus-id<TAB>score")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def _find_qrels(root: Path, split: str) -> Path:
    for p in (root / "qrels" / f"{split}.tsv", root / "qrels.tsv"):
        if p.is_file():
            return p
    raise EvalError(f"{root} has no qrels/{split}.tsv (nor qrels.tsv)")


def _paged(doc: str, corpus_ids: set[str]) -> str | None:
    """The document of a "<corpus id>#<page>" qrels id, else None."""
    head, sep, page = doc.rpartition("#")
    return head if sep and page.isdigit() and doc not in corpus_ids and head in corpus_ids else None


def _check(name: str, queries: dict[str, str], qrels: Qrels, corpus_ids: set[str]) -> tuple[Qrels, frozenset[str]]:
    """The judged relevant pairs, and the documents judged page by page."""
    if not queries:
        raise EvalError(f"{name}: the query file holds no queries")
    unknown_q = sorted(set(qrels) - set(queries))
    if unknown_q:
        raise EvalError(f"{name}: qrels name {len(unknown_q)} query ids not in queries.jsonl (e.g. {unknown_q[0]!r})")
    judged_ids = {d for rel in qrels.values() for d in rel}
    unknown_d = sorted(d for d in judged_ids - corpus_ids if _paged(d, corpus_ids) is None)
    if unknown_d:
        raise EvalError(f"{name}: qrels name {len(unknown_d)} ids not in corpus.jsonl (e.g. {unknown_d[0]!r})")
    judged = {q: {d: s for d, s in rel.items() if s > 0} for q, rel in qrels.items()}
    judged = {q: rel for q, rel in judged.items() if rel}
    if not judged:
        raise EvalError(f"{name}: the qrels hold no relevant pairs")
    by_page = {_paged(d, corpus_ids) for d in judged_ids - corpus_ids}
    return judged, frozenset(d for d in by_page if d is not None)


def load_beir(root: Path, split: str = "test") -> EvalSet:
    missing = [f for f in ("corpus.jsonl", "queries.jsonl") if not (root / f).is_file()]
    if not root.is_dir() or missing:
        raise EvalError(
            f"{root} is not a BEIR folder: missing {', '.join(missing) or 'the folder'} "
            f"(expected corpus.jsonl, queries.jsonl and qrels/{split}.tsv)"
        )
    qrels = _qrels(_find_qrels(root, split))
    queries = {str(q["_id"]): q["text"] for q in _jsonl(root / "queries.jsonl") if str(q.get("_id")) in qrels}
    corpus_ids = {str(d.get("_id", d.get("id"))) for d in _jsonl(root / "corpus.jsonl")}
    qrels, by_page = _check(root.name, queries, qrels, corpus_ids)
    return EvalSet(root.name, {q: queries[q] for q in qrels}, qrels,
                   lambda: items_from_file(root / "corpus.jsonl"), corpus_ids, by_page=by_page)  # fmt: skip


def load_pages(root: Path, split: str = "test") -> EvalSet:
    if not (root / "corpus.jsonl").is_file() or not (root / "queries.jsonl").is_file():
        raise EvalError(f"{root} is not a page-retrieval folder: expected corpus.jsonl, queries.jsonl and qrels.tsv")
    corpus = list(_jsonl(root / "corpus.jsonl"))
    corpus_ids = {str(d.get("corpus_id", d.get("_id"))) for d in corpus}
    qrels = _qrels(_find_qrels(root, split))
    raw_q = list(_jsonl(root / "queries.jsonl"))
    queries = {str(q.get("query_id", q.get("_id"))): q["text"] for q in raw_q}
    groups = {str(q.get("query_id", q.get("_id"))): str(q["group"]) for q in raw_q if q.get("group")}
    qrels, by_page = _check(root.name, queries, qrels, corpus_ids)

    def items() -> Iterator[ingest_pb2.IngestItem | Rejected]:
        for d in corpus:
            doc_id = str(d.get("corpus_id", d.get("_id")))
            rel = d.get("image_path") or d.get("image") or d.get("pdf")
            if not rel and isinstance(d.get("text"), str):
                title = d.get("title")
                text = f"{title.strip()}. {d['text']}" if isinstance(title, str) and title.strip() else d["text"]
                yield ingest_pb2.IngestItem(id=doc_id, text=text)
                continue
            if not rel:
                yield Rejected(doc_id, "corpus record has no image_path, image, pdf or text")
                continue
            path = root / rel
            if not path.is_file():
                yield Rejected(doc_id, f"{path} does not exist")
            elif path.suffix.lower() == ".pdf":
                yield ingest_pb2.IngestItem(id=doc_id, source=str(path), pdf=path.read_bytes())
            elif path.suffix.lower() in IMAGE_TYPES:
                image = common_pb2.Image(data=path.read_bytes(), mime_type=IMAGE_TYPES[path.suffix.lower()])
                yield ingest_pb2.IngestItem(id=doc_id, source=str(path), image=image)
            else:
                yield Rejected(doc_id, f"{path}: not an image or PDF")

    kept = {q: queries[q] for q in qrels}
    return EvalSet(root.name, kept, qrels, items, corpus_ids, {q: g for q, g in groups.items() if q in kept}, by_page)


def ingest(client: Client, collection: str, es: EvalSet) -> tuple[int, list[Rejected]]:
    rejected: list[Rejected] = []

    def good() -> Iterator[ingest_pb2.IngestItem]:
        for it in es.items():
            if isinstance(it, Rejected):
                rejected.append(it)
            else:
                yield it

    ok = 0
    for ack in client.ingest(collection, good()):
        if ack.ok:
            ok += 1
        else:
            rejected.append(Rejected(ack.source or ack.id, ack.error))
    return ok, rejected


# -- running the queries

METRICS: dict[str, tuple[Callable[[Sequence[str], dict[str, int], int], float], int]] = {
    # nDCG@5 is ViDoRe's headline metric (page sets), nDCG@10 BEIR's.
    "ndcg@10": (ndcg_at, 10),
    "ndcg@5": (ndcg_at, 5),
    "recall@100": (recall_at, 100),
    "mrr@10": (mrr_at, 10),
    # recall@5: the share of the relevant pages a reader sees on the first screen (page query sets).
    "recall@5": (recall_at, 5),
}


@dataclass(frozen=True)
class RunConfig:
    """One way of ranking every query: ranking options and a modality filter, or the baseline that
    concatenates per-modality lists (top 5 text passages, top 5 pages, then the rest of each)."""

    name: str
    ranking: search_pb2.RankingOptions | None = None
    modalities: tuple[Modality, ...] = ()
    concatenate: bool = False


def run_configs(
    fusions: Sequence[str] = (),
    weights: Sequence[tuple[float, float, float]] = (),
    prefetch: Sequence[int] = (),
    modality_baselines: bool = False,
) -> list[RunConfig]:
    """Every combination of the fusions, (dense, MaxSim, BM25) weights and prefetch_k values asked
    for (an empty list: the server's default); then, if asked, the single-modality rankings and their
    concatenation. MaxSim fusion reads no weights, so it is run once per prefetch_k."""
    out: list[RunConfig] = []
    for fusion in fusions or [""]:
        for w in [None] if fusion == Fusion.MAXSIM or not weights else weights:
            for p in prefetch or [0]:
                opts = search_pb2.RankingOptions(prefetch_k=p)
                if fusion:
                    opts.fusion = FUSION.to_wire(fusion)
                if w is not None:
                    opts.dense_weight, opts.maxsim_weight, opts.lexical_weight = w
                parts = [fusion] if fusion else []
                parts += [f"weights {w[0]:g}/{w[1]:g}/{w[2]:g}"] if w is not None else []
                parts += [f"prefetch {p}"] if p else []
                name = ", ".join(parts) or "server defaults"
                if all(c.name != name for c in out):  # the same setting asked twice runs once
                    out.append(RunConfig(name, opts))
    if modality_baselines:
        out += [
            RunConfig("text passages only", modalities=(Modality.TEXT,)),
            RunConfig("pages only", modalities=(Modality.PAGE,)),
            RunConfig("concatenation: top 5 text + top 5 pages", concatenate=True),
        ]
    return out


@dataclass
class Outcome:
    config: RunConfig
    metrics: dict[str, float]  # METRICS' means over the queries, "queries", "p50_ms" (client wall time)
    per_query: dict[str, float]  # query id -> nDCG@10
    groups: dict[str, dict[str, float]]  # query group -> {"queries", "ndcg@10", "recall@5"}

    def row(self) -> dict[str, Any]:
        return {"config": self.config.name, **self.metrics} | ({"groups": self.groups} if self.groups else {})


def _ranked(client: Client, collection: str, es: EvalSet, text: str, cfg: RunConfig, k: int) -> list[str]:
    if cfg.concatenate:
        t = _ranked(client, collection, es, text, RunConfig("", modalities=(Modality.TEXT,)), k)
        p = _ranked(client, collection, es, text, RunConfig("", modalities=(Modality.PAGE,)), k)
        return (t[:5] + p[:5] + t[5:] + p[5:])[:k]
    if not es.by_page:
        resp = client.search(collection, text, top_k=k, ranking=cfg.ranking, modalities=cfg.modalities)
        return [r.document_id for r in resp.results]
    # Documents judged page by page are ranked page by page: every passage and page comes back, and
    # the first hit of each document (of each page, for those) keeps its place.
    resp = client.search(
        collection, text, top_k=min(4 * k, 1000), ranking=cfg.ranking, modalities=cfg.modalities, all_passages=True
    )
    keys = [f"{r.document_id}#{r.page}" if r.document_id in es.by_page else r.document_id for r in resp.results]
    return list(dict.fromkeys(keys))[:k]


def evaluate(client: Client, collection: str, es: EvalSet, cfg: RunConfig | None = None, k: int = 100) -> Outcome:
    cfg = cfg or RunConfig("server defaults")
    scores: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    ms = []
    for qid, rel in es.qrels.items():
        t0 = time.perf_counter()
        ranked = _ranked(client, collection, es, es.queries[qid], cfg, k)
        ms.append((time.perf_counter() - t0) * 1000)
        for name, (metric, cut) in METRICS.items():
            scores[name][qid] = metric(ranked, rel, cut)
    n = len(es.qrels)
    metrics = {m: round(sum(v.values()) / n, 4) for m, v in scores.items()}
    metrics |= {"queries": n, "p50_ms": round(statistics.median(ms), 1)}
    groups = {}
    for g in sorted(set(es.groups.values())):
        qs = [q for q in es.qrels if es.groups.get(q) == g]
        groups[g] = {"queries": len(qs)} | {
            m: round(statistics.fmean(scores[m][q] for q in qs), 4) for m in ("ndcg@10", "recall@5")
        }
    return Outcome(cfg, metrics, scores["ndcg@10"], groups)


def compare(outcomes: Sequence[Outcome]) -> dict[str, Any] | None:
    """The best configuration by nDCG@10 after the first against the first (the baseline), paired
    over the same queries; None with one configuration."""
    if len(outcomes) < 2:
        return None
    base = outcomes[0]
    best = max(outcomes[1:], key=lambda o: o.metrics["ndcg@10"])
    qs = sorted(base.per_query)  # a fixed order: the bootstrap's resamples depend on it
    test = paired_bootstrap([best.per_query[q] for q in qs], [base.per_query[q] for q in qs])
    return {"baseline": base.config.name, "best": best.config.name} | {k: round(v, 4) for k, v in test.items()}


def render(es: EvalSet, split: str, outcomes: Sequence[Outcome]) -> str:
    """One line for one configuration; a Markdown table (and the comparison) for several."""
    groups = sorted({g for o in outcomes for g in o.groups})
    if len(outcomes) == 1:
        m = outcomes[0].metrics
        line = (
            f"{es.name} ({split}, {m['queries']} queries): nDCG@10 {m['ndcg@10']:.4f}  nDCG@5 {m['ndcg@5']:.4f}  "
            f"recall@100 {m['recall@100']:.4f}  MRR@10 {m['mrr@10']:.4f}"
        )
        per_group = [
            f"  {g}: nDCG@10 {outcomes[0].groups[g]['ndcg@10']:.4f}  recall@5 {outcomes[0].groups[g]['recall@5']:.4f}"
            for g in groups
        ]
        return "\n".join([line + f"  recall@5 {m['recall@5']:.4f}", *per_group])
    head = ["configuration", "nDCG@10", "nDCG@5", "R@100", "MRR@10", "R@5", "p50 ms", *(f"nDCG@10 {g}" for g in groups)]
    lines = [f"{es.name} ({split}, {outcomes[0].metrics['queries']} queries)", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for o in outcomes:
        m = o.metrics
        cells = [f"{m[k]:.4f}" for k in METRICS] + [f"{m['p50_ms']:.1f}"]
        cells += [f"{o.groups[g]['ndcg@10']:.4f}" if g in o.groups else "-" for g in groups]
        lines.append(f"| {o.config.name} | " + " | ".join(cells) + " |")
    c = compare(outcomes)
    if c:
        lines.append(
            f"\nbest vs baseline ({c['best']} vs {c['baseline']}): nDCG@10 {c['difference']:+.4f}, paired bootstrap "
            f"95% interval [{c['ci95_low']:+.4f}, {c['ci95_high']:+.4f}]; {c['queries_better']} queries better, "
            f"{c['queries_worse']} worse"
        )
    return "\n".join(lines)
