"""The real model path: bundled all-MiniLM-L6-v2 through the server."""

import json
from pathlib import Path

import pytest

from mmsearch.client import Client

from .documents import text_item

pytestmark = pytest.mark.slow


def _movies(shared_data: Path) -> tuple[list[dict], list[str]]:
    movies = json.loads((shared_data / "together_movies" / "movies.json").read_text())
    ref = json.loads((shared_data / "together_movies" / "reference_results.json").read_text())
    return movies, ref["queries"][0]["embedding_top25_titles"]


def test_rerank_seed_example_puts_batman_on_top(minilm_client: Client, shared_data: Path) -> None:
    _, titles = _movies(shared_data)
    assert len(titles) == 25
    r = minilm_client.rerank("super hero mystery action movie about bats", titles, top_n=5)
    top = [titles[x.index] for x in r.results]
    assert sum("Batman" in t for t in top) >= 4, top
    scores = [x.relevance_score for x in r.results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_search_movies_by_description(minilm_client: Client, shared_data: Path) -> None:
    movies, _ = _movies(shared_data)
    items = [
        text_item(str(i), f"{m['title']}. {m['overview']}", {"title": m["title"], "genres": m["genres"]})
        for i, m in enumerate(movies[:400])
    ]
    acks = list(minilm_client.ingest("movies", items))
    assert all(a.ok for a in acks)
    batman = {str(i) for i, m in enumerate(movies[:400]) if "Batman" in m["title"] or "Dark Knight" in m["title"]}
    assert len(batman) >= 3
    r = minilm_client.search("movies", "super hero mystery action movie about bats", top_k=10)
    found = [x.document_id for x in r.results]
    # MiniLM over whole overviews is weaker than over titles (the rerank test): ask for one on top.
    assert found[0] in batman, [movies[int(i)]["title"] for i in found]
    # exact names and rare words: lexical recall finds them even when the dense vector is vague
    title = movies[123]["title"]
    r = minilm_client.search("movies", title, top_k=3)
    assert r.results[0].metadata.fields["title"] == title
    # explanations name real word pieces
    r = minilm_client.search("movies", "batman gotham", top_k=1, explain=True)
    tokens = {(m.query_token, m.document_token) for m in r.results[0].explanation.matches}
    assert ("batman", "batman") in tokens or ("gotham", "gotham") in tokens


def test_scifact_sample_quality(minilm_client: Client, shared_data: Path) -> None:
    """Hybrid ranking beats dense alone on a SciFact slice (the full set: docs/benchmarks.md)."""
    from mmsearch.v1 import search_pb2

    root = shared_data / "beir_scifact"
    qrels: dict[str, set[str]] = {}
    for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, _ = line.split("\t")
        qrels.setdefault(q, set()).add(d)
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in (root / "queries.jsonl").open()}
    chosen = sorted(qrels)[:40]
    wanted = set().union(*(qrels[q] for q in chosen))
    docs = [json.loads(x) for x in (root / "corpus.jsonl").open()]
    keep = [d for d in docs if d["_id"] in wanted] + [d for d in docs if d["_id"] not in wanted][:260]
    items = [text_item(d["_id"], f"{d['title']}. {d['text']}") for d in keep]
    assert all(a.ok for a in minilm_client.ingest("sci", items))

    def mrr(ranking: search_pb2.RankingOptions | None) -> float:
        total = 0.0
        for q in chosen:
            r = minilm_client.search("sci", queries[q], top_k=10, ranking=ranking)
            ranks = [i for i, x in enumerate(r.results) if x.document_id in qrels[q]]
            total += 1 / (ranks[0] + 1) if ranks else 0.0
        return total / len(chosen)

    dense = mrr(search_pb2.RankingOptions(dense_weight=1, maxsim_weight=0, lexical_weight=0))
    hybrid = mrr(None)
    assert dense > 0.5, dense
    assert hybrid >= dense, (hybrid, dense)
