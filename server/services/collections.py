"""CollectionService: proto <-> Catalog."""

from __future__ import annotations

from typing import Any

import grpc

from mmsearch.protocol.vocab import FieldType
from mmsearch.protocol.wire import (
    DENSE_QUANTIZATION,
    DUPLICATE_POLICY,
    FIELD_TYPE,
    MODALITY,
    OCR_MODE,
    VECTOR_STORAGE,
    WireEnum,
)
from mmsearch.v1 import collections_pb2, collections_pb2_grpc, common_pb2

from ..catalog import Catalog, CollectionOptions
from ..dedup import find_duplicates
from ..errors import InvalidArgument
from ..security.principal import current_principal, current_tenant
from ..storage.base import CollectionSpec, SnapshotInfo, StoreStats


def _optional_enum(wire: WireEnum[Any], value: int, field: str, noun: str) -> str:
    """ "" (the server's default) for UNSPECIFIED; an enum number this server does not know is the
    client's mistake."""
    if value == 0:
        return ""
    found = wire.from_wire(value)
    if found is None:
        raise InvalidArgument(f"{field} has an unknown {noun} ({value})")
    return found


def duplicate_policy(value: int) -> str:
    return _optional_enum(DUPLICATE_POLICY, value, "on_duplicate.policy", "value")


def compression_message(spec: CollectionSpec) -> collections_pb2.CompressionOptions:
    """Each space's compression as one message: a field is reported when every space has the same
    value, and left unset (UNSPECIFIED, "per encoder") when the spaces differ, as they may in a
    collection with a text model and a ColPali model (docs/benchmarks.md)."""
    spaces = [s.compression for s in spec.spaces.values()]
    tokens, dense, factors, quantised = (
        {getattr(c, f) for c in spaces} for f in ("tokens", "dense", "token_pool_factor", "dense_quantization")
    )
    msg = collections_pb2.CompressionOptions(
        tokens=VECTOR_STORAGE.to_wire(next(iter(tokens))) if len(tokens) == 1 else 0,
        dense=VECTOR_STORAGE.to_wire(next(iter(dense))) if len(dense) == 1 else 0,
        dense_quantization=DENSE_QUANTIZATION.to_wire(next(iter(quantised))) if len(quantised) == 1 else 0,
    )
    if len(factors) == 1:
        msg.token_pool_factor = next(iter(factors))
    return msg


def collection_message(
    spec: CollectionSpec, documents: int, points: int, stats: StoreStats | None = None
) -> collections_pb2.Collection:
    config = collections_pb2.CollectionConfig(
        text_encoder=collections_pb2.EncoderSpec(kind=spec.text_kind, model=spec.text_model),
        page_encoder=collections_pb2.EncoderSpec(kind=spec.page_kind, model=spec.page_model),
        chunking=collections_pb2.ChunkingOptions(max_words=spec.chunk_words, overlap_words=spec.chunk_overlap),
        indexed_fields=[
            collections_pb2.IndexedField(key=k, type=FIELD_TYPE.to_wire(v))
            for k, v in sorted(spec.indexed_fields.items())
        ],
        compression=compression_message(spec),
        ocr=OCR_MODE.to_wire(spec.ocr),
        on_duplicate=common_pb2.DuplicateOptions(
            policy=DUPLICATE_POLICY.to_wire(spec.on_duplicate), threshold=spec.duplicate_threshold
        ),
    )
    spaces = [
        collections_pb2.VectorSpace(
            name=s.name,
            encoder=collections_pb2.EncoderSpec(kind=s.kind, model=s.model),
            dim=s.dim,
            modalities=[MODALITY.to_wire(m) for m in s.modalities],
        )
        for s in spec.spaces.values()
    ]
    message = collections_pb2.Collection(
        name=spec.name, config=config, document_count=documents, point_count=points, spaces=spaces
    )
    if stats is not None:
        message.indexed_point_count = stats.indexed_points
        message.index_state = (
            collections_pb2.INDEX_STATE_INDEXING if stats.indexing else collections_pb2.INDEX_STATE_INDEXED
        )
        message.shard_count = stats.shards
    return message


