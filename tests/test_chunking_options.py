"""ChunkingOptions through the server: overlap_words has presence, so 0 (no overlap) is a request of its
own and unset takes the server's default (40)."""

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.v1 import collections_pb2

from .documents import text_item

TEXT_300 = " ".join(f"w{i}" for i in range(300))


def _points(c: Client, name: str) -> int:
    acks = list(c.ingest(name, [text_item("doc", TEXT_300)], create=False))
    assert acks[0].ok, acks[0]
    assert c.get_collection(name).point_count == acks[0].points
    return acks[0].points


def test_overlap_zero_is_sent_and_applied(fake_client: Client) -> None:
    col = fake_client.create_collection("none", max_words=50, overlap_words=0)
    assert col.config.chunking.HasField("overlap_words") and col.config.chunking.overlap_words == 0
    assert _points(fake_client, "none") == 6  # 300 words / 50, nothing shared
    # passages are disjoint: the last one starts at word 250
    r = fake_client.search("none", "w250", top_k=1, all_passages=True)
    assert r.results[0].passage == 5 and r.results[0].snippet.startswith("w250 ")


def test_overlap_unset_takes_the_default(fake_client: Client) -> None:
    assert fake_client.create_collection("dflt").config.chunking.overlap_words == 40
    # max_words alone: the server's proportion (40 of 180), not 40 of 50 (every word stored 5 times)
    col = fake_client.create_collection("short", max_words=50)
    assert col.config.chunking.overlap_words == 11
    assert _points(fake_client, "short") == 8  # step 39: windows start at 0, 39, ..., 273


def test_overlap_set_explicitly(fake_client: Client) -> None:
    fake_client.create_collection("some", max_words=50, overlap_words=25)
    assert _points(fake_client, "some") == 11  # step 25: windows start at 0, 25, ..., 250


def test_overlap_must_be_smaller_than_max_words(fake_client: Client) -> None:
    with pytest.raises(MMSearchError) as err:
        fake_client.create_collection("bad", max_words=10, overlap_words=10)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "chunking.overlap_words (10) must be smaller than max_words (10)" in err.value.details
    # unset overlap, small max_words: its share of the default (it was the 40 itself, refused)
    assert fake_client.create_collection("ok", max_words=20).config.chunking.overlap_words == 4


def test_overlap_zero_on_the_wire(fake_client: Client) -> None:
    """A raw request (as other languages' clients send it): presence survives serialisation."""
    config = collections_pb2.CollectionConfig(chunking=collections_pb2.ChunkingOptions(max_words=50, overlap_words=0))
    wire = collections_pb2.CreateCollectionRequest(name="raw", config=config).SerializeToString()
    req = collections_pb2.CreateCollectionRequest.FromString(wire)
    assert req.config.chunking.HasField("overlap_words")
    col = fake_client.collections.CreateCollection(req, timeout=20)
    assert col.config.chunking.overlap_words == 0
    assert _points(fake_client, "raw") == 6
