"""Near-duplicates: FindDuplicates groups over a whole collection (several shards too), and the
ingest policies keep / skip / replace, per request and per collection. Fake encoder (a text's pooled
vector is the normalised sum of its words' vectors: a copy scores 1.0, a one-word edit of a long
passage ~0.97, unrelated texts ~0), both storage backends."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from mmsearch.client import Client, MMSearchError
from mmsearch.server.app import create_server

from .conftest import fake_settings
from .documents import text_item

BASE = (
    "the committee approved the annual budget for road repairs after a long debate about "
    "bridges tunnels and the cost of asphalt in the northern districts of the city"
)
EDITED = BASE.replace("long debate", "lengthy debate")
OTHER = "migrating geese cross the frozen lake every autumn while fishermen mend their nets"
OTHER2 = (
    "a violin concerto in d minor opened the festival with a quiet slow movement and the choir sang three old "
    "hymns softly before the interval"
)


def _docs(client: Client, collection: str) -> set[str]:
    res = client.search(collection, "committee budget geese violin", top_k=50)
    return {r.document_id for r in res.results}


def test_find_duplicates_groups_copies_and_edits_but_not_distinct_documents(fake_client: Client) -> None:
    fake_client.create_collection("c")
    items = [text_item("a", BASE), text_item("b", BASE), text_item("c", EDITED), text_item("d", OTHER)]
    items.append(text_item("e", OTHER2))
    assert all(a.ok for a in fake_client.ingest("c", items))
    groups = fake_client.find_duplicates("c", threshold=0.9).groups
    assert [sorted(g.document_ids) for g in groups] == [["a", "b", "c"]]
    assert 0.9 <= groups[0].similarity < 1.0  # the edit is the weakest link
    assert groups[0].members[0].snippet.startswith("the committee")
    # A stricter threshold keeps only the exact copies.
    assert [sorted(g.document_ids) for g in fake_client.find_duplicates("c", threshold=0.999).groups] == [["a", "b"]]


def test_find_duplicates_spans_shards(tmp_path: Path) -> None:
    app = create_server(fake_settings(tmp_path, seal_points=2))  # every two points seal a shard
    try:
        with Client(f"127.0.0.1:{app.port}", timeout=20, retries=0) as c:
            c.create_collection("c")
            for i, text in enumerate([BASE, OTHER, OTHER2, EDITED, BASE]):
                assert all(a.ok for a in c.ingest("c", [text_item(f"d{i}", text)]))
            assert c.get_collection("c").shard_count >= 2
            groups = c.find_duplicates("c", threshold=0.9).groups
            assert [sorted(g.document_ids) for g in groups] == [["d0", "d3", "d4"]]
    finally:
        app.stop(grace=None)


def test_repeated_passage_within_a_document_only_without_cross_document(fake_client: Client) -> None:
    fake_client.create_collection("c", max_words=20, overlap_words=0)
    words = BASE.split()[:20] + OTHER2.split()[:20] + BASE.split()[:20]
    text = " ".join(words)  # three passages of 20 words: the first and the last are the same
    assert all(a.ok for a in fake_client.ingest("c", [text_item("x", text), text_item("y", OTHER)]))
    assert fake_client.find_duplicates("c", threshold=0.8).groups  # x's own passages
    assert not fake_client.find_duplicates("c", threshold=0.8, cross_document=True).groups


def test_ingest_skip_and_replace_per_request(fake_client: Client) -> None:
    fake_client.create_collection("c")
    assert [a.ok for a in fake_client.ingest("c", [text_item("a", BASE), text_item("d", OTHER)])] == [True, True]
    [skipped] = fake_client.ingest("c", [text_item("b", EDITED)], on_duplicate="skip", duplicate_threshold=0.9)
    assert skipped.ok and skipped.points == 0 and list(skipped.duplicate_of) == ["a"]
    assert _docs(fake_client, "c") == {"a", "d"}
    # Below the threshold it is no duplicate: stored.
    [kept] = fake_client.ingest("c", [text_item("b", EDITED)], on_duplicate="skip", duplicate_threshold=0.999)
    assert kept.ok and kept.points == 1 and not kept.duplicate_of
    [replaced] = fake_client.ingest("c", [text_item("n", BASE)], on_duplicate="replace", duplicate_threshold=0.9)
    assert replaced.ok and replaced.points == 1
    assert sorted(replaced.duplicate_of) == ["a", "b"]
    assert _docs(fake_client, "c") == {"n", "d"}
    # keep (the default) stores duplicates.
    [plain] = fake_client.ingest("c", [text_item("m", BASE)])
    assert plain.ok and plain.points == 1 and not plain.duplicate_of
    assert _docs(fake_client, "c") == {"n", "m", "d"}


def test_pages_without_words_are_nobodys_duplicates(fake_client: Client) -> None:
    """Every page without words (a blank scan, a photo) had the same text vector, that of no text: under
    replace, a new blank page deleted every other one; under skip, it was never stored."""
    from .pagegen import text_page
    from .test_pages import image_item

    blank = [image_item(f"blank{i}", text_page([], size=(300 + 50 * i, 400)), "image/png") for i in range(3)]
    page = image_item("invoice", text_page(["INVOICE 4471", "Harbour Freight"]), "image/png")
    assert all(a.ok for a in fake_client.ingest("p", [*blank[:2], page]))
    [kept] = fake_client.ingest("p", [blank[2]], on_duplicate="replace", duplicate_threshold=0.9)
    assert kept.ok and kept.points == 1 and not kept.duplicate_of
    assert fake_client.get_collection("p").document_count == 4
    # a page with words still finds its copy
    copy = image_item("copy", text_page(["INVOICE 4471", "Harbour Freight"]), "image/png")
    [skipped] = fake_client.ingest("p", [copy], on_duplicate="skip", duplicate_threshold=0.9)
    assert skipped.ok and skipped.points == 0 and list(skipped.duplicate_of) == ["invoice"]


def test_collection_setting_applies_and_a_request_overrides_it(fake_client: Client) -> None:
    col = fake_client.create_collection("c", on_duplicate="skip", duplicate_threshold=0.9)
    assert col.config.on_duplicate.threshold == pytest.approx(0.9)
    assert [a.points for a in fake_client.ingest("c", [text_item("a", BASE), text_item("b", EDITED)])] == [1, 0]
    assert [a.points for a in fake_client.ingest("c", [text_item("b", EDITED)], on_duplicate="keep")] == [1]
    assert _docs(fake_client, "c") == {"a", "b"}


def test_bad_thresholds_are_invalid_argument(fake_client: Client) -> None:
    fake_client.create_collection("c")
    [ack] = fake_client.ingest("c", [text_item("a", BASE)], on_duplicate="skip", duplicate_threshold=1.5)
    assert not ack.ok and ack.error_code == "INVALID_ARGUMENT" and "threshold" in ack.error
    with pytest.raises(MMSearchError) as err:
        fake_client.find_duplicates("c", threshold=-0.5)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(MMSearchError) as err:
        fake_client.find_duplicates("c", neighbours=500)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(MMSearchError) as err:
        fake_client.find_duplicates("nope")
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(MMSearchError) as err:
        fake_client.create_collection("d", on_duplicate="skip", duplicate_threshold=2.0)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