class CollectionServicer(collections_pb2_grpc.CollectionServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _message(self, spec: CollectionSpec) -> collections_pb2.Collection:
        documents, points = self.catalog.stats(spec.name, current_tenant())  # a tenant counts its own
        return collection_message(spec, documents, points, self.catalog.store.stats(spec.name))

    def CreateCollection(  # noqa: N802
        self, request: collections_pb2.CreateCollectionRequest, context: grpc.ServicerContext
    ) -> collections_pb2.Collection:
        c = request.config
        fields: dict[str, FieldType] = {}
        for f in c.indexed_fields:
            kind = FIELD_TYPE.from_wire(f.type)
            if kind is None:
                raise InvalidArgument(f"indexed field {f.key!r} has no valid type")
            fields[f.key] = kind
        opts = CollectionOptions(
            text_kind=c.text_encoder.kind,
            text_model=c.text_encoder.model,
            page_kind=c.page_encoder.kind,
            page_model=c.page_encoder.model,
            # max_words 0 is not a valid size, so 0 (unset in proto3) takes the default; overlap_words
            # has presence, since 0 overlap is a valid request.
            chunk_words=c.chunking.max_words or None,
            chunk_overlap=c.chunking.overlap_words if c.chunking.HasField("overlap_words") else None,
            indexed_fields=fields,
            token_storage=_optional_enum(VECTOR_STORAGE, c.compression.tokens, "compression.tokens", "vector storage"),
            dense_storage=_optional_enum(VECTOR_STORAGE, c.compression.dense, "compression.dense", "vector storage"),
            token_pool_factor=c.compression.token_pool_factor if c.compression.HasField("token_pool_factor") else None,
            dense_quantization=_optional_enum(
                DENSE_QUANTIZATION, c.compression.dense_quantization, "compression.dense_quantization", "quantisation"
            ),
            ocr=_optional_enum(OCR_MODE, c.ocr, "ocr", "mode"),
            on_duplicate=duplicate_policy(c.on_duplicate.policy),
            duplicate_threshold=c.on_duplicate.threshold,
        )
        return self._message(self.catalog.create(request.name, opts))

    def GetCollection(  # noqa: N802
        self, request: collections_pb2.GetCollectionRequest, context: grpc.ServicerContext
    ) -> collections_pb2.Collection:
        return self._message(self.catalog.store.get_spec(request.name))

    def ListCollections(  # noqa: N802
        self, request: collections_pb2.ListCollectionsRequest, context: grpc.ServicerContext
    ) -> collections_pb2.ListCollectionsResponse:
        principal = current_principal()
        specs = [s for s in self.catalog.store.list_specs() if principal.may_use(s.name)]
        return collections_pb2.ListCollectionsResponse(collections=[self._message(s) for s in specs])

    def DeleteCollection(  # noqa: N802
        self, request: collections_pb2.DeleteCollectionRequest, context: grpc.ServicerContext
    ) -> collections_pb2.DeleteCollectionResponse:
        self.catalog.store.drop_collection(request.name)
        return collections_pb2.DeleteCollectionResponse()

    def CreateSnapshot(  # noqa: N802
        self, request: collections_pb2.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> collections_pb2.Snapshot:
        return _snapshot(self.catalog.store.create_snapshot(request.collection))

    def ListSnapshots(  # noqa: N802
        self, request: collections_pb2.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> collections_pb2.ListSnapshotsResponse:
        snapshots = self.catalog.store.list_snapshots(request.collection)
        return collections_pb2.ListSnapshotsResponse(snapshots=[_snapshot(s) for s in snapshots])

    def RestoreSnapshot(  # noqa: N802
        self, request: collections_pb2.RestoreSnapshotRequest, context: grpc.ServicerContext
    ) -> collections_pb2.Collection:
        self.catalog.store.restore_snapshot(request.collection, request.name)
        return self._message(self.catalog.store.get_spec(request.collection))

    def FindDuplicates(  # noqa: N802
        self, request: collections_pb2.FindDuplicatesRequest, context: grpc.ServicerContext
    ) -> collections_pb2.FindDuplicatesResponse:
        spec = self.catalog.store.get_spec(request.collection)
        groups = find_duplicates(
            self.catalog.store,
            spec.name,
            list(spec.spaces),
            threshold=request.threshold,
            neighbours=request.neighbours or 10,
            tenant=current_tenant(),
            cross_document=request.cross_document,
        )
        return collections_pb2.FindDuplicatesResponse(
            groups=[
                collections_pb2.DuplicateGroup(
                    members=[
                        collections_pb2.DuplicateMember(
                            document_id=m.document_id, seq=m.seq, page=m.page, snippet=m.snippet
                        )
                        for m in g.members
                    ],
                    similarity=g.similarity,
                    document_ids=g.document_ids,
                )
                for g in groups
            ]
        )


def _snapshot(s: SnapshotInfo) -> collections_pb2.Snapshot:
    return collections_pb2.Snapshot(collection=s.collection, name=s.name, size_bytes=s.size_bytes)
