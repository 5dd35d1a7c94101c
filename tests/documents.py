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
