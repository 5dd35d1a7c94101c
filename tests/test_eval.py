"""`mmsearch eval` through a real server: metrics on a small BEIR slice, and clear errors."""

import json
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.client.cli import main
from mmsearch.client.evaluate import EvalError, load_beir, load_pages, mrr_at, ndcg_at, recall_at
from mmsearch.client.files import Rejected


def test_metrics_by_hand() -> None:
    rel = {"a": 1, "b": 1}
    assert ndcg_at(["a", "b", "c"], rel, 10) == pytest.approx(1.0)
    assert ndcg_at(["c", "a"], rel, 10) == pytest.approx((1 / 1.5849625) / (1 + 1 / 1.5849625))
    assert recall_at(["c", "a"], rel, 100) == 0.5 and mrr_at(["c", "a"], rel, 10) == 0.5
    assert mrr_at(["c"], rel, 10) == 0.0
    # graded: linear gains (trec_eval), cut at k; non-positive judgements count as not relevant
    graded = {"a": 2, "b": 1, "z": 0}
    assert ndcg_at(["b", "a"], graded, 10) == pytest.approx((1 + 2 / 1.5849625) / (2 + 1 / 1.5849625))
    assert ndcg_at(["x", "y", "c", "d", "e", "a"], graded, 5) == 0.0


def _beir(root: Path, shared_data: Path, n_queries: int = 15) -> Path:
    src = shared_data / "beir_scifact"
    lines = (src / "qrels" / "test.tsv").read_text().splitlines()
    qrels = [x.split("\t") for x in lines[1:]]
    keep_q = sorted({q for q, _, _ in qrels})[:n_queries]
    rows = [r for r in qrels if r[0] in keep_q]
    wanted = {d for _, d, _ in rows}
    docs = [json.loads(x) for x in (src / "corpus.jsonl").open()]
    corpus = [d for d in docs if d["_id"] in wanted] + [d for d in docs if d["_id"] not in wanted][:60]
    (root / "qrels").mkdir(parents=True)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join("\t".join(r) for r in rows))
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    queries = [json.loads(x) for x in (src / "queries.jsonl").open()]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries if q["_id"] in keep_q))
    return root


def test_eval_beir_through_the_server(
    fake_client: Client, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _beir(tmp_path / "scifact-mini", shared_data)
    addr = ["--server", fake_client.address]
    assert main(["eval", "beir", str(root), "--json", *addr]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 15 and report["collection"] == "eval-scifact-mini"
    # lexical overlap alone (fake encoder) finds SciFact's relevant abstracts often
    assert 0.3 < report["ndcg@10"] <= 1.0 and report["recall@100"] >= report["ndcg@10"] * 0.9
    assert 0.3 < report["ndcg@5"] <= 1.0
    corpus_size = len((root / "corpus.jsonl").read_text().splitlines())
    assert fake_client.get_collection("eval-scifact-mini").document_count == corpus_size
    # second run reuses the collection
    assert main(["eval", "beir", str(root), "--fusion", "rrf", "--json", *addr]) == 0
    assert "using collection" in capsys.readouterr().err


def test_eval_bad_folders(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(EvalError, match=r"is not a BEIR folder: missing corpus\.jsonl"):
        load_beir(tmp_path)
    root = _beir(tmp_path / "b", shared_data, n_queries=3)
    with (root / "qrels" / "test.tsv").open("a") as fh:
        fh.write("\nnope-query\t31715818\t1")
    with pytest.raises(EvalError, match=r"qrels name 1 query ids not in queries\.jsonl"):
        load_beir(root)
    root2 = _beir(tmp_path / "c", shared_data, n_queries=3)
    with (root2 / "qrels" / "test.tsv").open("a") as fh:
        fh.write("\n" + (root2 / "qrels" / "test.tsv").read_text().splitlines()[1].split("\t")[0] + "\tghost-doc\t1")
    with pytest.raises(EvalError, match=r"ids not in corpus\.jsonl"):
        load_beir(root2)
    root3 = _beir(tmp_path / "d", shared_data, n_queries=3)
    (root3 / "queries.jsonl").write_text("")
    with pytest.raises(EvalError, match=r"query ids not in queries\.jsonl|holds no queries"):
        load_beir(root3)


def test_eval_cli_reports_bad_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "beir", str(tmp_path), "--server", "127.0.0.1:1"]) == 2
    assert "is not a BEIR folder" in capsys.readouterr().err


def _pages(root: Path, shared_data: Path, images: tuple[int, ...] = (0, 1, 2)) -> Path:
    """The ViDoRe ArxivQA sample cut to a few figures: the two judged ones and a distractor."""
    src = shared_data / "vidore_arxivqa_sample"
    (root / "images").mkdir(parents=True)
    for i in images:
        (root / "images" / f"{i}.png").write_bytes((src / "images" / f"{i}.png").read_bytes())
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"corpus_id": i, "image_path": f"images/{i}.png"}) for i in images)
    )
    (root / "queries.jsonl").write_text((src / "queries.jsonl").read_text())
    (root / "qrels.tsv").write_text((src / "qrels.tsv").read_text())
    return root


def test_eval_pages_through_the_server(
    fake_client: Client, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _pages(tmp_path / "arxivqa", shared_data)
    assert main(["eval", "pages", str(root), "--json", "--server", fake_client.address]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 2 and report["collection"] == "eval-arxivqa"
    # all three figures were OCR'd and stored as pages; each query's judged figure is among the results
    col = fake_client.get_collection("eval-arxivqa")
    assert col.document_count == 3
    assert report["recall@100"] == 1.0
    # three pages, all returned: each judged page is in the top 3, so both metrics are positive
    assert 0.0 < report["ndcg@5"] <= 1.0 and 0.0 < report["mrr@10"] <= 1.0


def test_eval_pages_bad_input(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EvalError, match=r"is not a page-retrieval folder"):
        load_pages(tmp_path)
    root = _pages(tmp_path / "p", shared_data, images=(0, 2))  # image 1 is judged for q_1 but absent
    with pytest.raises(EvalError, match=r"ids not in corpus\.jsonl"):
        load_pages(root)
    # a corpus record whose file is missing is rejected by name, the rest still loads
    root2 = _pages(tmp_path / "p2", shared_data)
    (root2 / "images" / "2.png").unlink()
    es = load_pages(root2)
    rejected = [it for it in es.items() if isinstance(it, Rejected)]
    assert [r.source for r in rejected] == ["2"] and "2.png does not exist" in rejected[0].reason
