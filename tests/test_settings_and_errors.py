"""Settings sources and the error boundary."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.client.cli import parse_filters
from mmsearch.server.app import create_server
from mmsearch.server.settings import Settings
from mmsearch.server.storage.edge import EdgeStore

from .conftest import fake_settings
from .documents import text_item


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "mmsearch.toml"
    toml.write_text('port = 6000\nprefetch_k = 50\ntext_model = "from-file"\n')
    monkeypatch.setenv("MMSEARCH_PREFETCH_K", "70")
    s = Settings.load(config=toml, text_model="from-flag")
    assert (s.port, s.prefetch_k, s.text_model) == (6000, 70, "from-flag")
    monkeypatch.setenv("MMSEARCH_CONFIG", str(toml))
    assert Settings.load().port == 6000
    with pytest.raises(ValueError, match="port"):
        Settings.load(port=70000)
    with pytest.raises(ValueError, match="no_such_setting"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_serve_names_a_bad_setting_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmsearch.server.cli import main

    # A flag's bad value is argparse's (choices); a variable's or a TOML key's reached pydantic's traceback.
    monkeypatch.setenv("MMSEARCH_OCR_SCRIPT", "klingon")
    assert main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--ocr-script / MMSEARCH_OCR_SCRIPT / ocr_script = 'klingon'" in err and "'latin' or 'all'" in err
    assert "Traceback" not in err
    monkeypatch.delenv("MMSEARCH_OCR_SCRIPT")
    toml = tmp_path / "bad.toml"
    toml.write_text('port = "abc"\n')
    assert main(["--config", str(toml)]) == 2
    assert "MMSEARCH_PORT / port = 'abc'" in capsys.readouterr().err
    toml.write_text("port = [\n")
    assert main(["--config", str(toml)]) == 2
    assert f"config file {toml} is not valid TOML" in capsys.readouterr().err
    # A missing file was read as an empty one: the server started without the operator's settings.
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert f"config file {tmp_path / 'missing.toml'} not found" in capsys.readouterr().err


def test_serve_refuses_a_taken_port_or_unusable_data_dir_before_loading_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from mmsearch.server import app as server_app
    from mmsearch.server.cli import main

    def no_models(settings: object) -> None:
        raise AssertionError("a model was loaded before the listener was checked")

    monkeypatch.setattr(server_app, "make_encoders", no_models)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--data-dir", str(tmp_path / "d"), "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert f"cannot listen on 127.0.0.1:{port} (--port)" in err and "another --port" in err
        assert main(["--data-dir", str(tmp_path / "d"), "--port", "0", "--http-port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port} (--http-port)" in capsys.readouterr().err
    # A data directory another server holds (it loaded the model, then died on the engine's WAL lock)
    import fcntl

    (tmp_path / "held").mkdir()
    with (tmp_path / "held" / "mmsearch.lock").open("a+b") as other_server:
        fcntl.flock(other_server, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["--data-dir", str(tmp_path / "held"), "--port", "0"]) == 2
        assert f"data directory {tmp_path / 'held'} is in use by another mmsearch server" in capsys.readouterr().err
    # Taken between the check and the bind (another process was quicker): the same one-line error.
    from mmsearch.server.security.listener import ListenError

    from .conftest import fake_settings

    monkeypatch.undo()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            server_app.create_server(fake_settings(tmp_path / "e").model_copy(update={"port": port}))
    assert main(["--data-dir", str(tmp_path / "d"), "--port", "50999", "--metrics-port", "50999"]) == 2
    assert "--port and --metrics-port are both 50999" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["--data-dir", str(blocker / "data"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"cannot use data directory {blocker / 'data'}" in err and "Traceback" not in err


def test_cli_filter_syntax() -> None:
    assert parse_filters(["kind=bird", "legs>=2", "legs<5", "tag=a|b", "ok=true"]) == {
        "kind": "bird",
        "legs": {"gte": 2.0, "lt": 5.0},
        "tag": ["a", "b"],
        "ok": True,
    }
    with pytest.raises(SystemExit, match="bad --filter"):
        parse_filters(["novalue"])
    # values: whole and decimal numbers; a leading zero keeps the text; an empty value is the empty text
    assert parse_filters(["zip=02134", "n=0", "price=9.99", "lang=", "name=<none>", "neg=-3"]) == {
        "zip": "02134",
        "n": 0,
        "price": 9.99,
        "lang": "",
        "name": "<none>",
        "neg": -3,
    }
    with pytest.raises(SystemExit, match="did you mean year>=2020"):
        parse_filters(["year=>2020"])


class ExplodingStore(EdgeStore):
    def search_many(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail /etc/passwd")


@pytest.fixture
def exploding(tmp_path: Path) -> Iterator[Client]:
    app = create_server(fake_settings(tmp_path), store=ExplodingStore(tmp_path))
    with Client(f"127.0.0.1:{app.port}", retries=0) as c:
        yield c
    app.stop(grace=None)


def test_unexpected_errors_become_internal_without_details(exploding: Client) -> None:
    assert all(a.ok for a in exploding.ingest("c", [text_item("a", "some text")]))
    with pytest.raises(MMSearchError) as err:
        exploding.search("c", "text")
    assert err.value.code == grpc.StatusCode.INTERNAL
    assert "secret" not in err.value.details and "internal error" in err.value.details
    assert exploding.health() == "SERVING" and exploding.get_collection("c").document_count == 1


def test_metrics_count_requests_by_status(fake_client: Client) -> None:
    from prometheus_client import REGISTRY

    def count(code: str) -> float:
        labels = {"method": "/mmsearch.v1.CollectionService/GetCollection", "code": code}
        return REGISTRY.get_sample_value("mmsearch_requests_total", labels) or 0.0

    before_ok, before_nf = count("OK"), count("NOT_FOUND")
    fake_client.create_collection("m")
    fake_client.get_collection("m")
    with pytest.raises(MMSearchError):
        fake_client.get_collection("missing")
    assert count("OK") == before_ok + 1 and count("NOT_FOUND") == before_nf + 1


def test_serve_refuses_a_missing_model_or_an_unusable_qdrant_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each was a traceback with exit 1, the Qdrant ones only after the ~20 s model load."""
    import socket

    from mmsearch.server.cli import main

    # The model directory is looked for before torch is imported: this fails in milliseconds.
    missing = tmp_path / "no-such-model"
    assert main(["--data-dir", str(tmp_path / "d"), "--port", "0", "--text-model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"model directory {str(missing)!r} does not exist" in err and "--text-model" in err
    assert "Traceback" not in err

    from mmsearch.server import app as server_app

    def no_models(settings: object) -> None:
        raise AssertionError("a model was loaded before the store was checked")

    monkeypatch.setattr(server_app, "make_encoders", no_models)
    assert main(["--storage", "remote", "--port", "0"]) == 2
    assert "storage remote needs qdrant_url (--qdrant-url" in capsys.readouterr().err
    assert main(["--storage", "remote", "--qdrant-url", ":memory:", "--port", "0"]) == 2
    assert "':memory:' is not a server" in capsys.readouterr().err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # REST: the gRPC client would try Qdrant's gRPC port 6334 whatever the URL says
    assert main(["--storage", "remote", "--qdrant-url", url, "--no-qdrant-prefer-grpc", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the remote store: Qdrant at {url}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("weight", ["dense_weight", "maxsim_weight", "lexical_weight"])
def test_negative_fusion_weights_are_refused_at_start(
    weight: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative weight ranked the best matches last (0 still turns a signal off)."""
    from mmsearch.server import app as server_app
    from mmsearch.server.cli import main

    def no_models(settings: object) -> None:
        raise AssertionError("the server started with a negative weight")

    monkeypatch.setattr(server_app, "make_encoders", no_models)
    flag = "--" + weight.replace("_", "-")
    place = ["--data-dir", str(tmp_path), "--port", "0"]
    assert main([*place, flag, "-1"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} / MMSEARCH_{weight.upper()} / {weight} = '-1': Input should be greater than" in err
    monkeypatch.setenv(f"MMSEARCH_{weight.upper()}", "-0.5")
    assert main(place) == 2
    assert "'-0.5': Input should be greater than or equal to 0" in capsys.readouterr().err
    assert getattr(Settings(**{weight: 0}), weight) == 0  # type: ignore[arg-type]
