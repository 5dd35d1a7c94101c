"""`mmsearch eval` through a real server: metrics on a small BEIR slice, and clear errors."""

import json
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.client.cli import main
from mmsearch.client.evaluate import EvalError, load_beir, load_pages, run_configs
from mmsearch.client.files import Rejected
from mmsearch.client.metrics import mrr_at, ndcg_at, paired_bootstrap, recall_at
from mmsearch.v1 import search_pb2

from .documents import ANIMALS


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


def test_negative_grades_count_as_not_relevant() -> None:
    """pytrec_eval's reading of a negative grade: no gain, not relevant (as 0 or unjudged)."""
    rel = {"a": 2, "b": -1, "c": 1}
    ranked = ["b", "a", "x", "c"]
    # DCG = 0 + 2/log2(3) + 0 + 1/log2(5) = 1.26186 + 0.43068; IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093
    assert ndcg_at(ranked, rel, 10) == pytest.approx(1.69254 / 2.63093, abs=1e-5)
    assert ndcg_at(ranked, rel, 10) == ndcg_at(["z", "a", "x", "c"], rel, 10)  # b is worth what an unjudged id is
    assert ndcg_at(["b"], rel, 10) == 0.0
    assert recall_at(ranked, rel, 100) == 1.0 and recall_at(ranked, rel, 2) == 0.5  # b is not among the relevant
    assert mrr_at(ranked, rel, 10) == 0.5 and mrr_at(["b", "x"], rel, 10) == 0.0
    assert ndcg_at(ranked, {"b": -1}, 10) == recall_at(ranked, {"b": -1}, 10) == 0.0  # nothing relevant


def test_paired_bootstrap() -> None:
    base = [0.2, 0.5, 0.9, 0.0]
    better = [x + 0.1 for x in base]
    c = paired_bootstrap(better, base, rounds=500)
    assert c["difference"] == pytest.approx(0.1) and c["ci95_low"] == pytest.approx(0.1) == c["ci95_high"]
    assert (c["queries_better"], c["queries_worse"]) == (4, 0)
    mixed = paired_bootstrap([1.0, 0.0, 0.5, 0.5], base, rounds=2000)
    assert mixed["ci95_low"] < mixed["difference"] < mixed["ci95_high"] and mixed["queries_worse"] == 2
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [])


def test_run_configs_combine_options() -> None:
    configs = run_configs(["weighted_zscore", "maxsim"], [(1, 0.3, 1), (0, 0, 1)], [100, 200], True)
    names = [c.name for c in configs]
    assert names == [
        "weighted_zscore, weights 1/0.3/1, prefetch 100",
        "weighted_zscore, weights 1/0.3/1, prefetch 200",
        "weighted_zscore, weights 0/0/1, prefetch 100",
        "weighted_zscore, weights 0/0/1, prefetch 200",
        "maxsim, prefetch 100",  # MaxSim fusion reads no weights: once per prefetch_k
        "maxsim, prefetch 200",
        "text passages only",
        "pages only",
        "concatenation: top 5 text + top 5 pages",
    ]
    r = configs[2].ranking
    assert r is not None and r.fusion == search_pb2.FUSION_STRATEGY_WEIGHTED_ZSCORE and r.prefetch_k == 100
    assert (r.dense_weight, r.maxsim_weight, r.lexical_weight) == (0, 0, 1) and r.HasField("dense_weight")
    assert not configs[4].ranking.HasField("dense_weight")  # type: ignore[union-attr]
    (default,) = run_configs()
    assert default.name == "server defaults" and default.ranking == search_pb2.RankingOptions()
    assert configs[-1].concatenate and configs[-2].modalities == ("page",)
    assert len(run_configs(weights=[(1, 0.3, 1), (1, 0, 1), (1, 0.3, 1)])) == 2  # a repeated setting runs once


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


