"""Deleting documents: by ids or by a metadata filter, exactly one of them."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidArgument
from ..storage.base import Cond, Store, Where
from ..storage.page_images import image_key


def delete_documents(store: Store, collection: str, ids: Sequence[str], where: Where, tenant: str | None = None) -> int:
    """Deletes every point of the documents named by `ids`, or of those matching `where`, of
    `tenant` only when given; returns how many points went. The collection must exist (NOT_FOUND
    otherwise)."""
    store.get_spec(collection)
    if bool(ids) == (not where.is_empty()):
        raise InvalidArgument("delete needs either ids or a filter (exactly one of them)")
    target = (Where(must=[Cond(key="doc_id", any_of=list(ids))]) if ids else where).for_tenant(tenant)
    deleted = store.count(collection, target)
    store.delete(collection, target)
    # Kept page images go with documents deleted by id. A filter delete does not know its document ids:
    # their images stay on disk, unreachable (GetPage answers only for pages whose point exists).
    if store.page_images is not None:
        for doc_id in ids:
            for slot in (0, 1):
                store.page_images.delete(collection, image_key(doc_id, tenant, slot))
    return deleted
