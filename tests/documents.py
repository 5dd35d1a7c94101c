"""Test documents: the four-animal collection several server tests search, and IngestItem for a text."""

from __future__ import annotations

from typing import Any

from mmsearch.v1 import ingest_pb2


def text_item(
    doc_id: str, text: str, metadata: dict[str, Any] | None = None, source: str = ""
) -> ingest_pb2.IngestItem:
    item = ingest_pb2.IngestItem(id=doc_id, text=text, source=source or doc_id)
    if metadata:
        item.metadata.fields.update(metadata)
    return item


ANIMALS = {
    "cats": ("Cats purr and chase mice around the old barn at night.", {"kind": "mammal", "legs": 4, "tag": "pet"}),
    "owls": ("Owls hunt mice at night with silent wings and sharp eyes.", {"kind": "bird", "legs": 2, "tag": "wild"}),
    "trout": ("Trout swim upstream in cold clear rivers every spring.", {"kind": "fish", "legs": 0, "tag": "wild"}),
    "dogs": ("Dogs fetch sticks, guard the house and bark at strangers.", {"kind": "mammal", "legs": 4, "tag": "pet"}),
}


#: Queries over ANIMALS whose ranked results tests compare before and after an operation.
ANIMAL_QUERIES = ["mice at night", "cold rivers", "guard the house", "silent wings"]


def ranked(client: Any, collection: str = "c") -> list[list[tuple[str, int, float]]]:
    """Each of ANIMAL_QUERIES' top 10 as (document, passage, score to 6 places)."""
    out = []
    for q in ANIMAL_QUERIES:
        hits = client.search(collection, q, top_k=10).results
        out.append([(r.document_id, r.passage, round(r.score, 6)) for r in hits])
    return out
