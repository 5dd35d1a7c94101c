"""The CLI contract from the README, against a real `mmsearch serve` process; and kill -9 durability."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
MMSEARCH = [sys.executable, "-m", "mmsearch.client.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*MMSEARCH, *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"mmsearch {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


class Server:
    def __init__(self, data_dir: Path, fake: bool = True) -> None:
        self.fake = fake
        self.port = _free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Token vectors stored exactly (float16, not pooled): the contract pins explanations of exact word
        # matches, and pooling merges the fake encoder's unrelated random word vectors (compression is
        # measured and tested in test_compression.py).
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "MMSEARCH_TEXT_TOKEN_STORAGE": "float16",
            "MMSEARCH_TEXT_TOKEN_POOL_FACTOR": "1",
        }
        fake = ["--text-kind", "fake", "--text-model", "fake-32"] if self.fake else []
        self.proc = subprocess.Popen(
            [*MMSEARCH, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *fake],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        from mmsearch.client import Client, MMSearchError

        deadline = time.time() + 300  # loading torch and a model on 2 busy cores can take a while
        while time.time() < deadline:
            try:
                with Client(self.addr, retries=0) as c:
                    if c.health(timeout=1) == "SERVING":
                        return
            except MMSearchError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            time.sleep(0.3)
        raise AssertionError("server did not become healthy")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data")
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def _corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "owls.txt").write_text("Owls hunt mice at night with silent wings.")
    (folder / "sub" / "trout.md").write_text("# Trout\nTrout swim upstream in cold rivers.")
    (folder / "bad.txt").write_bytes("caf\xe9".encode("latin-1"))
    lines = [
        json.dumps({"id": "cats", "text": "Cats purr and chase mice.", "metadata": {"kind": "mammal", "legs": 4}}),
        "{not json",
        json.dumps({"id": "dogs", "text": "Dogs bark at strangers.", "metadata": {"kind": "mammal", "legs": 4}}),
        json.dumps({"text": "no id"}),
    ]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_cli_contract(server: Server, tmp_path: Path) -> None:
    srv = ["--server", server.addr]
    assert run("health", *srv).stdout.strip() == "SERVING"
    p = run("ingest", str(_corpus(tmp_path)), "--collection", "zoo", *srv, check=False)
    assert p.returncode == 1  # some items were rejected, the rest landed
    assert "ingested 4 documents" in p.stdout
    assert "records.jsonl:2: malformed JSON" in p.stderr
    assert 'records.jsonl:4: record has no "id"' in p.stderr
    assert "bad.txt: INVALID_ARGUMENT" in p.stderr and "not valid UTF-8" in p.stderr

    out = json.loads(run("search", "who hunts mice at night", "-c", "zoo", "--top-k", "2", "--json", *srv).stdout)
    top = out["results"][0]
    assert top["document_id"] == "owls" and top["modality"] == "text" and top["page"] == 0
    assert set(top) >= {"document_id", "page", "modality", "score", "metadata", "snippet"}

    out = json.loads(run("search", "mice", "-c", "zoo", "--filter", "kind=mammal", "--json", *srv).stdout)
    assert {r["document_id"] for r in out["results"]} == {"cats", "dogs"}
    assert out["results"][0]["metadata"]["legs"] == 4

    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "q1", "query": "trout rivers"}) + "\n" + json.dumps({"id": "q2", "query": "bark"}) + "\n"
    )
    lines = [json.loads(x) for x in run("search", "--queries", str(queries), "-c", "zoo", *srv).stdout.splitlines()]
    assert [x["id"] for x in lines] == ["q1", "q2"]
    assert lines[0]["results"][0]["document_id"] == "trout" and lines[1]["results"][0]["document_id"] == "dogs"
    # a bad line or a refused query gets an error line and the batch goes on (it used to stop there)
    queries.write_text(
        "\n".join(
            [
                json.dumps({"id": "q1", "query": ""}),
                "{not json",
                json.dumps({"id": "q3", "query": "bark", "top_k": 2}),
                json.dumps({"id": "q4", "query": "trout rivers"}),
            ]
        )
        + "\n"
    )
    p = run("search", "--queries", str(queries), "-c", "zoo", *srv, check=False)
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert p.returncode == 1 and [x["id"] for x in lines] == ["q1", None, "q3", "q4"]
    assert lines[0]["error"]["code"] == "INVALID_ARGUMENT" and "query is empty" in lines[0]["error"]["message"]
    assert lines[1]["line"] == 2 and "q.jsonl:2" in lines[1]["error"]["message"]
    assert lines[2]["results"][0]["document_id"] == "dogs"  # its top_k is ignored, with a note
    assert "keys ['top_k'] are ignored" in p.stderr
    assert lines[3]["results"][0]["document_id"] == "trout"
    # the same refusal for two different queries: the shared options are at fault, so it stops
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"id": f"q{i}", "query": f"mice {i}"}) + "\n" for i in range(50)))
    p = run("search", "--queries", str(many), "-c", "zoo", "--threshold", "2", *srv, check=False)
    assert p.returncode == 2 and "score_threshold must be in [0, 1]" in p.stderr
    assert len(p.stdout.splitlines()) == 1  # the first query's error line; then it stopped
    p = run("search", "--queries", str(tmp_path / "none.jsonl"), "-c", "zoo", *srv, check=False)
    assert p.returncode == 1 and p.stderr.strip() == f"error: No such file or directory: {tmp_path / 'none.jsonl'}"
    p = run("search", "mice", "-c", "zoo", "-k", "0", *srv, check=False)
    assert p.returncode == 2 and "must be 1 or more" in p.stderr
    p = run("search", "mice", "-c", "zoo", "--filter", "legs=>2", *srv, check=False)
    assert p.returncode != 0 and "did you mean legs>=2?" in p.stderr

    human = run("search", "silent owls", "-c", "zoo", "--explain", *srv).stdout
    assert "owls" in human and "silent→silent" in human

    r = json.loads(
        run("rerank", "mice at night", "trout swim", "owls hunt mice at night", "--top-n", "1", "--json", *srv).stdout
    )
    assert r["results"][0]["index"] == 1 and 0 <= r["results"][0]["relevance_score"] <= 1

    cols = json.loads(run("collections", "--json", *srv).stdout)
    assert cols[0]["name"] == "zoo" and int(cols[0]["document_count"]) == 4
    # 4 passages fit in the active shard, which is searched exactly: nothing indexed, nothing waiting
    assert cols[0]["shard_count"] == 1 and cols[0]["index_state"] == "INDEX_STATE_INDEXED"
    assert "deleted 2" in run("delete", "--collection", "zoo", "--filter", "kind=mammal", *srv).stdout
    assert "deleted 1" in run("delete", "--collection", "zoo", "--id", "owls", *srv).stdout
    human = run("collections", *srv).stdout
    assert "1 documents" in human
    assert "1 shards; 0 points in built indexes, the rest searched exactly (no build due)" in human

    p = run("search", "x", "-c", "missing", *srv, check=False)
    assert p.returncode == 2 and "NOT_FOUND" in p.stderr and "'missing' does not exist" in p.stderr
    note = tmp_path / "memo.txt"
    note.write_text("Quarterly budget memo for the finance team.")
    run("ingest", str(note), "-c", "zoo", "-m", "team=finance", "-m", "year=2024", *srv)
    out = json.loads(run("search", "budget", "-c", "zoo", "--filter", "year>=2024", "--json", *srv).stdout)
    assert [(r["document_id"], r["metadata"]) for r in out["results"]] == [("memo", {"team": "finance", "year": 2024})]
    p = run("ingest", str(note), "-c", "zoo", "-m", "oops", *srv, check=False)
    assert p.returncode != 0 and "bad --metadata 'oops'" in p.stderr
    p = run("drop", "zoo", *srv, check=False)
    assert p.returncode != 0 and "add --yes" in p.stderr
    assert "deleted collection 'zoo'" in run("drop", "zoo", "--yes", *srv).stdout
    assert run("collections", *srv).stdout.strip() == "no collections"


def test_health_fails_without_server() -> None:
    p = run("health", "--server", f"127.0.0.1:{_free_port()}", "--timeout", "1", check=False)
    assert p.returncode == 1 and "not serving" in p.stderr


def test_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    s = Server(tmp_path / "data")
    s.start()
    doc = tmp_path / "note.txt"
    doc.write_text("The quarterly budget review moved to Thursday afternoon.")
    run("ingest", str(doc), "--collection", "notes", "--server", s.addr)
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    s.start()  # same data directory
    out = json.loads(run("search", "budget review", "-c", "notes", "--json", "--server", s.addr).stdout)
    assert [r["document_id"] for r in out["results"]] == ["note"]
    assert s.stop() == 0  # SIGTERM: graceful exit


def test_mixed_folder_one_ranked_list_with_default_models(tmp_path: Path, shared_data: Path) -> None:
    """Issue 3's acceptance: text JSONL, receipt JPEGs, form PNGs and multi-page PDFs in one folder,
    one collection, found by queries written the way a person asks, in one list with the text."""
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    receipts = [json.loads(x) for x in (shared_data / "sroie_receipts" / "manifest.jsonl").open()][:6]
    for m in receipts:
        shutil.copy(shared_data / "sroie_receipts" / m["image"], folder / f"receipt-{m['id']}.jpg")
    forms = sorted((shared_data / "funsd_forms" / "testing_data" / "images").glob("*.png"))[:4]
    for f in forms:
        shutil.copy(f, folder / f"form-{f.stem}.png")
    for name in ("attention.pdf", "layout-parser-paper-with-empty-pages.pdf"):
        shutil.copy(shared_data / "pdf_documents" / name, folder / name)
    movies = json.loads((shared_data / "together_movies" / "movies.json").read_text())[:50]
    with (folder / "movies.jsonl").open("w") as fh:
        for i, m in enumerate(movies):
            fh.write(json.dumps({"id": f"movie-{i}", "text": f"{m['title']}. {m['overview']}"}) + "\n")

    s = Server(tmp_path / "data", fake=False)
    s.start()
    try:
        srv = ["--server", s.addr]
        p = run("ingest", str(folder), "--collection", "all", *srv)
        assert "ingested 62 documents" in p.stdout, p.stdout

        def top(query: str, k: int = 3) -> list[dict]:
            return json.loads(run("search", query, "-c", "all", "--top-k", str(k), "--json", *srv).stdout)["results"]

        # a receipt by company and date
        m = receipts[0]
        hits = top(f"receipt from {m['company'].lower()} dated {m['date']}")
        assert hits[0]["document_id"] == f"receipt-{m['id']}" and hits[0]["modality"] == "page", hits
        # a PDF page by a table's subject
        hits = top("BLEU scores and training cost of translation models compared", 5)
        assert any(h["document_id"] == "attention" and h["page"] in (8, 9) for h in hits[:3]), hits
        # a form by a field and its value
        hits = top("fax cover sheet sent to George Baroody")
        assert hits[0]["document_id"] == "form-82092117" and hits[0]["modality"] == "page", hits
        # text results in the same list
        hits = top("a thief who steals corporate secrets through dream-sharing technology", 3)
        assert hits[0]["document_id"] == "movie-15" and hits[0]["modality"] == "text", hits
    finally:
        s.stop()


def test_explain_renders_matched_regions(server: Server, tmp_path: Path) -> None:
    from PIL import Image

    from .pagegen import text_page

    page = tmp_path / "invoice.png"
    page.write_bytes(text_page(["INVOICE 4471", "Harbour Freight Logistics", "Total 812.50"]))
    run("ingest", str(page), "--collection", "docs", "--server", server.addr)
    out = tmp_path / "explained.png"
    p = run("explain", "harbour freight", "-c", "docs", "--document", "invoice", "--file", str(page), "--out", str(out),
            "--server", server.addr)  # fmt: skip
    assert "harbour → Harbour (1.00)" in p.stdout and "freight → Freight (1.00)" in p.stdout
    assert "2 highlighted regions" in p.stdout
    # raw signals, not the fused score of a one-document search (always 0.500); no [CLS]/[SEP] lines
    assert p.stdout.startswith("invoice p.1: dense ") and "score" not in p.stdout.splitlines()[0]
    assert "[CLS]" not in p.stdout and "[SEP]" not in p.stdout
    missing = run("explain", "harbour", "-c", "docs", "--document", "nosuch", "--server", server.addr, check=False)
    assert missing.returncode == 1 and "no document 'nosuch' in collection 'docs'" in missing.stderr
    srv = ["--server", server.addr]
    page3 = run("explain", "harbour", "-c", "docs", "-d", "invoice", "--page", "3", *srv, check=False)
    assert page3.returncode == 1 and "document 'invoice' has no page 3 (its pages: [1])" in page3.stderr
    # a file that is not the ingested page, or not an image at all: one line, no traceback
    other, cut = tmp_path / "other.png", tmp_path / "cut.png"
    Image.new("RGB", (2000, 300), "white").save(other)
    cut.write_bytes(page.read_bytes()[:60])
    for bad, says in ((other, "not the shape of the page stored for 'invoice'"), (cut, "cannot be read as an image")):
        drawn_bad = run("explain", "harbour", "-c", "docs", "-d", "invoice", "--file", str(bad), "--out",
                        str(tmp_path / "x.png"), *srv, check=False)  # fmt: skip
        assert drawn_bad.returncode == 1 and says in drawn_bad.stderr and "Traceback" not in drawn_bad.stderr
    missing_image = run("search", "--image", str(tmp_path / "nope.png"), "-c", "docs", *srv, check=False)
    assert missing_image.returncode == 1 and "no such file" in missing_image.stderr
    original, drawn = Image.open(page).convert("RGB"), Image.open(out).convert("RGB")
    assert drawn.size == original.size
    # the highlight sits on the second line (y ~ 88-120), left part; the first line is untouched
    assert drawn.getpixel((60, 100)) != original.getpixel((60, 100))
    assert drawn.getpixel((600, 20)) == original.getpixel((600, 20))
    # without --file, on the page image the server kept (it needed --file, which a caller may not have)
    kept_out = tmp_path / "kept.png"
    p = run("explain", "harbour freight", "-c", "docs", "-d", "invoice", "--out", str(kept_out), *srv)
    assert "2 highlighted regions" in p.stdout
    kept = Image.open(kept_out).convert("RGB")
    assert kept.size == original.size  # a small page is kept at its size
    assert kept.getpixel((60, 100)) != original.getpixel((60, 100)) and kept.getpixel((600, 20))[0] > 200
    # an --out it cannot write: one line, no traceback
    p = run("explain", "harbour", "-c", "docs", "-d", "invoice", "--out", str(tmp_path / "no" / "x.png"), *srv,
            check=False)  # fmt: skip
    assert p.returncode == 1 and "No such file or directory" in p.stderr and "Traceback" not in p.stderr


def test_serve_help_lists_every_setting() -> None:
    """`mmsearch serve --help` prints (a "%" in a setting's description once broke argparse's help)."""
    from mmsearch.server.cli import build_parser
    from mmsearch.server.settings import Settings

    text = build_parser().format_help()
    assert all(f"--{name.replace('_', '-')}" in text for name in Settings.model_fields)
    assert "--dense-quantization {none,int8}" in text


def test_an_image_is_sent_as_the_type_its_bytes_show(tmp_path: Path) -> None:
    """A JPEG saved as .png was refused by the server ("mime type image/png does not match the bytes")."""
    from mmsearch.client.files import items_from_file, read_image_arg

    from .pagegen import text_page

    photo = tmp_path / "scan.png"
    photo.write_bytes(text_page(["a receipt"], fmt="JPEG"))
    assert read_image_arg(str(photo))[1] == "image/jpeg"
    (item,) = items_from_file(photo)
    assert item.image.mime_type == "image/jpeg"  # type: ignore[union-attr]
    odd = tmp_path / "odd.webp"
    odd.write_bytes(b"not an image at all")
    assert read_image_arg(str(odd))[1] == "image/webp"  # unknown bytes: the extension's, for the server to refuse