def test_eval_compares_configurations(
    fake_client: Client, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _beir(tmp_path / "mini", shared_data, n_queries=8)
    out = tmp_path / "report.json"
    args = ["eval", "beir", str(root), "--server", fake_client.address, "--max-queries", "6", "--out", str(out)]
    args += ["--fusion", "weighted_zscore,rrf", "--weights", "1,0:0.5,1", "--prefetch-k", "50"]
    assert main([*args, "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["config"] for x in lines] == [
        "weighted_zscore, weights 1/0/1, prefetch 50",
        "weighted_zscore, weights 1/0.5/1, prefetch 50",
        "rrf, weights 1/0/1, prefetch 50",
        "rrf, weights 1/0.5/1, prefetch 50",
    ]
    assert all(x["queries"] == 6 and 0 < x["ndcg@10"] <= 1 and x["p50_ms"] > 0 for x in lines)
    report = json.loads(out.read_text())
    assert report["queries"] == 6 and [r["config"] for r in report["results"]] == [x["config"] for x in lines]
    per_query = [r["per_query_ndcg@10"] for r in report["results"]]
    assert all(len(p) == 6 for p in per_query)
    # the mean of the per-query values is the reported nDCG@10
    assert sum(per_query[2].values()) / 6 == pytest.approx(lines[2]["ndcg@10"], abs=1e-4)
    c = report["comparison"]
    assert c["baseline"] == lines[0]["config"] and c["best"] in [x["config"] for x in lines[1:]]
    best = next(x for x in lines if x["config"] == c["best"])
    assert c["difference"] == pytest.approx(best["ndcg@10"] - lines[0]["ndcg@10"], abs=2e-4)
    # the text report: a table with one row per configuration, and the comparison
    assert main(args[:-2]) == 0
    text = capsys.readouterr().out
    assert text.count("| weighted_zscore, weights") == 2 and "best vs baseline" in text
    with pytest.raises(SystemExit, match="bad --weights '1,2'"):
        main(["eval", "beir", str(root), "--weights", "1,2"])
    with pytest.raises(SystemExit, match="bad --fusion 'rrf,nope'"):
        main(["eval", "beir", str(root), "--fusion", "rrf,nope"])


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


def _mixed(root: Path, shared_data: Path) -> Path:
    """Texts and a three-page PDF in one folder; the PDF is judged page by page ("paper#<page>")."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(shared_data / "pdf_documents" / "attention.pdf"))
    pdf = pdfium.PdfDocument.new()
    pdf.import_pages(src, [3, 4, 7])  # attention, multi-head attention, the BLEU results table
    root.mkdir()
    pdf.save(str(root / "paper.pdf"))
    corpus = [{"_id": k, "text": t} for k, (t, _) in ANIMALS.items()] + [{"_id": "paper", "pdf": "paper.pdf"}]
    queries = [
        {"_id": "q-owls", "text": "owls hunt mice at night", "group": "text"},
        {"_id": "q-trout", "text": "trout swim upstream in cold rivers", "group": "text"},
        {"_id": "q-bleu", "text": "BLEU scores and training cost of translation models", "group": "pdf"},
    ]
    qrels = [("q-owls", "owls", 1), ("q-owls", "cats", -1), ("q-trout", "trout", 1), ("q-bleu", "paper#3", 1)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels.tsv").write_text("".join(f"{q}\t{d}\t{g}\n" for q, d, g in qrels))
    return root


def test_eval_mixed_collection_by_page_and_modality(
    fake_client: Client, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _mixed(tmp_path / "mixed", shared_data)
    es = load_pages(root)
    assert es.by_page == {"paper"} and es.groups == {"q-owls": "text", "q-trout": "text", "q-bleu": "pdf"}
    assert es.qrels["q-owls"] == {"owls": 1}  # the negative judgement is "not relevant"
    args = ["eval", "pages", str(root), "--server", fake_client.address, "--modality-baselines", "--json"]
    assert main(args) == 0
    rows = {r["config"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert fake_client.get_collection("eval-mixed").document_count == 5
    both, text, pages = rows["server defaults"], rows["text passages only"], rows["pages only"]
    # one list over texts and pages: every judged text and the judged page (not just "paper") is found
    assert both["recall@100"] == 1.0 and both["groups"]["pdf"]["ndcg@10"] > 0 and both["groups"]["text"]["ndcg@10"] > 0
    assert text["groups"]["pdf"]["ndcg@10"] == 0.0 and text["groups"]["text"]["ndcg@10"] > 0
    # recall@5 per group: texts-only finds no page in its top 5, the fused list finds both texts
    assert text["groups"]["pdf"]["recall@5"] == 0.0 and both["groups"]["text"]["recall@5"] == 1.0
    assert pages["groups"]["text"]["ndcg@10"] == 0.0 and pages["groups"]["pdf"]["ndcg@10"] > 0
    concat = rows["concatenation: top 5 text + top 5 pages"]
    assert concat["recall@100"] == 1.0 and concat["groups"]["pdf"]["queries"] == 1


def test_mixed_set_folder_loads(tmp_path: Path, shared_data: Path) -> None:
    """benchmarks/mixed_set.py writes a page folder `mmsearch eval pages` reads: texts, scans, PDFs
    judged per page, and a group per query."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "mixed_set.py"
    out = tmp_path / "mixed"
    sizes = ["--receipts", "3", "--forms", "2", "--sci-queries", "2", "--sci-docs", "10", "--movies", "5"]
    subprocess.run([sys.executable, str(script), "--out", str(out), "--data", str(shared_data), *sizes], check=True)
    es = load_pages(out)
    pdfs = {"attention", "multi-column", "fr_olap", "reliance", "layout-parser", "ocr-letter"}
    assert len(es.corpus_ids) == 3 + 2 + 10 + 5 + 6 and es.by_page == pdfs
    groups = [es.groups[q] for q in es.qrels]
    kinds = {g: groups.count(g) for g in ("pdf-figure", "pdf-table", "pdf-section")}
    assert sum(kinds.values()) >= 60 and min(kinds.values()) >= 10, kinds
    assert groups.count("scifact") == 2 and {"receipt", "form"} <= set(groups)
    assert es.qrels[next(q for q in es.qrels if es.groups[q].startswith("pdf"))] == {"attention#8": 1}
    items = list(es.items())
    assert not [i for i in items if isinstance(i, Rejected)]
    kinds = {i.WhichOneof("content") for i in items}  # type: ignore[union-attr]
    assert kinds == {"text", "image", "pdf"}
