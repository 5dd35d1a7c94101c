"""Re-encoding a collection with another text model (server/reindex.py): searches keep the old vectors
until the switch, then the new model's; writes made during it survive; a failure or a stop midway
leaves the old collection serving; bad requests get clear codes. Fake encoders (fake-32 -> fake-48)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.cli import main as cli
from mmsearch.client.commands_reindex import reindex_status, start_reindex, wait_reindex
from mmsearch.encoders.fake import create as fake_encoder
from mmsearch.server import reencode
from mmsearch.server.app import App, create_server
from mmsearch.server.storage.base import Where

from .conftest import fake_settings
from .documents import ANIMAL_QUERIES, ANIMALS, text_item
from .documents import ranked as _results
from .qdrant_standins import memory_store

NEW = "fake-48"


def _app(tmp: Path, remote: bool = False) -> App:
    return create_server(fake_settings(tmp, allowed_models=[NEW]), store=memory_store() if remote else None)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = _app(tmp_path)
    yield a
    a.stop(grace=None)


@pytest.fixture
def client(app: App) -> Iterator[Client]:
    with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
        c.create_collection("c", max_words=10, overlap_words=2)
        assert all(a.ok for a in c.ingest("c", [text_item(k, v, m) for k, (v, m) in ANIMALS.items()]))
        yield c


def _dims(app: App) -> set[int]:
    return {len(h.dense) for hits in app.store.scan("c", Where(), ["doc_id"], space="text") for h in hits}  # type: ignore[arg-type]


class Gate:
    """Wraps reencode.reencode: holds the copy at its first batch until released; fails at batch `fail_at`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int = 0) -> None:
        self.entered, self.go, self.calls, self.fail_at = threading.Event(), threading.Event(), 0, fail_at
        real = reencode.reencode

        def wrapped(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.fail_at and self.calls >= self.fail_at:
                raise RuntimeError("injected failure")
            self.entered.set()
            assert self.go.wait(30)
            return real(*args, **kw)

        monkeypatch.setattr(reencode, "reencode", wrapped)


def test_reindex_serves_old_vectors_until_the_switch_and_keeps_writes(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _results(client)
    gate = Gate(monkeypatch)
    started = start_reindex(client, "c", NEW)
    assert (started.state, started.old_model, started.new_model) == ("copying", "fake-32", NEW)
    assert gate.entered.wait(20)
    # mid-copy: the old vectors answer, the collection reports its old model, and it takes writes
    assert _results(client) == before
    assert client.get_collection("c").config.text_encoder.model == "fake-32"
    assert _dims(app) == {32}
    assert all(a.ok for a in client.ingest("c", [text_item("bats", "Bats hang in caves and eat moths at dusk.")]))
    assert client.delete("c", ids=["cats"]) > 0
    with pytest.raises(MMSearchError) as busy:
        start_reindex(client, "c", NEW)
    assert busy.value.code == grpc.StatusCode.FAILED_PRECONDITION
    gate.go.set()
    done = wait_reindex(client, "c", every_s=0.05, progress=False)
    assert done.state == "done", done.error
    assert done.points_done >= len(ANIMALS)

    info = client.get_collection("c")
    assert info.config.text_encoder.model == NEW
    assert info.document_count == len(ANIMALS)  # + bats - cats
    assert _dims(app) == {48}
    # a query embedded by the new model finds each item by its own text, densely
    encoder = fake_encoder(NEW, "cpu")
    for doc, (text, _) in ANIMALS.items():
        if doc == "cats":
            continue
        query = encoder.encode_texts([text], as_query=True)[0].pooled
        top = app.store.dense_search("c", "text", query, 1, Where())
        assert app.store.retrieve("c", list(top))[0].payload["doc_id"] == doc
    found = client.search("c", "caves moths dusk", top_k=3).results
    assert found[0].document_id == "bats"
    assert "cats" not in {r.document_id for q in ANIMAL_QUERIES for r in client.search("c", q, top_k=10).results}
    assert all(a.ok for a in client.ingest("c", [text_item("newts", "Newts live in ponds.")]))  # writes go on
    assert _dims(app) == {48}
    assert not (app_data(app) / "reindex" / "c").exists()


def app_data(app: App) -> Path:
    return Path(app.store.root).parent  # type: ignore[attr-defined]


def test_failure_midway_leaves_the_old_collection_serving(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _results(client)
    gate = Gate(monkeypatch, fail_at=1)
    gate.go.set()
    start_reindex(client, "c", NEW)
    status = wait_reindex(client, "c", every_s=0.05, progress=False)
    assert status.state == "failed" and "injected failure" in status.error
    assert client.get_collection("c").config.text_encoder.model == "fake-32"
    assert _results(client) == before and _dims(app) == {32}
    assert not (app_data(app) / "reindex" / "c").exists()
    monkeypatch.undo()  # and it can be run again
    start_reindex(client, "c", NEW)
    assert wait_reindex(client, "c", every_s=0.05, progress=False).state == "done"


def test_bad_requests_get_clear_codes(client: Client) -> None:
    cases = [
        ("nope", NEW, grpc.StatusCode.NOT_FOUND),
        ("c", "fake-64", grpc.StatusCode.PERMISSION_DENIED),  # not in allowed_models
        ("c", "fake-32", grpc.StatusCode.INVALID_ARGUMENT),  # the model it already uses
        ("c", "", grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for collection, model, code in cases:
        with pytest.raises(MMSearchError) as err:
            start_reindex(client, collection, model)
        assert err.value.code == code, (collection, model, err.value)
    assert reindex_status(client, "c").state == "none"
    with pytest.raises(MMSearchError) as err:
        reindex_status(client, "nope")
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_remote_storage_answers_unimplemented(tmp_path: Path) -> None:
    app = _app(tmp_path, remote=True)
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            c.create_collection("c")
            with pytest.raises(MMSearchError) as err:
                start_reindex(c, "c", NEW)
            assert err.value.code == grpc.StatusCode.UNIMPLEMENTED
    finally:
        app.stop(grace=None)


def test_cli_reindex(app: App, client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--server", f"127.0.0.1:{app.port}"]
    assert cli(["reindex", "-c", "c", "--status", "--no-wait", *server]) == 0
    assert "c: no reindex has run" in capsys.readouterr().err
    assert cli(["reindex", "-c", "c", "--text-model", NEW, *server, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["state"] == "done" and out["new_model"] == NEW
    assert cli(["reindex", "-c", "c", "--status", *server]) == 0  # how the last one ended
    assert f"re-encoded {out['points_done']} points with {NEW} (was fake-32)" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--text-model MODEL to start a reindex, or --status"):
        cli(["reindex", "-c", "c", *server])
    assert cli(["reindex", "-c", "c", "--text-model", "fake-64", "--server", f"127.0.0.1:{app.port}"]) == 2
    assert "not a model this server offers" in capsys.readouterr().err


def test_a_stop_during_the_copy_leaves_the_old_collection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What a kill -9 during the copy leaves (a shadow whose journal says copying) is deleted on start."""
    app = _app(tmp_path)
    with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
        c.create_collection("c", max_words=10, overlap_words=2)
        assert all(a.ok for a in c.ingest("c", [text_item(k, v) for k, (v, _) in ANIMALS.items()]))
        before = _results(c)
    app.stop(grace=None)
    shadow = tmp_path / "reindex" / "c"
    (shadow / "collections" / "c" / "shards" / "000001").mkdir(parents=True)
    (shadow / "reindex.json").write_text(json.dumps({"state": "copying", "new_model": NEW, "snapshot": ""}))
    with caplog.at_level(logging.WARNING, logger="mmsearch.reindex"):
        app = _app(tmp_path)
    try:
        assert "deleting an unfinished re-encode" in caplog.text
        assert not shadow.exists()
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            assert c.get_collection("c").config.text_encoder.model == "fake-32"
            assert _results(c) == before
    finally:
        app.stop(grace=None)


def test_a_stop_during_the_switch_is_finished_on_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop after the journal says switching (shadow complete, writes paused): the next start switches."""
    from mmsearch.server.storage.edge import EdgeStore

    app = _app(tmp_path)
    with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
        c.create_collection("c", max_words=10, overlap_words=2)
        assert all(a.ok for a in c.ingest("c", [text_item(k, v) for k, (v, _) in ANIMALS.items()]))

        def stopped(self: EdgeStore, name: str, snapshot: str) -> None:
            raise SystemError("stopped here")  # the process "dies" as the restore begins

        monkeypatch.setattr(EdgeStore, "restore_snapshot", stopped)
        start_reindex(c, "c", NEW)
        assert wait_reindex(c, "c", every_s=0.05, progress=False).state == "failed"
        assert c.get_collection("c").config.text_encoder.model == "fake-32"
    app.stop(grace=None)
    monkeypatch.undo()
    assert json.loads((tmp_path / "reindex" / "c" / "reindex.json").read_text())["state"] == "switching"
    with caplog.at_level(logging.INFO, logger="mmsearch.reindex"):
        app = _app(tmp_path)
    try:
        assert "finishing its switch" in caplog.text
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            info = c.get_collection("c")
            assert info.config.text_encoder.model == NEW and info.document_count == len(ANIMALS)
            assert c.search("c", "cold rivers", top_k=1).results[0].document_id == "trout"
        assert _dims(app) == {48}
        assert not (tmp_path / "reindex" / "c").exists()
        assert not list((tmp_path / "snapshots" / "c").glob("*"))
    finally:
        app.stop(grace=None)


def test_reindex_over_http(tmp_path: Path) -> None:
    import httpx

    from .conftest import free_port

    app = create_server(fake_settings(tmp_path, allowed_models=[NEW], http_port=free_port()))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            c.create_collection("c")
            assert all(a.ok for a in c.ingest("c", [text_item("trout", ANIMALS["trout"][0])]))
        assert app.http is not None
        with httpx.Client(base_url=f"http://127.0.0.1:{app.http.port}", timeout=30) as h:
            url = "/mmsearch.v1.CollectionService/"
            r = h.post(url + "StartReindex", json={"collection": "c", "textModel": NEW})
            assert r.status_code == 200 and r.json().get("state") == "copying", r.text
            for _ in range(200):
                state = h.post(url + "GetReindexStatus", json={"collection": "c"}).json()
                if state.get("state") not in ("copying", "switching"):
                    break
                time.sleep(0.05)
            assert state.get("state") == "done" and state["newModel"] == NEW, state
            r = h.post(url + "StartReindex", json={"collection": "c", "textModel": "fake-64"})
            assert r.status_code == 403, r.text
    finally:
        app.stop(grace=None)


def test_colpali_pages_keep_their_page_vectors_and_rows_columns(tmp_path: Path, tiny_colpali_dir: Path) -> None:
    """A ColPali collection (its pages live in the page space only; text items in the text space): the
    text space is re-encoded, the page space (pooled, patches and the rows/columns prefetch vectors
    its first stage searches) is kept exactly as stored."""
    from .pagegen import text_pdf
    from .test_pages import pdf_item
    from .tiny_colpali import build_tiny

    model = str(build_tiny("colpali", tiny_colpali_dir))
    app = create_server(fake_settings(tmp_path, allowed_models=[NEW, model]))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
            c.create_collection("c", page_kind="colpali", page_model=model)
            pdf = text_pdf([["quarterly report of sales"], ["invoice total due"], ["layout of the page"]])
            texts = [text_item(k, v, m) for k, (v, m) in list(ANIMALS.items())[:3]]
            assert all(a.ok for a in c.ingest("c", [pdf_item("doc", pdf), *texts]))

            def page_vectors() -> dict[str, tuple[Any, ...]]:
                pages = [h for hits in app.store.scan("c", Where(), ["modality"], space="page") for h in hits]
                pages = [h for h in pages if h.payload["modality"] == "page"]
                ids = [h.id for h in pages]
                dense = {h.id: h.dense for h in pages}
                out = {}
                for vector in ("tokens", "rowcol"):
                    for h in app.store.retrieve("c", ids, space="page", fields=["doc_id"], vector=vector):
                        out[(h.id, vector)] = h.tokens
                return {**out, **{(i, "dense"): v for i, v in dense.items()}}

            before = page_vectors()
            assert sum(1 for (_, v) in before if v == "rowcol") == 3 and all(x is not None for x in before.values())
            wanted = [r.document_id for r in c.search("c", "invoice total", top_k=3, modalities=["page"]).results]
            start_reindex(c, "c", NEW)
            wait_reindex(c, "c", every_s=0.2, progress=False)
            text = [h for hits in app.store.scan("c", Where(), ["space", "modality"], space="text") for h in hits]
            assert {len(h.dense) for h in text if h.payload.get("space", "text") == "text"} == {48}  # type: ignore[arg-type]
            after = page_vectors()
            assert after.keys() == before.keys()
            for key, v in before.items():
                assert (after[key] == v).all(), key
            got = [r.document_id for r in c.search("c", "invoice total", top_k=3, modalities=["page"]).results]
            assert got == wanted
    finally:
        app.stop(grace=None)


def test_a_collection_dropped_and_created_again_keeps_its_own_settings(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reindex running while its collection is dropped stops: it used to switch its copy of the
    dropped collection (old fields, chunking, the new model) over the one created again by that name."""
    gate = Gate(monkeypatch)
    start_reindex(client, "c", NEW)
    assert gate.entered.wait(20)
    client.delete_collection("c")
    client.create_collection("c", max_words=50, overlap_words=5, indexed_fields={"genre": "keyword"})
    assert all(a.ok for a in client.ingest("c", [text_item("bats", "Bats hang in caves.", {"genre": "x"})]))
    gate.go.set()
    ended = wait_reindex(client, "c", every_s=0.05, progress=False)
    assert ended.state == "failed" and "'c' was deleted, restored from a snapshot or created again" in ended.error
    info = client.get_collection("c")
    assert info.config.text_encoder.model == "fake-32" and info.config.chunking.max_words == 50
    assert [f.key for f in info.config.indexed_fields] == ["genre"]
    assert info.document_count == 1 and _dims(app) == {32}
    # and the name can be re-encoded again
    start_reindex(client, "c", NEW)
    assert wait_reindex(client, "c", every_s=0.05, progress=False).state == "done"


def test_a_failed_restore_leaves_the_run_and_a_drop_behind_its_back_stops_it(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    start_reindex(client, "c", NEW)
    assert gate.entered.wait(20)
    with pytest.raises(MMSearchError) as err:
        client.restore_snapshot("c", "20200101T000000000000Z")  # no such snapshot: nothing replaced
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    gate.go.set()
    assert wait_reindex(client, "c", every_s=0.05, progress=False).state == "done"
    # Dropped and created again without the reindexer knowing (the store itself): other settings stop it.
    gate = Gate(monkeypatch)
    start_reindex(client, "c", "fake-32")
    assert gate.entered.wait(20)
    app.store.drop_collection("c")
    client.create_collection("c", max_words=50, overlap_words=5)
    gate.go.set()
    assert wait_reindex(client, "c", every_s=0.05, progress=False).state == "failed"
    assert client.get_collection("c").config.chunking.max_words == 50
