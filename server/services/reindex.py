"""The collection service with re-encoding (StartReindex, GetReindexStatus; server/reindex.py)."""

from __future__ import annotations

import grpc

from mmsearch.v1 import collections_pb2

from ..catalog import Catalog
from ..reindex import Reindexer, ReindexStatus
from .collections import CollectionServicer


def status_message(s: ReindexStatus) -> collections_pb2.ReindexStatus:
    return collections_pb2.ReindexStatus(
        collection=s.collection,
        state=s.state,
        old_model=s.old_model,
        new_model=s.new_model,
        points_done=s.points_done,
        points_total=s.points_total,
        error=s.error,
    )


class ReindexingCollectionServicer(CollectionServicer):
    def __init__(self, catalog: Catalog, reindexer: Reindexer) -> None:
        super().__init__(catalog)
        self.reindexer = reindexer

    def DeleteCollection(  # noqa: N802
        self, request: collections_pb2.DeleteCollectionRequest, context: grpc.ServicerContext
    ) -> collections_pb2.DeleteCollectionResponse:
        self.reindexer.drop_collection(request.name)  # stops a reindex of it (server/reindex.py)
        return collections_pb2.DeleteCollectionResponse()

    def RestoreSnapshot(  # noqa: N802
        self, request: collections_pb2.RestoreSnapshotRequest, context: grpc.ServicerContext
    ) -> collections_pb2.Collection:
        self.reindexer.restore_snapshot(request.collection, request.name)
        return self._message(self.catalog.store.get_spec(request.collection))

    def StartReindex(  # noqa: N802
        self, request: collections_pb2.StartReindexRequest, context: grpc.ServicerContext
    ) -> collections_pb2.ReindexStatus:
        return status_message(self.reindexer.start(request.collection, request.text_model))

    def GetReindexStatus(  # noqa: N802
        self, request: collections_pb2.GetReindexStatusRequest, context: grpc.ServicerContext
    ) -> collections_pb2.ReindexStatus:
        return status_message(self.reindexer.status(request.collection))
