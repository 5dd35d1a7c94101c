"""All-or-nothing documents on the ingest side: which version slot an item is written in, and the
writes that make it visible or take it back (the slots are explained in storage/base.py).

A one-point item (the common single-passage text) replacing at most one point is written visible
at once, over its old point: one point is written whole or not at all, so it needs nothing more.
Any other item is written hidden into the slot that is not live, then committed: one payload
change over the document's points shows it and hides the old version together, after which the
old version is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Unavailable
from ..storage.base import LIVE, SLOT, Cond, Store, Where, point_id, region_point_id
from ..storage.page_images import image_key


@dataclass(frozen=True)
class Version:
    slot: int  # the slot the item's points are written in
    live: int  # their `_live` as written: the slot itself when they are visible at once

    @property
    def in_place(self) -> bool:
        return self.slot == self.live


def plan(store: Store, collection: str, doc_id: str, points: int | None, tenant: str | None = None) -> Version:
    """The version an item of `points` points (None: not known up front) is written as, from the
    first two points of each slot (one lookup by id) of the document as `tenant` wrote it."""
    ids = {(slot, seq): point_id(doc_id, seq, tenant, slot) for slot in (0, 1) for seq in (0, 1)}
    # A stored one-page item with regions is not one point: overwriting it in place could leave its
    # old regions behind, so it is replaced through the other slot like a longer document.
    regions = {slot: region_point_id(doc_id, 0, 0, tenant, slot) for slot in (0, 1)}
    found = store.versions(collection, [*ids.values(), *regions.values()])
    live = None
    for slot in (0, 1):
        got = found.get(ids[(slot, 0)])
        if got is not None and (got[1] is None or got[0] == got[1]):  # visible: live, or from before slots
            live = slot
    if live is None:
        return Version(0, 0) if points == 1 else Version(0, 1)
    if points == 1 and ids[(live, 1)] not in found and regions[live] not in found:
        return Version(live, live)  # one point over one point: overwritten in place
    return Version(1 - live, live)


def commit(
    store: Store, collection: str, doc_id: str, version: Version, written: int, tenant: str | None = None
) -> None:
    """Makes a fully written version the document's only one (of the versions `tenant` wrote: no
    other tenant's document of the same id is touched), with its kept page images."""
    if not version.in_place:
        doc = Where(must=[Cond(key="doc_id", match=doc_id)]).owned_by(tenant)
        # Points of this slot beyond the new version's end (left by a write that failed to clean up)
        # would become visible with it.
        _delete(
            store, collection, doc.and_(Cond(key=SLOT, match=version.slot), Cond(key="seq", range={"gte": written}))
        )
        # Every point of the new version must still be there: on a shared cluster another server's
        # startup sweep could have taken some (storage/slots.py), and the switch would show the rest.
        mine = doc.and_(Cond(key=SLOT, match=version.slot), Cond(key="seq", range={"gte": 0, "lt": written}))
        if (found := store.count(collection, mine, hidden=True)) != written:
            abort(store, collection, doc_id, version, tenant)
            raise Unavailable(
                f"document {doc_id!r}: {written - found} of its {written} new points vanished before it was "
                "shown (swept by another server? see remote_sweep_grace_s); its previous version stays; send it again"
            )
        store.set_payload(collection, doc, {LIVE: version.slot})  # the switch: all or nothing
        _delete(store, collection, Where(must=doc.must, must_not=[Cond(key=SLOT, match=version.slot)]))
    if store.page_images is not None:  # page n is point seq n - 1
        store.page_images.delete(collection, image_key(doc_id, tenant, version.slot), from_page=written + 1)
        if not version.in_place:
            store.page_images.delete(collection, image_key(doc_id, tenant, 1 - version.slot))


def abort(store: Store, collection: str, doc_id: str, version: Version, tenant: str | None = None) -> None:
    """Removes what an item that will not be committed wrote; the old version stays as it was."""
    if version.in_place:
        return  # its one point is either written (a complete version) or not
    mine = Where(must=[Cond(key="doc_id", match=doc_id), Cond(key=SLOT, match=version.slot)]).owned_by(tenant)
    _delete(store, collection, mine)
    if store.page_images is not None:
        store.page_images.delete(collection, image_key(doc_id, tenant, version.slot))


def _delete(store: Store, collection: str, where: Where) -> None:
    """Deletes hidden points too; skips the write (a WAL record on every shard) when none match."""
    if store.count(collection, where, hidden=True):
        store.delete(collection, where)
