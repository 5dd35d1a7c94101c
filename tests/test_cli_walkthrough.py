"""The operator walkthrough's CLI findings, in-process against the fake encoder's server: a mixed
any-of filter, duplicates counted in the ingest summary, a bad --duplicate-threshold refused once,
text documents asked for pages, the collection listing's settings, finetune's --pairs and --quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.client.cli import main, parse_filters
from mmsearch.server.app import App


def _server(app: App) -> list[str]:
    return ["--server", f"127.0.0.1:{app.port}"]


def _records(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_any_of_mixing_numbers_and_text_is_sent_as_text(
    fake_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """code=123|abc was [123, "abc"]: INVALID_ARGUMENT "any_of values must be all strings or all integers"."""
    assert parse_filters(["code=123|abc"]) == {"code": ["123", "abc"]}
    assert parse_filters(["n=1|2"]) == {"n": [1, 2]}
    # only whole numbers with words: decimals and true/false go as they are, for the server to refuse
    # by name (as text they would match nothing, silently)
    assert parse_filters(["price=1.5|2.5", "flag=true|false"]) == {"price": [1.5, 2.5], "flag": [True, False]}
    assert parse_filters(["code=123|7"]) == {"code": [123, 7]}
    assert parse_filters(["code=007|7"]) == {"code": ["007", "7"]}
    rows = [
        {"id": "n", "text": "owls hunt mice", "metadata": {"code": "123"}},
        {"id": "t", "text": "owls hunt voles", "metadata": {"code": "abc"}},
        {"id": "x", "text": "owls hunt rats", "metadata": {"code": "zzz"}},
    ]
    records = _records(tmp_path / "r.jsonl", rows)
    assert main(["ingest", str(records), "-c", "kb", "-q", *_server(fake_app)]) == 0
    capsys.readouterr()
    assert main(["search", "owls", "-c", "kb", "--filter", "code=123|abc", "--json", *_server(fake_app)]) == 0
    found = {r["document_id"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert found == {"n", "t"}


def test_the_ingest_summary_counts_duplicates(
    fake_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every item skipped read "ingested 3 documents (0 passages/pages) ...; 0 rejected"."""
    texts = ["owls hunt mice at night", "trout swim upstream in rivers", "geese cross the frozen lake"]
    first = _records(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": t} for i, t in enumerate(texts)])
    again = _records(tmp_path / "b.jsonl", [{"id": f"b{i}", "text": t} for i, t in enumerate(texts)])
    assert main(["ingest", str(first), "-c", "kb", "-q", *_server(fake_app)]) == 0
    assert "ingested 3 documents (3 passages/pages) into 'kb'; 0 rejected" in capsys.readouterr().out
    assert main(["ingest", str(again), "-c", "kb", "-q", "--on-duplicate", "skip", *_server(fake_app)]) == 0
    out = capsys.readouterr().out
    assert "ingested 0 documents (0 passages/pages) into 'kb'; 3 skipped as duplicates; 0 rejected" in out
    assert main(["ingest", str(again), "-c", "kb", "-q", "--on-duplicate", "replace", *_server(fake_app)]) == 0
    assert "ingested 3 documents (3 passages/pages) into 'kb'; 3 replaced as duplicates; 0 rejected" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("command", ["ingest x.txt -c kb", "create kb", "duplicates -c kb"])
@pytest.mark.parametrize("value", ["1.5", "-0.2", "nan", "high"])
def test_a_bad_duplicate_threshold_is_refused_before_sending(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server refused --duplicate-threshold 1.5 once per ingested item; now argparse refuses it (exit 2),
    before any connection (127.0.0.1:1 is never dialled)."""
    flag = "--threshold" if command.startswith("duplicates") else "--duplicate-threshold"
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), flag, value, "--server", "127.0.0.1:1"])
    assert exit_.value.code == 2
    assert f"argument {flag}:" in capsys.readouterr().err


def test_the_collection_listing_shows_the_fixed_settings(fake_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    """ALREADY_EXISTS says `mmsearch collections` shows chunking and compression; only --json did."""
    create = ["create", "kb", "--max-words", "50", "--overlap-words", "10", "--field", "year=integer"]
    assert main([*create, "--on-duplicate", "skip", *_server(fake_app)]) == 0
    assert main(["create", "plain", *_server(fake_app)]) == 0
    capsys.readouterr()
    assert main(["collections", *_server(fake_app)]) == 0
    listing = capsys.readouterr().out
    assert (
        "  chunks 50 words, overlap 10; tokens turbo4 pooled 1/4, dense float16 + int8 copy; fields year=integer; "
        "duplicates skip at 0.95\n" in listing
    ), listing
    plain = "  chunks 180 words, overlap 40; tokens turbo4 pooled 1/4, dense float16 + int8 copy; fields none; "
    assert plain + "duplicates keep\n" in listing, listing


def test_text_documents_asked_for_pages_get_one_line(
    fake_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain --out said "NOT_FOUND: document 'm006' has no page 1" under an explanation labelled p.0;
    `page m006` printed nothing and exited 0."""
    records = _records(tmp_path / "r.jsonl", [{"id": "m006", "text": "owls hunt mice at night"}])
    assert main(["ingest", str(records), "-c", "kb", "-q", *_server(fake_app)]) == 0
    capsys.readouterr()
    explain = ["explain", "owls", "-c", "kb", "-d", "m006", *_server(fake_app)]
    assert main(explain) == 0
    assert capsys.readouterr().out.startswith("m006 passage 1: ")
    with pytest.raises(SystemExit, match="'m006' is a text document: --out draws on pages only"):
        main([*explain, "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()
    capsys.readouterr()
    for page in ([], ["1"]):
        assert main(["page", "m006", *page, "-c", "kb", *_server(fake_app)]) == 1
        captured = capsys.readouterr()
        assert (
            captured.err == "error: 'm006' is a text document: it has no pages (pages are kept for images and PDFs)\n"
        )
        assert captured.out == ""
    assert main(["page", "nope", "1", "-c", "kb", *_server(fake_app)]) == 2
    assert "document 'nope' is not in collection 'kb'" in capsys.readouterr().err


def test_finetune_quiet_is_quiet_and_a_missing_pairs_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--quiet still printed transformers' "Loading weights" and "Writing model shards" bars; a missing
    --pairs file printed "error: [Errno 2] No such file or directory: '...'"."""
    import os
    import subprocess
    import sys

    from .tiny_models import build_tiny_sentence_model

    missing = tmp_path / "nope.jsonl"
    assert main(["finetune", "--pairs", str(missing), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert capsys.readouterr().err == f"error: cannot read --pairs {missing}: no such file or directory\n"
    assert main(["finetune", "--pairs", str(tmp_path), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read --pairs {tmp_path}: ")

    base = build_tiny_sentence_model(tmp_path / "models")
    rows = [{"query": f"q{i} owls", "positive": f"p{i} owls hunt mice"} for i in range(6)]
    pairs = _records(tmp_path / "pairs.jsonl", rows)
    argv = ["finetune", "--pairs", str(pairs), "--base", str(base), "--batch-size", "2", "--max-steps", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "mmsearch.client.cli", *argv]
    quiet = subprocess.run([*run, "--out", str(tmp_path / "q"), "-q"], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "Loading weights" not in quiet.stderr and "Writing model shards" not in quiet.stderr, quiet.stderr
    assert "saved " in quiet.stderr
    loud = subprocess.run([*run, "--out", str(tmp_path / "l")], capture_output=True, text=True, env=env)
    assert loud.returncode == 0 and "fine-tuning" in loud.stderr, loud.stderr
    assert "Loading weights" in loud.stderr  # the bars -q hides do print in such a run


def test_duplicates_number_passages_from_one_as_explain_does(
    fake_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: "passage 1" for passage 0. Deliberate: the CLI and the console show passages 1-based
    (the wire's seq is 0-based, as --json shows)."""
    rows = [{"id": d, "text": "owls hunt mice at night in the old barn"} for d in ("a", "b")]
    assert main(["ingest", str(_records(tmp_path / "r.jsonl", rows)), "-c", "kb", "-q", *_server(fake_app)]) == 0
    capsys.readouterr()
    assert main(["duplicates", "-c", "kb", *_server(fake_app)]) == 0
    assert "  a (passage 1): owls hunt" in capsys.readouterr().out
    assert main(["duplicates", "-c", "kb", "--json", *_server(fake_app)]) == 0
    assert json.loads(capsys.readouterr().out)["members"][0].get("seq", 0) == 0
    assert main(["explain", "owls", "-c", "kb", "-d", "a", *_server(fake_app)]) == 0
    assert capsys.readouterr().out.startswith("a passage 1: ")
