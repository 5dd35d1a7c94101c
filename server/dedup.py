"""Near-duplicates by the stored pooled vectors: the same text OCR'd again, the same page scanned
twice, a passage repeated across documents.

Over a whole collection (`find_duplicates`): every point asks the engine's dense index for its
`neighbours` nearest points, links those at least `threshold` similar (cosine), and the links are
joined into groups with a union-find. Cost: N nearest-neighbour queries, each O(log N) in an
indexed shard (HNSW) plus a scan of the active shard (at most `--seal-points` points): about
O(N·(k·log N + active)) instead of the O(N²) of comparing every pair. A group larger than
`neighbours` + 1 is still found whole as long as its members link up in chains.

At ingest (`duplicate_of`): an item duplicates a stored document D when every one of its points has a
point of D among its nearest at least `threshold` similar; the policy (protocol.vocab.OnDuplicate) keeps
it anyway, skips it (its old version, if any, stays) or writes it and deletes the documents it
duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgument
from .storage.base import Cond, Store, Where

#: Similarity at or above which two points are duplicates unless the request says otherwise. With
#: MiniLM it found 93% of lightly edited passages with no false pair, and every re-saved, rescaled or
#: rotated receipt scan with 4 false pairs in 40 (distinct receipts that read alike; docs/dedup.md).
DEFAULT_THRESHOLD = 0.95
MAX_NEIGHBOURS = 100
_FIELDS = ("doc_id", "seq", "page", "text")


@dataclass
class Member:
    document_id: str
    seq: int  # the point's position in its document (passage or page, 0-based)
    page: int  # 1-based page, 0 for a text passage
    snippet: str


@dataclass
class DuplicateGroup:
    members: list[Member] = field(default_factory=list)
    similarity: float = 1.0  # the weakest link that joined the group

    @property
    def document_ids(self) -> list[str]:
        return sorted({m.document_id for m in self.members})


def check_threshold(threshold: float) -> float:
    """0 means the default; otherwise it must lie in (0, 1]."""
    if threshold == 0:
        return DEFAULT_THRESHOLD
    if not 0 < threshold <= 1:
        raise InvalidArgument(f"duplicate threshold must be between 0 and 1 (cosine similarity), got {threshold}")
    return threshold


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(
    store: Store,
    collection: str,
    spaces: Sequence[str],
    threshold: float = 0.0,
    neighbours: int = 10,
    tenant: str | None = None,
    cross_document: bool = False,
) -> list[DuplicateGroup]:
    """Groups of at least two visible points (of `tenant`'s when given), largest first.
    cross_document: only links between different documents count."""
    threshold = check_threshold(threshold)
    if not 1 <= neighbours <= MAX_NEIGHBOURS:
        raise InvalidArgument(f"neighbours must be between 1 and {MAX_NEIGHBOURS}, got {neighbours}")
    where = Where().for_tenant(tenant)
    links = _UnionFind()
    weakest: dict[tuple[str, str], float] = {}
    info: dict[str, Member] = {}
    for space in spaces:
        for page in store.scan(collection, where, _FIELDS, space=space):
            for hit in page:
                info[hit.id] = _member(hit.payload)
            for hit in page:
                if hit.dense is None:
                    continue
                found = store.dense_search(collection, space, hit.dense, neighbours + 1, where)
                for other, score in found.items():
                    if other != hit.id and score >= threshold:
                        weakest[(hit.id, other)] = score
    if cross_document:
        missing = sorted({b for _, b in weakest} - info.keys())
        for h in store.retrieve(collection, missing, fields=list(_FIELDS)):
            info[h.id] = _member(h.payload)
    for a, b in weakest:
        if b not in info:
            continue  # written or deleted during the scan
        if cross_document and info[a].document_id == info[b].document_id:
            continue
        links.union(a, b)
    groups: dict[str, DuplicateGroup] = {}
    for pid in list(links.parent):
        groups.setdefault(links.find(pid), DuplicateGroup()).members.append(info[pid])
    for (a, b), score in weakest.items():
        if a in links.parent and b in links.parent and links.find(a) == links.find(b):
            g = groups[links.find(a)]
            g.similarity = min(g.similarity, score)
    out = [g for g in groups.values() if len(g.members) > 1]
    for g in out:
        g.members.sort(key=lambda m: (m.document_id, m.seq))
    out.sort(key=lambda g: (-len(g.members), g.members[0].document_id))
    return out


def _member(payload: dict) -> Member:
    text = " ".join(str(payload.get("text", "")).split())
    return Member(str(payload.get("doc_id", "")), int(payload.get("seq", 0)), int(payload.get("page") or 0), text[:200])


def duplicate_of(
    store: Store,
    collection: str,
    vectors: Sequence[tuple[str, np.ndarray]],
    doc_id: str,
    threshold: float,
    tenant: str | None = None,
    neighbours: int = 10,
) -> list[str]:
    """The other documents D that an item with these (space, pooled vector (dim,)) points
    duplicates: every point of the item has a visible point of D among its `neighbours` nearest at
    least `threshold` similar. [] when there is none."""
    if not vectors:
        return []
    where = Where(must_not=[Cond(key="doc_id", match=doc_id)]).for_tenant(tenant)
    per_point: list[set[str]] = []
    for space, vector in vectors:
        found = store.dense_search(collection, space, vector, neighbours, where)
        close = {pid for pid, score in found.items() if score >= threshold}
        if not close:
            return []  # a point with no near-duplicate: the item is new
        per_point.append(close)
    ids = sorted(set().union(*per_point))
    owner = {h.id: str(h.payload.get("doc_id", "")) for h in store.retrieve(collection, ids, fields=["doc_id"])}
    common = set.intersection(*({owner[p] for p in close if p in owner} for close in per_point))
    return sorted(common)
