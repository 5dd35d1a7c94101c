"""Zero-shot classification (Classify RPC, `mmsearch classify`): the right label on clear real inputs
with the bundled MiniLM (receipt texts, a receipt scan through OCR, plain sentences), scores in [0, 1] best first, the
threshold, and refusals of bad input on both storage backends."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.cli import main
from mmsearch.server.app import App
from mmsearch.server.classify import MAX_LABELS, score_labels

PAGE_LABELS = [
    ("receipt", "a shop receipt with items, prices and a total"),
    ("form", "a form with fields to fill in"),
    ("paper", "a page of a research paper"),
]


def _code(fn: object, *args: object, **kw: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(MMSearchError) as exc:
        fn(*args, **kw)  # type: ignore[operator]
    return exc.value.code, exc.value.details


def test_receipt_texts_are_receipts(minilm_client: Client, shared_data: Path) -> None:
    """Receipts (SROIE transcripts) against receipt / form / paper: MiniLM gets 99 of 100 right
    (benchmarks/results/classify.json; forms and paper pages it confuses, docs/classify.md)."""
    receipts = [json.loads(x)["ocr_text"] for x in (shared_data / "sroie_receipts" / "manifest.jsonl").open()][:4]
    for text in receipts:
        resp = minilm_client.classify(text, PAGE_LABELS)
        scores = [x.score for x in resp.labels]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        assert set(resp.labels[0].signals) == {"dense", "maxsim"}
        assert resp.labels[0].label == "receipt", (text[:80], resp.labels)


def test_clear_texts_and_threshold(minilm_client: Client) -> None:
    labels = ["comedy", "crime", "animation", "romance", "science fiction"]
    resp = minilm_client.classify("A detective hunts a serial killer through the rainy streets of the city.", labels)
    assert resp.labels[0].label == "crime"
    assert [x.label for x in resp.labels].count("crime") == 1 and len(resp.labels) == 5
    kept = minilm_client.classify("Two strangers fall in love during one summer in Paris.", labels, threshold=0.7)
    assert [x.label for x in kept.labels] == ["romance"]


def test_receipt_scan_through_ocr(minilm_client: Client, shared_data: Path) -> None:
    image = (shared_data / "sroie_receipts" / "images" / "000.jpg").read_bytes()
    resp = minilm_client.classify("", PAGE_LABELS, image=(image, "image/jpeg"))
    assert resp.labels[0].label == "receipt"
    assert "TOTAL" in resp.text.upper()  # the OCR text that was classified


def test_bad_input_is_refused(fake_client: Client) -> None:
    text = "a quiet village by the sea"
    code, details = _code(fake_client.classify, text, [])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no labels" in details
    code, details = _code(fake_client.classify, text, [f"label {i}" for i in range(1000)])
    assert (
        code == grpc.StatusCode.INVALID_ARGUMENT and f"1000 labels in one request; the limit is {MAX_LABELS}" in details
    )
    assert len(fake_client.classify(text, [f"label {i}" for i in range(MAX_LABELS)]).labels) == MAX_LABELS
    code, details = _code(fake_client.classify, "   ", ["a", "b"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "input is empty" in details
    code, details = _code(fake_client.classify, text, ["a", "a"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'a' is given twice" in details
    code, details = _code(fake_client.classify, text, ["a", ""])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "label 1 has no name" in details
    code, details = _code(fake_client.classify, text, ["a", "b"], threshold=1.5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "threshold" in details
    code, details = _code(fake_client.classify, text, ["a", "b"], collection="nope")
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = _code(fake_client.classify, "", ["a", "b"], image=(b"not an image", "image/png"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_collection_model_and_single_label(fake_client: Client) -> None:
    fake_client.create_collection("kb")
    resp = fake_client.classify("red apple pie", ["apple pie", "car engine"], collection="kb")
    assert resp.labels[0].label == "apple pie"  # the fake encoder: shared words
    assert resp.labels[0].score > 0.5 > resp.labels[1].score
    assert fake_client.classify("red apple pie", ["apple"]).labels[0].score == pytest.approx(0.5)


def test_cli_classify_json(fake_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    server = f"127.0.0.1:{fake_app.port}"
    argv = ["classify", "red apple pie", "--labels", "car engine,apple pie", "--label", "fruit=apple, pear", "--json"]
    assert main([*argv, "--server", server]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"][0]["label"] in ("apple pie", "fruit")
    assert set(out["labels"][0]) == {"label", "score"} and len(out["labels"]) == 3
    assert main(["classify", "x", "--labels", ",".join(f"l{i}" for i in range(1000)), "--server", server]) == 2
    assert "limit is 256" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "x", "--server", server])  # no labels


def test_rpc_scores_are_score_labels(fake_app: App, fake_client: Client) -> None:
    """benchmarks/classify_zero_shot.py scores with `score_labels` in-process: the RPC gives the same."""
    labels = [("fruit", "apple pie and pears"), ("car", "car engine"), ("sea", "boats at sea")]
    resp = fake_client.classify("red apple pie", labels)
    encoder = fake_app.encoders.get("fake", "fake-32")
    expected = score_labels(
        [n for n, _ in labels],
        encoder.encode_texts([d for _, d in labels], as_query=True),
        encoder.encode_texts(["red apple pie"], as_query=False)[0],
        {"dense": 1.0, "maxsim": 0.3},
    )
    assert [(x.label, round(x.score, 5)) for x in resp.labels] == [(x.label, round(x.score, 5)) for x in expected]
