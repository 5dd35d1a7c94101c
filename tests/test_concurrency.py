"""Two ingest streams at once (fake encoder, both storage backends): the same document id, crossed ids,
and the same collection auto-created."""

import threading
from functools import partial

from mmsearch.client import Client
from mmsearch.server.app import App
from mmsearch.v1 import ingest_pb2

from .documents import text_item

ROUNDS = 6


def _acks(c: Client, collection: str, items: list[ingest_pb2.IngestItem], create: bool = False) -> list[bool]:
    return [a.ok for a in c.ingest(collection, items, create=create)]


def _together(*calls: partial[list[bool]]) -> list[list[bool]]:
    """Runs the calls on their own threads, released at the same moment; re-raises the first error."""
    barrier = threading.Barrier(len(calls))
    out: list[list[bool] | BaseException] = [[] for _ in calls]

    def run(n: int) -> None:
        barrier.wait()
        try:
            out[n] = calls[n]()
        except BaseException as exc:  # handed to the main thread
            out[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a stream did not finish within 120 s"
    results = []
    for o in out:
        if isinstance(o, BaseException):
            raise o
        results.append(o)
    return results


def _version(tag: str, passages: int) -> str:
    # max_words 8, overlap 0: exactly `passages` passages, every word naming its version
    return " ".join(f"{tag}{i}" for i in range(passages * 8))


def test_same_id_from_two_streams_ends_as_one_version(fake_app: App) -> None:
    addr = f"127.0.0.1:{fake_app.port}"
    with Client(addr, timeout=60, retries=0) as a, Client(addr, timeout=60, retries=0) as b:
        a.create_collection("race", max_words=8, overlap_words=0)
        versions = {"alpha": 150, "beta": 70}  # several encoder batches each (32 passages per batch)
        for n in range(ROUNDS):
            first, second = ("alpha", "beta") if n % 2 == 0 else ("beta", "alpha")
            acks = _together(
                partial(_acks, a, "race", [text_item("doc", _version(first, versions[first]))]),
                partial(_acks, b, "race", [text_item("doc", _version(second, versions[second]))]),
            )
            assert acks == [[True], [True]]
            col = a.get_collection("race")
            hits = a.search("race", "alpha0 beta0", top_k=1000, all_passages=True, document_ids=["doc"]).results
            stored = {h.snippet.split()[0].rstrip("0123456789") for h in hits}
            assert len(stored) == 1, f"round {n}: points of both versions are stored: {sorted(stored)}"
            tag = stored.pop()
            assert (col.document_count, col.point_count) == (1, versions[tag]), f"round {n}: {tag}"
            assert sorted(h.passage for h in hits) == list(range(versions[tag]))


def test_same_id_twice_in_one_stream_keeps_the_later_version(fake_client: Client) -> None:
    fake_client.create_collection("twice", max_words=8, overlap_words=0)
    items = [text_item("doc", _version("alpha", 3)), text_item("doc", _version("beta", 5))]
    assert [a.points for a in fake_client.ingest("twice", items)] == [3, 5]
    hits = fake_client.search("twice", "beta0", top_k=100, all_passages=True).results
    assert sorted((h.passage, h.snippet.split()[0]) for h in hits) == [(i, f"beta{8 * i}") for i in range(5)]


def test_crossed_ids_in_two_streams_do_not_deadlock(fake_app: App) -> None:
    """Stream one writes x then y, stream two y then x: each waits for a document only while it holds
    none of its own."""
    addr = f"127.0.0.1:{fake_app.port}"
    with Client(addr, timeout=60, retries=0) as a, Client(addr, timeout=60, retries=0) as b:
        a.create_collection("cross", max_words=8, overlap_words=0)
        for n in range(ROUNDS):
            x, y = text_item("x", _version(f"x{n}v", 40)), text_item("y", _version(f"y{n}v", 40))
            acks = _together(partial(_acks, a, "cross", [x, y]), partial(_acks, b, "cross", [y, x]))
            assert acks == [[True, True], [True, True]]
            col = a.get_collection("cross")
            assert (col.document_count, col.point_count) == (2, 80)


def test_two_streams_auto_create_one_collection(fake_app: App) -> None:
    addr = f"127.0.0.1:{fake_app.port}"
    with Client(addr, timeout=60, retries=0) as a, Client(addr, timeout=60, retries=0) as b:
        for n in range(ROUNDS):
            name = f"auto{n}"
            acks = _together(
                partial(_acks, a, name, [text_item("one", "first stream's text")], create=True),
                partial(_acks, b, name, [text_item("two", "second stream's text")], create=True),
            )
            assert acks == [[True], [True]]
            col = a.get_collection(name)
            assert (col.document_count, col.point_count) == (2, 2)
        assert sorted(c.name for c in a.list_collections()) == [f"auto{n}" for n in range(ROUNDS)]
