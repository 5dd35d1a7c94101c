"""How much of each page question's vocabulary its relevant pages already contain: for every question of
page_questions.py (written after reading the pages) and page_questions_blind.py (written blind), the
share of its content words (lowercased, NFKC so "ﬁ" ligatures match, English and French stopwords
removed, a trailing "s" stripped) found among the words of its relevant pages. A set whose questions
reuse the pages' words is easy for BM25 and for a whole-page vector alike; a paraphrase set is not.

    python benchmarks/page_questions_overlap.py [--pages ../shared/data/pdf_documents/pages.jsonl]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_questions import PAGE_QUESTIONS, PDFS
from page_questions_blind import PAGE_QUESTIONS_BLIND

PAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdf_documents" / "pages.jsonl"

STOPWORDS = set(
    """a about above after again all also am an and any are as at be been being below between both but by can
    could did do does doing down during each few for from further had has have having he her here hers him his
    how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why will with would you
    your yours
    au aux avec ce ces cet cette dans de des du elle en est et il ils je la le les leur leurs lui ma mais me
    même mes moi mon ne nos notre nous on ou où par pas pour qu que quel quelle quelles quels qui sa sans se
    ses son sont sur ta te tes toi ton tu un une vos votre vous d l c s n y à été être""".split()
)


def words(text: str) -> set[str]:
    """Content words: lowercased NFKC word tokens, stopwords out, a trailing "s" stripped (words over 3 letters)."""
    out = set()
    for w in re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower()):
        if w in STOPWORDS:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def overlap(questions, texts: dict[tuple[str, int], str]) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    """(kind, share of the question's content words found in its relevant pages) per question."""
    rows = []
    for kind, question, doc, pages in questions:
        q = words(question)
        page_words = set().union(*(words(texts[PDFS[doc], p]) for p in pages))
        rows.append((kind, len(q & page_words) / len(q) if q else 0.0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=Path, default=PAGES, help="pages.jsonl of the PDFs: {file, page, text}")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()
    texts = {}
    for line in args.pages.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            texts[r["file"], r["page"]] = r["text"]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name, questions in (("written", PAGE_QUESTIONS), ("blind", PAGE_QUESTIONS_BLIND)):
        rows = overlap(questions, texts)
        groups = {"all": [v for _, v in rows]}
        for kind, v in rows:
            groups.setdefault(kind, []).append(v)
        summary[name] = {
            g: {"questions": len(v), "mean_overlap": round(statistics.fmean(v), 3)} for g, v in groups.items()
        }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{'set':<8} {'kind':<8} {'questions':>9} {'mean overlap':>12}")
    for name, groups in summary.items():
        for g, m in groups.items():
            print(f"{name:<8} {g:<8} {m['questions']:>9} {m['mean_overlap']:>12.3f}")


if __name__ == "__main__":
    main()
