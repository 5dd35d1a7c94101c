"""Version slots: how a document's new version stays hidden until it is complete.

Documents are all or nothing. A document has two version slots (0 and 1); a point stores its own
slot (`_slot`) and the slot its document had live when the point was last written or committed
(`_live`). A point is visible only when `_slot == _live` (or it has neither key: points written
before versions existed); every read adds that condition (`visible`). A new version is written into
the slot that is not live, so its points are hidden while they are written, and one payload change
over the document's points (`_live` := new slot; `Store.set_payload`, all or nothing) hides the old
version and shows the new one at once. Points hidden at startup are left over from writes a crash
cut short: `Store.sweep` deletes them.

Hidden points also carry the time they were written (`_written`, Unix seconds). Several mmsearch
servers may share one Qdrant cluster (remote storage), and one server's start must not sweep the
hidden points of a version another is writing: there the sweep spares points written within a grace
period (`remote_sweep_grace_s`). The embedded store is one process's alone and sweeps them all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .where import Cond, Where

if TYPE_CHECKING:
    from .records import PointData

#: The version keys: the point's slot, and the slot its document had live.
SLOT, LIVE = "_slot", "_live"
#: When a hidden point was written (Unix seconds).
WRITTEN_AT = "_written"
_ID_NAMESPACE = uuid.UUID("5b1f2d7e-6f0c-4c57-9a53-2a0d6e1c9b11")
_TENANT_NAMESPACE = uuid.UUID("0c9e4f43-3a4e-4d7c-8f0e-6a8d2b7c1e55")


def point_id(doc_id: str, seq: int, tenant: str | None = None, slot: int = 0) -> str:
    """Deterministic point id per document, point number, tenant and version slot: writing a slot
    again overwrites its points in place. Tenants' ids live in a namespace of their own, so two
    tenants' documents of the same id never share a point (a tenant name holds no NUL:
    security/principal.py). Slot 0 keeps the ids of the time before slots."""
    name = f"{doc_id}\x00{seq}" if slot == 0 else f"{doc_id}\x00{seq}\x00{slot}"
    if tenant:
        return str(uuid.uuid5(_TENANT_NAMESPACE, f"{tenant}\x00{name}"))
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def region_point_id(doc_id: str, seq: int, region: int, tenant: str | None = None, slot: int = 0) -> str:
    """Deterministic id of region `region` of point `seq` (a long page's region, stored beside the
    page's own point and grouped back to it at search time)."""
    return point_id(f"{doc_id}\x00region{region}", seq, tenant, slot)


#: A point is hidden when its document's live slot is not its own (or, for a point from before
#: slots, when its document has a live slot at all: a newer version replaced it).
HIDDEN = [Cond(where=Where(must=[Cond(LIVE, match=s)], must_not=[Cond(SLOT, match=s)])) for s in (0, 1)]


def visible(where: Where | None) -> Where:
    """`where`, restricted to visible points."""
    where = where or Where()
    return Where(must=list(where.must), must_not=[*where.must_not, *HIDDEN], should=list(where.should))


def is_visible(payload: dict[str, Any]) -> bool:
    return LIVE not in payload or payload.get(SLOT) == payload[LIVE]


def stamp_hidden(points: Iterable[PointData]) -> None:
    """Marks the hidden ones among `points` (and their companions) with the time of writing."""
    now = int(time.time())
    for p in points:
        if SLOT in p.payload and p.payload[SLOT] != p.payload.get(LIVE):
            p.payload[WRITTEN_AT] = now
        stamp_hidden(p.companions)


def sweepable(grace_s: float) -> Where:
    """The hidden points a sweep deletes: all of them, or (grace_s > 0) those written before the grace
    period or without a write time (written before times were kept)."""
    if grace_s <= 0:
        return Where(should=list(HIDDEN))
    recent = Cond(WRITTEN_AT, range={"gte": time.time() - grace_s})
    return Where(should=list(HIDDEN), must_not=[recent])
