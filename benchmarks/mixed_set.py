"""Writes the mixed-collection evaluation folder of docs/ranking.md: movie overviews, SciFact abstracts,
receipt scans, form scans and six PDFs in ONE collection, with queries aimed at each modality. It only
prepares data (the queries and relevance judgements come from these data sets' own annotations, and
the PDF questions are written by hand in page_questions.py); `mmsearch eval pages FOLDER` measures it:

    uv run python benchmarks/mixed_set.py --out /tmp/mixed-set
    mmsearch eval pages /tmp/mixed-set --fusion weighted_zscore,calibrated_zscore,rrf,dbsf,maxsim \\
        --modality-baselines --out benchmarks/results/mixed.json

Relevance: receipts by company + date (every receipt matching both), forms by a field and its value
(FUNSD key-value pairs), SciFact by its qrels, movies by tagline -> that movie, PDF pages by the
questions of page_questions.py, grouped by what they ask about: pdf-figure, pdf-table, pdf-section
(qrels "<pdf id>#<page>": the PDFs are judged and ranked page by page). `--questions blind` asks the
questions of page_questions_blind.py instead (written without the pages open, docs/pages.md), and
`--questions both` asks both sets, the blind ones grouped as pdf-blind-figure, -table, -section. The corpus
names the files in ../shared/data by absolute path, so the folder is valid on this machine only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_questions import PAGE_QUESTIONS, PDFS
from page_questions_blind import PAGE_QUESTIONS_BLIND

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: --questions -> (group prefix, questions) asked.
QUESTION_SETS = {
    "written": [("pdf", PAGE_QUESTIONS)],
    "blind": [("pdf", PAGE_QUESTIONS_BLIND)],
    "both": [("pdf", PAGE_QUESTIONS), ("pdf-blind", PAGE_QUESTIONS_BLIND)],
}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def build(  # type: ignore[no-untyped-def]
    data: Path,
    n_receipts: int,
    n_forms: int,
    n_sci_queries: int,
    n_sci_docs: int,
    n_movies: int,
    questions: str = "written",
):
    """(corpus records, queries {"_id", "text", "group"}, qrels rows (query, corpus id, grade)); `questions`:
    which PDF question set to ask, "written" (page_questions.py), "blind" (page_questions_blind.py) or "both"."""
    if questions not in QUESTION_SETS:
        raise ValueError(f"questions must be one of {', '.join(QUESTION_SETS)}, not {questions!r}")
    corpus: list[dict] = []
    queries: list[tuple[str, str, dict[str, int]]] = []  # (group, text, relevant id -> grade)

    receipts = _lines(data / "sroie_receipts" / "manifest.jsonl")[:n_receipts]
    corpus += [{"_id": f"receipt-{m['id']}", "image_path": str(data / "sroie_receipts" / m["image"])} for m in receipts]
    for m in receipts:
        if m["company"] and m["date"]:
            rel = {f"receipt-{r['id']}": 1 for r in receipts if (r["company"], r["date"]) == (m["company"], m["date"])}
            queries.append(("receipt", f"receipt from {m['company'].lower()} on {m['date']}", rel))

    forms = sorted((data / "funsd_forms" / "testing_data" / "images").glob("*.png"))[:n_forms]
    corpus += [{"_id": f"form-{f.stem}", "image_path": str(f)} for f in forms]
    form_ids, seen = {f.stem for f in forms}, set()
    for kv in _lines(data / "funsd_forms" / "kv_pairs.jsonl"):
        if kv["doc_id"] in form_ids and kv["doc_id"] not in seen and 6 <= len(kv["answer"]) <= 60:
            seen.add(kv["doc_id"])
            text = f"form with {kv['question'].strip(': ').lower()} {kv['answer']}"
            queries.append(("form", text, {f"form-{kv['doc_id']}": 1}))

    sci = data / "beir_scifact"
    sci_qrels: dict[str, set[str]] = {}
    for line in (sci / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, _ = line.split("\t")
        sci_qrels.setdefault(q, set()).add(d)
    chosen = sorted(sci_qrels)[:n_sci_queries]
    wanted = set().union(*(sci_qrels[q] for q in chosen))
    docs = _lines(sci / "corpus.jsonl")
    keep = [d for d in docs if d["_id"] in wanted] + [d for d in docs if d["_id"] not in wanted]
    corpus += [{"_id": f"sci-{d['_id']}", "title": d["title"], "text": d["text"]} for d in keep[:n_sci_docs]]
    texts = {q["_id"]: q["text"] for q in _lines(sci / "queries.jsonl")}
    queries += [("scifact", texts[q], {f"sci-{d}": 1 for d in sorted(sci_qrels[q])}) for q in chosen]

    movies = json.loads((data / "together_movies" / "movies.json").read_text())[:n_movies]
    corpus += [{"_id": f"movie-{i}", "title": m["title"], "text": m["overview"]} for i, m in enumerate(movies)]
    queries += [("movie", m["tagline"], {f"movie-{i}": 1}) for i, m in enumerate(movies[:60]) if m.get("tagline")]

    corpus += [{"_id": pdf, "pdf": str(data / "pdf_documents" / name)} for pdf, name in PDFS.items()]
    for prefix, qs in QUESTION_SETS[questions]:
        queries += [(f"{prefix}-{kind}", text, {f"{doc}#{p}": 1 for p in pages}) for kind, text, doc, pages in qs]

    query_records = [{"_id": f"q{n}", "text": text, "group": group} for n, (group, text, _) in enumerate(queries)]
    qrels = [(f"q{n}", doc, grade) for n, (_, _, rel) in enumerate(queries) for doc, grade in rel.items()]
    return corpus, query_records, qrels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write (corpus.jsonl, queries.jsonl, qrels.tsv)")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--receipts", type=int, default=40)
    ap.add_argument("--forms", type=int, default=25)
    ap.add_argument("--sci-queries", type=int, default=50)
    ap.add_argument("--sci-docs", type=int, default=500)
    ap.add_argument("--movies", type=int, default=300)
    ap.add_argument(
        "--questions",
        choices=list(QUESTION_SETS),
        default="written",
        help="PDF questions: page_questions.py (written, the default), page_questions_blind.py (blind), or both",
    )
    args = ap.parse_args()
    corpus, queries, qrels = build(
        args.data, args.receipts, args.forms, args.sci_queries, args.sci_docs, args.movies, args.questions
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (args.out / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    rows = "".join(f"{q}\t{d}\t{g}\n" for q, d, g in qrels)
    (args.out / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    print(f"wrote {args.out}: {len(corpus)} documents, {len(queries)} queries")


if __name__ == "__main__":
    main()
