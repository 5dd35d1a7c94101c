"""`mmsearch eval`: retrieval quality on a BEIR-format set or a page-retrieval set, measured through a
running server exactly as users call it (ingest over gRPC, then Search per query).

BEIR folder: corpus.jsonl ({"_id", "title", "text"}), queries.jsonl ({"_id", "text"}),
qrels/<split>.tsv (query-id, corpus-id, score, with a header line).
Page folder (ViDoRe style): corpus.jsonl ({"corpus_id" or "_id", "image_path" or "image" or "pdf"}),
queries.jsonl ({"query_id" or "_id", "text"}), qrels.tsv or qrels/<split>.tsv.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2

from .client import Client
from .files import IMAGE_TYPES, Rejected, items_from_file

Qrels = dict[str, dict[str, int]]


class EvalError(Exception):
    """The folder or its files are not what the format needs (the message says what is wrong)."""


@dataclass
class EvalSet:
    name: str
    queries: dict[str, str]
    qrels: Qrels
    items: Any  # () -> Iterator[IngestItem | Rejected]
    corpus_ids: set[str]


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


def _check(name: str, queries: dict[str, str], qrels: Qrels, corpus_ids: set[str]) -> Qrels:
    if not queries:
        raise EvalError(f"{name}: the query file holds no queries")
    unknown_q = sorted(set(qrels) - set(queries))
    if unknown_q:
        raise EvalError(f"{name}: qrels name {len(unknown_q)} query ids not in queries.jsonl (e.g. {unknown_q[0]!r})")
    unknown_d = sorted({d for rel in qrels.values() for d in rel} - corpus_ids)
    if unknown_d:
        raise EvalError(f"{name}: qrels name {len(unknown_d)} ids not in corpus.jsonl (e.g. {unknown_d[0]!r})")
    judged = {q: {d: s for d, s in rel.items() if s > 0} for q, rel in qrels.items()}
    judged = {q: rel for q, rel in judged.items() if rel}
    if not judged:
        raise EvalError(f"{name}: the qrels hold no relevant pairs")
    return judged


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
    qrels = _check(root.name, queries, qrels, corpus_ids)
    return EvalSet(root.name, {q: queries[q] for q in qrels}, qrels,
                   lambda: items_from_file(root / "corpus.jsonl"), corpus_ids)  # fmt: skip


def load_pages(root: Path, split: str = "test") -> EvalSet:
    if not (root / "corpus.jsonl").is_file() or not (root / "queries.jsonl").is_file():
        raise EvalError(f"{root} is not a page-retrieval folder: expected corpus.jsonl, queries.jsonl and qrels.tsv")
    corpus = list(_jsonl(root / "corpus.jsonl"))
    corpus_ids = {str(d.get("corpus_id", d.get("_id"))) for d in corpus}
    qrels = _qrels(_find_qrels(root, split))
    raw_q = list(_jsonl(root / "queries.jsonl"))
    queries = {str(q.get("query_id", q.get("_id"))): q["text"] for q in raw_q}
    qrels = _check(root.name, queries, qrels, corpus_ids)

    def items() -> Iterator[ingest_pb2.IngestItem | Rejected]:
        for d in corpus:
            doc_id = str(d.get("corpus_id", d.get("_id")))
            rel = d.get("image_path") or d.get("image") or d.get("pdf")
            if not rel:
                yield Rejected(doc_id, "corpus record has no image_path, image or pdf")
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

    return EvalSet(root.name, {q: queries[q] for q in qrels}, qrels, items, corpus_ids)


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    # Linear gains, as trec_eval / pytrec_eval (which BEIR, MTEB and ViDoRe report) compute them.
    dcg = sum(max(0, rel.get(d, 0)) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rel.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(rel)) / len(rel)


def mrr_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranked[:k]) if d in rel), 0.0)


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


def evaluate(
    client: Client, collection: str, es: EvalSet, ranking: search_pb2.RankingOptions | None = None, k: int = 100
) -> dict[str, float]:
    # nDCG@5 is ViDoRe's headline metric (page sets), nDCG@10 BEIR's.
    scores = {"ndcg@10": 0.0, "ndcg@5": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, rel in es.qrels.items():
        resp = client.search(collection, es.queries[qid], top_k=k, ranking=ranking)
        ranked = [r.document_id for r in resp.results]
        scores["ndcg@10"] += ndcg_at(ranked, rel, 10)
        scores["ndcg@5"] += ndcg_at(ranked, rel, 5)
        scores["recall@100"] += recall_at(ranked, rel, 100)
        scores["mrr@10"] += mrr_at(ranked, rel, 10)
    n = len(es.qrels)
    return {m: round(v / n, 4) for m, v in scores.items()} | {"queries": n}
