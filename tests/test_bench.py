"""`mmsearch bench` against live servers (fake encoder: seconds): the report's numbers come from the
real runs, the exact brute-force MaxSim agrees with the server's, and bad input is named."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.client.bench.floors import ExactMaxSim
from mmsearch.client.bench.storage import render as render_storage
from mmsearch.client.bench.workload import WorkloadError, page_files, page_plan, passages
from mmsearch.client.cli import main
from mmsearch.server.app import App, create_server

from .conftest import fake_settings
from .qdrant_standins import memory_store

WORDS = [f"w{i}" for i in range(400)]


def _corpus(path: Path, docs: int = 40, words: int = 120) -> Path:
    rng = random.Random(3)
    with path.open("w") as fh:
        for i in range(docs):
            fh.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=words))}) + "\n")
    return path


def test_passages_are_distinct_windows_and_too_many_is_named() -> None:
    texts = [" ".join(f"t{d}-{i}" for i in range(100)) for d in range(10)]
    got = passages(texts, 200, 20)
    assert len(got) == 200 == len(set(got)) and all(len(p.split()) == 20 for p in got)
    with pytest.raises(WorkloadError, match=r"at most 810 distinct passages of 20 words; asked for 1,000"):
        passages(texts, 1000, 20)


def test_exact_maxsim_matches_numpy_with_ragged_lengths() -> None:
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, 16)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    docs = [unit(int(rng.integers(1, 30))).astype(np.float16) for _ in range(50)]
    q = unit(5)
    ref = np.array([(q @ d.astype(np.float32).T).max(axis=1).sum() for d in docs])
    exact = ExactMaxSim(list(docs), block=7)  # blocks of mixed lengths, padded
    ids, scores, ms = exact.search(q, 10)
    assert ids == [int(i) for i in np.argsort(-ref)[:10]]
    assert np.allclose(scores, np.sort(ref)[::-1][:10], atol=1e-4) and ms > 0


@pytest.fixture(params=["edge", "remote"])
def exact_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """Token vectors stored as they were before compression (float16, not pooled): the bench's exact
    brute-force MaxSim must then agree with the server's. With the compressed defaults it measures how
    far compression moves MaxSim, which is the point of the floor, not a fixed number."""
    settings = fake_settings(tmp_path, max_message_mb=8, text_token_storage="float16", text_token_pool_factor=1)
    app = create_server(settings, store=memory_store() if request.param == "remote" else None)
    yield app
    app.stop(grace=None)


def test_bench_reports_real_runs_and_exact_recall(exact_app: App, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    fake_app = exact_app
    corpus = _corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "report.json"
    server = f"127.0.0.1:{fake_app.port}"
    args = ["bench", "--server", server, "--corpus", str(corpus), "--passages", "300", "--words", "24"]
    args += ["--concurrency", "1,3", "--requests", "30", "--exact-queries", "15", "--prefetch", "5,1000"]
    assert main([*args, "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == report
    (r,) = report["passages"]
    assert r["passages"] == 300 and r["ingest"]["points"] == 300 and r["ingest"]["per_second"] > 0
    assert r["encoder_floor"]["per_second"] > 0 and r["encoder_floor"]["mean_tokens"] == pytest.approx(24, abs=1)
    levels = {lv["concurrency"]: lv for lv in r["search"]["levels"]}
    assert set(levels) == {1, 3}
    for lv in levels.values():
        assert lv["requests"] == 30 and 0 < lv["p50_ms"] <= lv["p95_ms"] <= lv["p99_ms"] and lv["throughput_qps"] > 0
    assert r["search"]["target"]["budget_ms"] == pytest.approx(1.3 * r["search"]["query_encode_p50_ms"] + 10)
    runs = {run["prefetch_k"]: run for run in r["two_stage"]["runs"]}
    # every passage is a candidate at prefetch 1000: two-stage MaxSim must equal the exact brute force
    assert runs[1000]["recall_at_10"] == 1.0 and runs[1000]["queries_fully_recalled"] == 15
    assert runs[5]["recall_at_10"] < 1.0  # ten results from at most 10 candidates: some must be missed
    ing = r["ingest"]
    assert 0 < ing["server_anonymous_bytes"] < ing["server_rss_bytes"] <= ing["server_peak_rss_bytes"]
    if fake_app.store.backend == "edge":
        assert ing["disk_bytes_per_item"] > 0
    with Client(server) as c:  # the bench collection is dropped afterwards (no --keep)
        assert [col.name for col in c.list_collections()] == []

    # --keep then --reuse: the second run finds the collection and does not re-measure ingest
    assert main([*args, "--keep", "--json"]) == 0
    capsys.readouterr()
    assert main([*args, "--keep", "--reuse", "--json"]) == 0
    reused = json.loads(capsys.readouterr().out)["passages"][0]
    assert reused["ingest"] is None and reused["two_stage"]["runs"][1]["recall_at_10"] == 1.0
    # reused without the exact comparison: neither the corpus floor nor the two-stage runs, search only
    assert main([*args, "--reuse", "--exact-queries", "0"]) == 0
    text = capsys.readouterr().out
    assert "ingest        not measured (collection reused)\n" in text and "recall@10" not in text
    assert "p50 at 1 client" in text


def test_bench_text_report_names_floors_and_target(fake_app: App, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "corpus.jsonl")
    args = ["bench", "--server", f"127.0.0.1:{fake_app.port}", "--corpus", str(corpus), "--passages", "100"]
    assert main([*args, "--words", "16", "--concurrency", "1", "--requests", "10", "--exact-queries", "5", "-q"]) == 0
    text = capsys.readouterr().out
    assert "raw encoder (floor)" in text and "query encoder alone (floor)" in text
    assert "<= 1.3 x" in text and "exact brute-force MaxSim" in text and "recall@10" in text


@pytest.mark.slow
def test_bench_reports_the_disk_of_kept_page_images(fake_app: App, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from .pagegen import text_page

    source = tmp_path / "scans"
    source.mkdir()
    for i in range(2):
        (source / f"scan{i}.png").write_bytes(text_page([f"INVOICE {i}", "TOTAL DUE 42"], size=(1200, 1600)))
    args = ["bench", "--server", f"127.0.0.1:{fake_app.port}", "--passages", "0", "--pages", "2", "--json"]
    queries = tmp_path / "q.txt"
    queries.write_text("invoice total due\n")
    args += ["--page-source", str(source), "--queries", str(queries), "--requests", "2", "--concurrency", "1"]
    assert main(args) == 0
    ing = json.loads(capsys.readouterr().out)["pages"][0]["ingest"]
    if fake_app.store.backend == "edge":  # a remote Qdrant keeps them where the server cannot measure
        assert 0 < ing["image_bytes_per_item"] < ing["disk_bytes_per_item"]
    else:
        assert ing["image_bytes_per_item"] == 0


def test_bench_pages(fake_app: App, tmp_path: Path, shared_data: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "pdfs"
    source.mkdir()
    (source / "attention.pdf").write_bytes((shared_data / "pdf_documents" / "attention.pdf").read_bytes())
    assert [(f.path.name, f.pages) for f in page_files(source)] == [("attention.pdf", 15)]
    assert [doc for doc, _ in page_plan(page_files(source), 20)] == ["pg0-attention", "pg1-attention"]
    queries = tmp_path / "q.txt"
    queries.write_text("scaled dot-product attention\nBLEU scores of translation models\n")
    args = ["bench", "--server", f"127.0.0.1:{fake_app.port}", "--passages", "0", "--pages", "20"]
    args += ["--page-source", str(source), "--queries", str(queries), "--concurrency", "2", "--requests", "10"]
    assert main([*args, "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["pages"]
    assert r["pages"] == 30 and r["ingest"]["points"] == 30  # two copies of the 15-page PDF
    assert r["encoder_floor"]["pages"] == 15 and r["ingest_over_encoder"] > 0
    assert r["search"]["levels"][0]["requests"] == 10
    # pages only, queries from a BEIR folder's queries.jsonl (no passage sizes, so no passages are cut)
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "multi-head attention layers"}) + "\n")
    args = ["bench", "--server", f"127.0.0.1:{fake_app.port}", "--passages", "0", "--pages", "15"]
    args += ["--page-source", str(source), "--corpus", str(beir), "--concurrency", "1", "--requests", "4"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pages"][0]["search"]["levels"][0]["requests"] == 4


def test_bench_pages_with_and_without_ocr(tmp_path: Path, tiny_colpali_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--page-ocr auto,never: the same pages ingested once per OCR mode into a ColPali collection, so
    one report shows pages/s with and without OCR, each beside its own floor (OCR + text model; the page
    model alone)."""
    from mmsearch.client.bench.report import render

    from .pagegen import text_page
    from .tiny_colpali import build_tiny

    model = str(build_tiny("colpali", tiny_colpali_dir))
    source = tmp_path / "scans"
    source.mkdir()
    for i in range(2):
        (source / f"scan{i}.png").write_bytes(text_page([f"INVOICE {i}", "TOTAL DUE 42"], size=(600, 800)))
    queries = tmp_path / "q.txt"
    queries.write_text("invoice total due\n")
    app = create_server(fake_settings(tmp_path / "data", max_message_mb=8, allowed_models=["*"], ocr_workers=0))
    try:
        # no --passages: a page benchmark alone (passages defaulted to 10000 and asked for --corpus)
        args = ["bench", "--server", f"127.0.0.1:{app.port}", "--pages", "2"]
        args += ["--page-source", str(source), "--queries", str(queries), "--requests", "2", "--concurrency", "1"]
        args += ["--page-ocr", "auto,never", "--page-model", f"colpali:{model}"]
        assert main([*args, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        auto, never = report["pages"]
        assert (auto["ocr"], never["ocr"]) == ("auto", "never")
        assert auto["collection"].endswith("-ocr-auto") and never["collection"].endswith("-ocr-never")
        for r in (auto, never):
            assert r["pages"] == r["ingest"]["points"] == 2 and r["ingest"]["per_second"] > 0
            assert r["page_encoder"] == f"colpali:{model}" and r["encoder_floor"]["pages"] == 2
        assert never["encoder_floor"]["of"] == f"colpali:{model}"  # the page model alone
        assert auto["encoder_floor"]["of"].startswith("text layer or rapidocr + ")  # OCR and the text model
        assert "2 pages, ingest by OCR mode: ocr auto " in render(report)
    finally:
        app.stop(grace=None)


def test_bench_long_pdf_memory(fake_app: App, tmp_path: Path, shared_data: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--pdf-pages: one PDF cycled from the source's PDFs to the asked length, ingested as one document,
    with the server's memory sampled while it is."""
    source = tmp_path / "pdfs"
    source.mkdir()
    (source / "reliance.pdf").write_bytes((shared_data / "pdf_documents" / "reliance.pdf").read_bytes())  # 3 pages
    (source / "scan.png").write_bytes(b"not read: images are not cut into the long PDF")
    server = f"127.0.0.1:{fake_app.port}"
    args = ["bench", "--server", server, "--passages", "0", "--pdf-pages", "4,7", "--page-source", str(source)]
    assert main([*args, "--json"]) == 2  # the image is not a readable page file: named before any work
    assert "scan.png: cannot be read as a page file" in capsys.readouterr().err
    (source / "scan.png").unlink()
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pages"] == [] and [r["pages"] for r in report["long_pdfs"]] == [4, 7]
    for r in report["long_pdfs"]:
        assert r["ingest"]["points"] == r["pages"] and r["ingest"]["per_second"] > 0
        assert 0 < r["server_rss_before_bytes"] <= r["server_rss_peak_bytes"]
        assert r["server_rss_growth_bytes"] == r["server_rss_peak_bytes"] - r["server_rss_before_bytes"]
        assert 0 < r["server_anonymous_peak_bytes"] <= r["server_rss_peak_bytes"]
    with Client(server) as c:  # dropped afterwards (no --keep)
        assert [col.name for col in c.list_collections()] == []
    assert main(args) == 0
    assert "one PDF of 7 pages, ingested as one document" in capsys.readouterr().out
    images = tmp_path / "images"
    images.mkdir()
    (images / "page.png").write_bytes((shared_data / "vidore_arxivqa_sample" / "images" / "0.png").read_bytes())
    assert main([*args[:-1], str(images)]) == 2
    assert f"--pdf-pages needs PDFs in {images}" in capsys.readouterr().err


def test_bench_bad_input_is_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "corpus.jsonl", docs=2, words=30)
    assert main(["bench", "--server", "127.0.0.1:1", "--corpus", str(corpus), "--passages", "10"]) == 2
    assert "cannot reach mmsearch at 127.0.0.1:1" in capsys.readouterr().err
    assert main(["bench", "--server", "127.0.0.1:1", "--corpus", str(tmp_path / "nope"), "--passages", "10"]) == 2
    assert f"corpus {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert main(["bench", "--corpus", str(corpus), "--passages", "10", "--pages", "5", "--page-source", "/nope"]) == 2
    assert "page source /nope does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--passages needs --corpus"):
        main(["bench", "--passages", "10"])
    with pytest.raises(SystemExit, match="--pages and --pdf-pages need --page-source"):
        main(["bench", "--passages", "0", "--pdf-pages", "10"])
    with pytest.raises(SystemExit, match="--page-ocr never needs --page-model"):
        main(["bench", "--passages", "0", "--pages", "2", "--page-source", str(tmp_path), "--page-ocr", "auto,never"])
    with pytest.raises(SystemExit, match="'sometimes' is not one of auto, always, never"):
        main(["bench", "--passages", "0", "--pages", "2", "--page-source", str(tmp_path), "--page-ocr", "sometimes"])
    with pytest.raises(SystemExit, match="bad --concurrency '1,x'"):
        main(["bench", "--corpus", str(corpus), "--concurrency", "1,x"])


@pytest.fixture(params=["edge", "remote"])
def bench_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """The fake encoder the storage-only bench asks for must be a model the operator allows (docs/security.md)."""
    settings = fake_settings(tmp_path / "data", max_message_mb=8, allowed_models=["fake-48"])
    app = create_server(settings, store=memory_store() if request.param == "remote" else None)
    yield app
    app.stop(grace=None)


def test_storage_only_mode_probes_and_recalls_against_exact_dense(bench_app: App, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The fake encoder on the server, the encoder out of the measurement: the exact dense floor computed
    in the bench agrees with the server's vectors (an unindexed collection is searched exactly, so recall
    is 1.0 only if both built the same pooled vectors), and the probes ran. Each --hnsw-ef gets its
    recall rows (the ranked one against the server's exact first stage), and --reuse measures a kept
    collection again without ingesting it. --warmup searches come first and are reported apart."""
    fake_app = bench_app
    corpus = _corpus(tmp_path / "corpus.jsonl", docs=60)
    out = tmp_path / "storage.json"
    args = ["bench", "--server", f"127.0.0.1:{fake_app.port}", "--corpus", str(corpus), "--storage-only"]
    args += ["--dim", "48", "--passages", "250", "--words", "16", "--concurrency", "1", "--requests", "10"]
    args += ["--exact-queries", "8", "--json", "--out", str(out), "--hnsw-ef", "0,32"]
    assert main([*args, "--keep", "--warmup", "0"]) == 0
    again = json.loads(out.read_text())["storage_only"][0]
    assert "warmup" not in again
    assert again["ingest"]["points"] == 250 and [row["hnsw_ef"] for row in again["recall_by_ef"]] == [0, 32]
    assert all(row["ranked_recall_at_10"] == 1.0 and row["dense_recall_at_10"] == 1.0 for row in again["recall_by_ef"])
    assert main([*args, "--reuse", "--warmup", "5"]) == 0  # measured again as it is, then dropped (no --keep)
    report = json.loads(out.read_text())
    assert report["passages"] == [] and len(report["storage_only"]) == 1
    r = report["storage_only"][0]
    assert r["passages"] == 250 and r["encoder"] == "fake-48" and r["reused"] and "ingest" not in r
    assert r["dense_recall_at_10"] == 1.0 and r["recall_queries"] == 8
    assert r["warmup"]["requests"] == 5 and r["warmup"]["retrieve_rerank_p99_ms"] > 0
    assert any(line.startswith("  first searches 5 after the build/start") for line in render_storage(r))
    assert r["search"]["levels"][0]["requests"] == 10 and r["search"]["levels"][0]["retrieve_rerank_p50_ms"] > 0
    assert again["during_ingest"]["errors"] == 0 and r["during_index"]["errors"] == 0
    with Client(f"127.0.0.1:{fake_app.port}") as c:  # not kept without --keep
        assert r["collection"] not in {col.name for col in c.list_collections()}


def test_storage_only_rejects_a_bad_dimension(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl")
    with pytest.raises(SystemExit, match="--dim must be between 8 and 4096"):
        main(["bench", "--server", "127.0.0.1:1", "--corpus", str(corpus), "--storage-only", "--dim", "3"])


def test_the_floor_of_ocr_always_reads_every_page(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    """`ocr: always` OCRs pages that have a text layer: its floor did not, and so read 12x faster."""
    from mmsearch.client.bench.floors import encode_pages
    from mmsearch.encoders.registry import create
    from mmsearch.server.ingest import ocr as ocr_module

    from .test_ocr_mode import _Stamp

    monkeypatch.setattr(ocr_module, "ENGINES", {"stamp": _Stamp})
    monkeypatch.setattr(ocr_module, "_LOADED", {})
    encoder = create("fake", "fake-32")
    pdf = shared_data / "pdf_documents" / "attention.pdf"  # every page has a text layer
    _Stamp.pages = 0
    assert encode_pages(encoder, [pdf], 3, "stamp").pages == 3 and _Stamp.pages == 0
    assert encode_pages(encoder, [pdf], 3, "stamp", ocr_always=True).pages == 3 and _Stamp.pages == 3


def test_bench_and_soak_send_the_key(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """bench took --api-key and --tls* but opened its clients without them: UNAUTHENTICATED on a keyed server."""
    from mmsearch.server.security.keys import hash_key

    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\nid = "ops"\nsha256 = "{hash_key("s3cret")}"\nrole = "admin"\ncollections = ["*"]\n')
    app = create_server(fake_settings(tmp_path / "data", api_keys=keys))
    try:
        corpus = _corpus(tmp_path / "corpus.jsonl")
        args = ["bench", "--server", f"127.0.0.1:{app.port}", "--corpus", str(corpus), "--passages", "60"]
        args += ["--words", "16", "--concurrency", "2", "--requests", "4", "--exact-queries", "2", "--json"]
        assert main(args) == 2
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        assert main([*args, "--api-key", "s3cret"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["passages"][0]["search"]["levels"][0]["requests"] == 4
        soak = ["bench", "--soak", "--server", f"127.0.0.1:{app.port}", "--clients", "1", "--minutes", "0.01"]
        assert main([*soak, "--sample-s", "0.2", "--json", "--api-key", "s3cret"]) == 0
        by_kind = json.loads(capsys.readouterr().out)["by_kind"]
        codes = {code for kind in by_kind.values() for code in kind["codes"]}
        assert codes == {"OK"}, by_kind
    finally:
        app.stop(grace=None)
