"""Deleting documents: by ids or by a metadata filter, exactly one of them."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidArgument
from ..field_types import check_filter
from ..storage.base import TENANT_FIELD, Cond, Store, Where
from ..storage.page_images import image_key


def delete_documents(store: Store, collection: str, ids: Sequence[str], where: Where, tenant: str | None = None) -> int:
    """Deletes every point of the documents named by `ids`, or of those matching `where`, of
    `tenant` only when given; returns how many points went. The collection must exist (NOT_FOUND
    otherwise)."""
    check_filter(where, store.get_spec(collection).indexed_fields)
    if bool(ids) == (not where.is_empty()):
        raise InvalidArgument("delete needs either ids or a filter (exactly one of them)")
    target = (Where(must=[Cond(key="doc_id", any_of=list(ids))]) if ids else where).for_tenant(tenant)
    deleted = store.count(collection, target)
    owners = _page_owners(store, collection, ids, target, tenant)
    store.delete(collection, target)
    if store.page_images is not None:  # kept page images go with their documents
        for doc_id, owner in owners:
            for slot in (0, 1):
                store.page_images.delete(collection, image_key(doc_id, owner, slot))
    return deleted


def _page_owners(
    store: Store, collection: str, ids: Sequence[str], target: Where, tenant: str | None
) -> set[tuple[str, str | None]]:
    """(document id, tenant) of every document whose kept page images the delete removes: those named
    (a version being written included), and, read before the delete, the page documents it matches,
    which a filter delete or a key without a tenant (every tenant's copy of an id) only finds so."""
    if store.page_images is None:
        return set()
    owners: set[tuple[str, str | None]] = {(doc_id, tenant) for doc_id in ids}
    pages = target.and_(Cond(key="modality", any_of=["page"]))
    for hits in store.scan(collection, pages, fields=["doc_id", TENANT_FIELD]):
        owners.update((str(h.payload["doc_id"]), h.payload.get(TENANT_FIELD)) for h in hits)
    return owners
