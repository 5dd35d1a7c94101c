"""Backup and restore: a snapshot taken through the API (and the CLI) brings back exactly the
collection it copied: the same search results after later writes, and after the collection was
deleted. Fake encoder, both backends (remote: portable snapshots, storage/portable.py)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.cli import main as cli
from mmsearch.server.app import App

from .documents import ANIMALS, text_item
from .documents import ranked as _results


def _ingest(client: Client, docs: dict[str, str]) -> None:
    assert all(a.ok for a in client.ingest("c", [text_item(k, v) for k, v in docs.items()]))


def test_restore_brings_back_identical_search_results(
    fake_app: App, fake_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_client.create_collection("c", max_words=10, overlap_words=2)
    _ingest(fake_client, {k: text for k, (text, _) in ANIMALS.items()})
    before = _results(fake_client)
    snap = fake_client.create_snapshot("c")
    assert snap.collection == "c" and snap.size_bytes > 0
    assert [s.name for s in fake_client.list_snapshots("c")] == [snap.name]

    _ingest(fake_client, {"owls": "owls moved to the city and eat pizza", "bats": "bats hunt mice at night too"})
    fake_client.delete("c", ids=["cats"])
    assert _results(fake_client) != before

    restored = fake_client.restore_snapshot("c", snap.name)
    assert restored.document_count == len(ANIMALS)
    assert _results(fake_client) == before
    _ingest(fake_client, {"bats": "bats hunt mice at night too"})  # the restored collection takes writes

    # through the CLI, after the collection was deleted
    addr = f"127.0.0.1:{fake_app.port}"
    assert cli(["snapshot", "create", "-c", "c", "--server", addr]) == 0
    second = capsys.readouterr().out.strip()
    fake_client.delete_collection("c")
    assert cli(["snapshot", "restore", second, "-c", "c", "--server", addr]) == 0
    assert "restored 'c'" in capsys.readouterr().out
    assert [r.document_id for r in fake_client.search("c", "bats hunt", top_k=1).results] == ["bats"]
    assert cli(["snapshot", "restore", snap.name, "-c", "c", "--server", addr]) == 0
    assert _results(fake_client) == before

    for name, code in [
        ("latest", grpc.StatusCode.INVALID_ARGUMENT),
        ("20200101T000000000000Z", grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(MMSearchError) as bad:
            fake_client.restore_snapshot("c", name)
        assert bad.value.code == code
    with pytest.raises(MMSearchError) as unknown:
        fake_client.create_snapshot("nope")
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("crash", ["before_swap", "after_swap"])
def test_a_restore_cut_short_by_a_crash_is_finished_or_undone_at_start(tmp_path: Path, crash: str) -> None:
    """restore_snapshot sets the live folder aside, renames the staged copy in, then deletes the aside
    copy. A kill between those steps leaves the folders as made here; the next start must neither lose
    the collection nor keep a stray copy."""
    import shutil

    from mmsearch.server.app import create_server

    from .conftest import fake_settings

    data = tmp_path / "data"
    app = create_server(fake_settings(data))
    with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
        c.create_collection("c", max_words=10, overlap_words=2)
        _ingest(c, {k: text for k, (text, _) in ANIMALS.items()})
        snap = c.create_snapshot("c")
        _ingest(c, {"herons": "herons stand still in cold rivers at night"})
        live = _results(c)
    app.stop(grace=None)

    collections, snapshots = data / "collections", data / "snapshots"
    (snapshots / ".replaced").mkdir(parents=True)
    (collections / "c").rename(snapshots / ".replaced" / "c")  # set aside: the live version
    staged = snapshots / ".staging" / "c"
    shutil.copytree(snapshots / "c" / snap.name, staged)
    if crash == "after_swap":
        staged.rename(collections / "c")  # the snapshot is in place; the aside copy was not yet deleted

    app = create_server(fake_settings(data))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
            count = c.get_collection("c").document_count
            if crash == "before_swap":
                assert count == len(ANIMALS) + 1 and _results(c) == live  # as before the restore began
            else:
                assert count == len(ANIMALS)  # the restore's result
            _ingest(c, {"bats": "bats hunt mice at night too"})
        assert not (snapshots / ".replaced" / "c").exists() and not (snapshots / ".staging").exists()
    finally:
        app.stop(grace=None)
