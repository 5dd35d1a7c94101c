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
