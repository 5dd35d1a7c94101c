"""Fusion on a mixed collection (issue 4): movie texts, SciFact abstracts, receipt scans, form scans and
PDF pages in ONE collection, queries aimed at each modality, every fusion strategy compared with the
single-modality rankings and with plain concatenation of per-modality result lists.

    uv run python benchmarks/eval_mixed.py [--data-dir /tmp/mixed] [--json benchmarks/results/mixed.json]

Relevance: receipts by company + date (every receipt matching both), forms by a field and its value
(FUNSD kv pairs), SciFact by its qrels, movies by tagline -> that movie, PDF pages by hand-written
questions about a table or section (listed below with the pages that answer them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from mmsearch.client import Client  # noqa: E402
from mmsearch.client.evaluate import mrr_at, ndcg_at  # noqa: E402
from mmsearch.server.app import create_server  # noqa: E402
from mmsearch.server.settings import Settings  # noqa: E402
from mmsearch.v1 import common_pb2, ingest_pb2, search_pb2  # noqa: E402

PDF_QUERIES = [  # (query, pdf id, relevant pages)
    ("BLEU scores and training cost of translation models compared", "attention", [8]),
    ("scaled dot-product attention and multi-head attention", "attention", [4, 5]),
    ("sinusoidal positional encoding of token positions", "attention", [6]),
    ("training data, batching and hardware schedule for WMT 2014", "attention", [7]),
    ("variations of the transformer architecture: number of heads, key size, dropout", "attention", [9]),
    ("english constituency parsing results", "attention", [10]),
    ("self-attention complexity per layer compared with recurrent and convolutional layers", "attention", [6]),
    ("in-batch negatives for training the dense passage retriever", "multi-column", [3, 4, 5, 6]),
    ("top-20 retrieval accuracy on open-domain QA datasets", "multi-column", [5, 6]),
    ("end-to-end question answering exact match results", "multi-column", [7]),
]


def build(n_receipts: int, n_forms: int, n_sci_queries: int, n_sci_docs: int, n_movies: int):  # type: ignore[no-untyped-def]
    items: list[ingest_pb2.IngestItem] = []
    queries: list[tuple[str, str, dict[str, int]]] = []  # (group, text, relevant doc -> grade)

    receipts = [json.loads(x) for x in (DATA / "sroie_receipts" / "manifest.jsonl").open()][:n_receipts]
    for m in receipts:
        img = common_pb2.Image(data=(DATA / "sroie_receipts" / m["image"]).read_bytes(), mime_type="image/jpeg")
        items.append(ingest_pb2.IngestItem(id=f"receipt-{m['id']}", image=img))
    for m in receipts:
        if m["company"] and m["date"]:
            rel = {f"receipt-{r['id']}": 1 for r in receipts if (r["company"], r["date"]) == (m["company"], m["date"])}
            queries.append(("receipt", f"receipt from {m['company'].lower()} on {m['date']}", rel))

    forms = sorted((DATA / "funsd_forms" / "testing_data" / "images").glob("*.png"))[:n_forms]
    form_ids = {f.stem for f in forms}
    for f in forms:
        img = common_pb2.Image(data=f.read_bytes(), mime_type="image/png")
        items.append(ingest_pb2.IngestItem(id=f"form-{f.stem}", image=img))
    seen: set[str] = set()
    for line in (DATA / "funsd_forms" / "kv_pairs.jsonl").open():
        kv = json.loads(line)
        if kv["doc_id"] in form_ids and kv["doc_id"] not in seen and 6 <= len(kv["answer"]) <= 60:
            seen.add(kv["doc_id"])
            q = f"form with {kv['question'].strip(': ').lower()} {kv['answer']}"
            queries.append(("form", q, {f"form-{kv['doc_id']}": 1}))

    sci = DATA / "beir_scifact"
    qrels: dict[str, set[str]] = {}
    for line in (sci / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, _ = line.split("\t")
        qrels.setdefault(q, set()).add(d)
    chosen = sorted(qrels)[:n_sci_queries]
    wanted = set().union(*(qrels[q] for q in chosen))
    docs = [json.loads(x) for x in (sci / "corpus.jsonl").open()]
    keep = [d for d in docs if d["_id"] in wanted] + [d for d in docs if d["_id"] not in wanted]
    for d in keep[:n_sci_docs]:
        items.append(ingest_pb2.IngestItem(id=f"sci-{d['_id']}", text=f"{d['title']}. {d['text']}"))
    texts = {json.loads(x)["_id"]: json.loads(x)["text"] for x in (sci / "queries.jsonl").open()}
    for q in chosen:
        queries.append(("scifact", texts[q], {f"sci-{d}": 1 for d in qrels[q]}))

    movies = json.loads((DATA / "together_movies" / "movies.json").read_text())[:n_movies]
    for i, m in enumerate(movies):
        items.append(ingest_pb2.IngestItem(id=f"movie-{i}", text=f"{m['title']}. {m['overview']}"))
    for i, m in enumerate(movies[:60]):
        if m.get("tagline"):
            queries.append(("movie", m["tagline"], {f"movie-{i}": 1}))

    for name in ("attention", "multi-column"):
        items.append(ingest_pb2.IngestItem(id=name, pdf=(DATA / "pdf_documents" / f"{name}.pdf").read_bytes()))
    for text, doc, pages in PDF_QUERIES:
        queries.append(("pdf", text, {f"{doc}#{p}": 1 for p in pages}))
    return items, queries


def key(r: search_pb2.SearchResult) -> str:
    return f"{r.document_id}#{r.page}" if r.document_id in ("attention", "multi-column") else r.document_id


STRATEGIES = {
    "weighted z-score (global)": search_pb2.FUSION_STRATEGY_WEIGHTED_ZSCORE,
    "calibrated z-score (per space+modality)": search_pb2.FUSION_STRATEGY_CALIBRATED_ZSCORE,
    "RRF": search_pb2.FUSION_STRATEGY_RRF,
    "DBSF": search_pb2.FUSION_STRATEGY_DBSF,
    "MaxSim / query length": search_pb2.FUSION_STRATEGY_MAXSIM,
}


def run(client: Client, queries: list, label: str, fn) -> dict:  # type: ignore[no-untyped-def]
    per_group: dict[str, list[tuple[float, float]]] = {}
    t = time.perf_counter()
    for group, text, rel in queries:
        ranked = fn(text)
        per_group.setdefault(group, []).append((ndcg_at(ranked, rel, 10), mrr_at(ranked, rel, 10)))
    allv = [v for vs in per_group.values() for v in vs]
    row = {
        "strategy": label,
        "ndcg@10": sum(v[0] for v in allv) / len(allv),
        "mrr@10": sum(v[1] for v in allv) / len(allv),
    }
    for g, vs in sorted(per_group.items()):
        row[f"ndcg@10 {g}"] = sum(v[0] for v in vs) / len(vs)
    row["ms/query"] = (time.perf_counter() - t) * 1000 / len(queries)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/tmp/mmsearch-mixed")
    ap.add_argument("--receipts", type=int, default=40)
    ap.add_argument("--forms", type=int, default=25)
    ap.add_argument("--sci-queries", type=int, default=50)
    ap.add_argument("--sci-docs", type=int, default=500)
    ap.add_argument("--movies", type=int, default=300)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "mixed.json"))
    args = ap.parse_args()
    items, queries = build(args.receipts, args.forms, args.sci_queries, args.sci_docs, args.movies)
    app = create_server(Settings(port=0, data_dir=Path(args.data_dir)))
    c = Client(f"127.0.0.1:{app.port}", timeout=3600)
    if "mixed" not in {x.name for x in c.list_collections()}:
        t = time.perf_counter()
        acks = list(c.ingest("mixed", items))
        print(f"ingested {sum(a.ok for a in acks)}/{len(acks)} items in {time.perf_counter() - t:.0f} s", flush=True)
    counts: dict[str, int] = {}
    for g, *_ in queries:
        counts[g] = counts.get(g, 0) + 1
    print("queries:", counts, flush=True)

    def search(**kw):  # type: ignore[no-untyped-def]
        def ranked(text: str) -> list[str]:
            # every passage/page, then one entry per document (per page for the PDFs)
            keys = [key(r) for r in c.search("mixed", text, top_k=40, all_passages=True, **kw).results]
            return list(dict.fromkeys(keys))[:10]

        return ranked

    rows = [
        run(c, queries, name, search(ranking=search_pb2.RankingOptions(fusion=f))) for name, f in STRATEGIES.items()
    ]
    rows.append(run(c, queries, "text passages only", search(modalities=["text"])))
    rows.append(run(c, queries, "pages only", search(modalities=["page"])))

    def concat(text: str) -> list[str]:
        t = search(modalities=["text"])(text)
        p = search(modalities=["page"])(text)
        return (t[:5] + p[:5] + t[5:] + p[5:])[:10]

    rows.append(run(c, queries, "concatenation (top 5 text + top 5 pages)", concat))
    app.stop(None)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"queries": counts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
