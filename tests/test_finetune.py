"""`mmsearch finetune`: a tiny pairs file, one training step on a tiny model (tests/tiny_models.py),
a model folder that the server loads as its text model; bad pairs are named by line and leave
nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.client.cli import main
from mmsearch.encoders.finetune import Pair, make_batches, parse_pairs, split_held_out
from mmsearch.server.app import create_server
from mmsearch.server.settings import Settings

from .documents import text_item
from .tiny_models import build_tiny_sentence_model

PAIRS = [
    {"query": "how do owls hunt", "positive": "Owls hunt mice at night with silent wings."},
    {"query": "where do trout swim", "positive": "Trout swim upstream in cold clear rivers."},
    {"query": "what do dogs do", "positive": "Dogs fetch sticks and bark at strangers.", "negative": "Cats purr."},
    {"query": "when do geese migrate", "positive": "Geese cross the frozen lake every autumn."},
    {"query": "what do cats chase", "positive": "Cats chase mice around the old barn."},
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sentence_model(tmp_path_factory.mktemp("models"))


def _write(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_finetune_writes_a_model_the_server_serves(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _write(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "tuned"
    argv = ["finetune", "--pairs", str(pairs), "--out", str(out), "--base", str(tiny_model)]
    assert main([*argv, "--batch-size", "2", "--max-steps", "1", "--held-out", "0.4", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 1 and report["train_pairs"] == 3 and report["held_out_pairs"] == 2
    assert report["hard_negatives"] == sum("negative" in p for p in PAIRS)
    assert set(report["held_out_after"]) == {"queries", "recall@1", "mrr@10"}
    assert (out / "modules.json").exists() and not list(tmp_path.glob(".tuned.partial-*"))
    # The weights changed, and the folder serves as the server's text model.
    app = create_server(Settings(port=0, data_dir=tmp_path / "data", text_model=str(out), workers=2))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
            c.create_collection("c")
            assert c.get_collection("c").spaces[0].encoder.model == str(out)
            assert all(a.ok for a in c.ingest("c", [text_item("o", PAIRS[0]["positive"])]))
            assert [r.document_id for r in c.search("c", "owls hunt").results] == ["o"]
    finally:
        app.stop(grace=None)
    # A used output folder is refused before any training.
    assert main([*argv, "-q"]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "q"}', "pairs.jsonl:2: missing field 'positive'"),
        ('{"query": "q", "positive": "  "}', "pairs.jsonl:2: field 'positive' must be non-empty text"),
        ('{"query": "q", "positive": "p", "negative": 3}', "pairs.jsonl:2: field 'negative' must be non-empty"),
        ('{"query": ', "pairs.jsonl:2: malformed JSON"),
        ('["q", "p"]', "pairs.jsonl:2: expected an object"),
    ],
)
def test_bad_pairs_are_named_by_line_and_nothing_is_written(
    line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = _write(tmp_path / "pairs.jsonl", [PAIRS[0], line])
    assert main(["finetune", "--pairs", str(pairs), "--out", str(tmp_path / "out"), "-q"]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_held_out_split_is_by_query_and_batches_never_repeat_a_text() -> None:
    pairs = parse_pairs(json.dumps(p) for p in PAIRS)
    pairs += [Pair(pairs[0].query, "another owl passage"), Pair("owl facts", pairs[0].positive)]
    train, held = split_held_out(pairs, 0.5)
    assert not {p.query for p in train} & {p.query for p in held} and len(train) + len(held) == len(pairs)
    import random

    batches = make_batches(pairs, 3, random.Random(0))
    assert sorted(map(id, (p for b in batches for p in b))) == sorted(map(id, pairs))
    for b in batches:
        texts = [t for p in b for t in {p.query, p.positive, p.negative or p.positive}]
        assert len(texts) == len(set(texts)) and len({p.negative is None for p in b}) == 1


def test_mined_negative_skips_rank_one_and_the_positives() -> None:
    from mmsearch.client.commands_finetune import mine_negatives

    pairs = [Pair("owls", "Owls hunt mice at night."), Pair("trout", "Trout swim.", "given negative")]
    hits = {"owls": ["Owls nest in barns.", "Owls hunt mice", "Cats purr at night.", "Dogs bark."]}
    mined = mine_negatives(pairs, lambda q: hits.get(q, []), log=lambda s: None)
    # rank 1 is skipped, rank 2 is a piece of the positive, so rank 3 is the negative
    assert mined[0].negative == "Cats purr at night." and mined[1].negative == "given negative"


def test_on_epoch_sees_each_epoch_but_the_last(tiny_model: Path, tmp_path: Path) -> None:
    """What benchmarks/finetune_scifact_epochs.py saves checkpoints with."""
    from mmsearch.encoders.finetune import finetune

    seen: list[tuple[int, bool]] = []
    pairs = parse_pairs([json.dumps(p) for p in PAIRS])
    report = finetune(
        pairs, tmp_path / "out", base=str(tiny_model), epochs=3, batch_size=4, held_out=0.0, progress=False,
        log=lambda s: None, on_epoch=lambda n, model: seen.append((n, model.training)),
    )  # fmt: skip
    assert seen == [(1, False), (2, False)]  # in eval mode while called
    assert report["steps"] == 6 and (tmp_path / "out" / "modules.json").exists()
