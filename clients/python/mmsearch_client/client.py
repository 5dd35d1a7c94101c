"""A typed Python client for mmsearch: deadlines on every call, retries on UNAVAILABLE for
idempotent calls, streaming ingest with per-item acknowledgements."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mmsearch.protocol.vocab import DenseQuantization, FieldType, Modality, VectorStorage
from mmsearch.protocol.wire import (
    DENSE_QUANTIZATION,
    DUPLICATE_POLICY,
    FIELD_TYPE,
    MODALITY,
    OCR_MODE,
    VECTOR_STORAGE,
    FilterError,
    WireEnum,
    make_filter,
)
from mmsearch.v1 import (
    classify_pb2,
    classify_pb2_grpc,
    collections_pb2,
    collections_pb2_grpc,
    common_pb2,
    embed_pb2,
    embed_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    pages_pb2,
    pages_pb2_grpc,
    rerank_pb2,
    rerank_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

from .channel import make_channel, target

T = TypeVar("T")


class MMSearchError(Exception):
    """A call failed; `code` is the gRPC status code, `details` the server's message unchanged."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def _filter(conditions: Mapping[str, Any] | common_pb2.Filter | None) -> common_pb2.Filter | None:
    try:
        return make_filter(conditions)
    except FilterError as exc:
        raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _top_k(top_k: int) -> int:
    """Checked here: protobuf would raise a bare ValueError or TypeError for what the server cannot receive."""
    return _whole(top_k, f"top_k must be a whole number from 1 to the server's max_top_k (0: 10), got {top_k!r}")


def _whole(value: int, message: str) -> int:
    """A uint32 field's value, or INVALID_ARGUMENT with `message`: protobuf raises a bare "Value out of
    range" ValueError (or a TypeError) that does not say which argument it was."""
    try:
        n = operator.index(value)  # numpy's integers too
    except TypeError:
        n = -1
    if isinstance(value, bool) or not 0 <= n < 2**31:
        raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, message)
    return n


def _count(name: str, value: int) -> int:
    return _whole(value, f"{name} must be a whole number, 0 or more, got {value!r}")


def _member(wire: WireEnum[Any], name: str, value: str) -> int:
    """An enum argument's wire number. An unknown name would go as UNSPECIFIED, which means the default
    (keep, auto, ...) where the field is optional: the mistake would pass silently."""
    number = wire.to_wire(value)
    if not number:
        choices = ", ".join(wire.vocab)
        raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, f"{name} {value!r} is not one of {choices}")
    return number


class Client:
    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        timeout: float = 60.0,
        retries: int = 3,
        *,
        api_key: str | None = None,
        tls: bool = False,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        """api_key: sent as a Bearer token on every call (default: the MMSEARCH_API_KEY variable).
        TLS when `tls` or a TLS file is given: tls_ca verifies the server (else the system's roots),
        tls_cert + tls_key identify this client to a server that requires mutual TLS."""
        self.address = target(address)  # what is dialled, as error messages name it
        self.timeout = timeout
        self.retries = retries
        limit = 256 * 1024 * 1024
        self.channel = make_channel(
            self.address,
            api_key=api_key,
            tls=tls,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)],
        )
        self.collections = collections_pb2_grpc.CollectionServiceStub(self.channel)
        self.ingest_stub = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.search_stub = search_pb2_grpc.SearchServiceStub(self.channel)
        self.rerank_stub = rerank_pb2_grpc.RerankServiceStub(self.channel)
        self.embed_stub = embed_pb2_grpc.EmbedServiceStub(self.channel)
        self.info_stub = embed_pb2_grpc.InfoServiceStub(self.channel)
        self.pages_stub = pages_pb2_grpc.PageServiceStub(self.channel)
        self.classify_stub = classify_pb2_grpc.ClassifyServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, fn: Callable[..., T], request: Any, *, retry: bool = True, timeout: float | None = None) -> T:
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                return fn(request, timeout=timeout or self.timeout)
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt + 1 < attempts:
                    time.sleep(min(2.0, 0.2 * 2**attempt))
                    continue
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    def _error(self, exc: grpc.RpcError) -> MMSearchError:
        code, details = exc.code(), exc.details() or ""
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"cannot reach mmsearch at {self.address}: {details}"
        return MMSearchError(code, details)

    # -- health and info
    def health(self, timeout: float = 5.0) -> str:
        r = self._call(self.health_stub.Check, health_pb2.HealthCheckRequest(), retry=False, timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    def info(self) -> embed_pb2.GetInfoResponse:
        return self._call(self.info_stub.GetInfo, embed_pb2.GetInfoRequest())

    # -- collections
    def create_collection(
        self,
        name: str,
        *,
        text_model: str = "",
        text_kind: str = "",
        indexed_fields: Mapping[str, FieldType | str] | None = None,
        max_words: int = 0,
        overlap_words: int | None = None,
        compression: Mapping[str, str | int] | None = None,
        page_kind: str = "",
        page_model: str = "",
        ocr: str = "",
        on_duplicate: str = "",
        duplicate_threshold: float = 0.0,
    ) -> collections_pb2.Collection:
        """max_words 0 and overlap_words None take the server's defaults; overlap_words=0: no overlap.

        An unknown field type goes as UNSPECIFIED, which the server rejects.

        compression: any of {"tokens": storage, "dense": storage, "token_pool_factor": n,
        "dense_quantization": "int8" | "none"}, storage one of float32, float16, turbo8, turbo4; what is
        left out takes the server's default for each encoder. Fixed at creation: to change it, delete
        the collection and create it again.

        page_kind/page_model: a page encoder ("colpali" and its model; default: OCR + the text model).
        ocr: "auto" (default), "always" or "never" (README, "OCR").
        on_duplicate / duplicate_threshold: the default near-duplicate handling of its ingests
        (keep, skip, replace; see `ingest`).

        An unknown ocr mode, duplicate policy or compression name, and a negative or fractional
        max_words, overlap_words or token_pool_factor, raise MMSearchError(INVALID_ARGUMENT) naming it
        here (as UNSPECIFIED an unknown name would silently take the default)."""
        chunking = collections_pb2.ChunkingOptions(max_words=_count("max_words", max_words))
        if overlap_words is not None:
            chunking.overlap_words = _count("overlap_words", overlap_words)
        try:
            compression_message = compression_options(compression or {})
        except ValueError as exc:
            raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        config = collections_pb2.CollectionConfig(
            text_encoder=collections_pb2.EncoderSpec(kind=text_kind, model=text_model),
            chunking=chunking,
            indexed_fields=[
                collections_pb2.IndexedField(key=k, type=FIELD_TYPE.to_wire(v))
                for k, v in (indexed_fields or {}).items()
            ],
            compression=compression_message,
            page_encoder=collections_pb2.EncoderSpec(kind=page_kind, model=page_model),
            ocr=_member(OCR_MODE, "ocr", ocr) if ocr else 0,
            on_duplicate=_duplicate_options(on_duplicate, duplicate_threshold),
        )
        req = collections_pb2.CreateCollectionRequest(name=name, config=config)
        return self._call(self.collections.CreateCollection, req, retry=False)

    def find_duplicates(
        self, collection: str, *, threshold: float = 0.0, neighbours: int = 0, cross_document: bool = False
    ) -> collections_pb2.FindDuplicatesResponse:
        """Groups of near-duplicate passages/pages over the whole collection (threshold 0: the
        server's default, 0.95 cosine)."""
        req = collections_pb2.FindDuplicatesRequest(
            collection=collection,
            threshold=threshold,
            neighbours=_count("neighbours", neighbours),
            cross_document=cross_document,
        )
        return self._call(self.collections.FindDuplicates, req)

    def get_collection(self, name: str) -> collections_pb2.Collection:
        return self._call(self.collections.GetCollection, collections_pb2.GetCollectionRequest(name=name))

    def list_collections(self) -> list[collections_pb2.Collection]:
        return list(self._call(self.collections.ListCollections, collections_pb2.ListCollectionsRequest()).collections)

    def delete_collection(self, name: str) -> None:
        self._call(self.collections.DeleteCollection, collections_pb2.DeleteCollectionRequest(name=name))

    def create_snapshot(self, collection: str) -> collections_pb2.Snapshot:
        """A consistent copy of the collection, kept by the server; restore it by its name."""
        return self._call(  # type: ignore[no-any-return]
            self.collections.CreateSnapshot, collections_pb2.CreateSnapshotRequest(collection=collection)
        )

    def list_snapshots(self, collection: str) -> list[collections_pb2.Snapshot]:
        request = collections_pb2.ListSnapshotsRequest(collection=collection)
        return list(self._call(self.collections.ListSnapshots, request).snapshots)

    def restore_snapshot(self, collection: str, name: str) -> collections_pb2.Collection:
        """Replaces the collection (or brings back a deleted one) with the snapshot."""
        request = collections_pb2.RestoreSnapshotRequest(collection=collection, name=name)
        return self._call(self.collections.RestoreSnapshot, request)  # type: ignore[no-any-return]

    # -- documents

    def get_page(self, collection: str, document_id: str, page: int = 1) -> pages_pb2.Page:
        """A kept page (1-based): its image (WebP), thumbnail, text and word boxes. NOT_FOUND when the
        document or the page is not there or its image was not kept."""
        page = _count("page", page)
        request = pages_pb2.GetPageRequest(collection=collection, document_id=document_id, page=page)
        return self._call(self.pages_stub.GetPage, request)  # type: ignore[no-any-return]

    def get_document(self, collection: str, document_id: str, *, images: bool = False) -> pages_pb2.Document:
        """A document's metadata and its pages' text, words and thumbnails (full images when `images`)."""
        request = pages_pb2.GetDocumentRequest(collection=collection, document_id=document_id, images=images)
        return self._call(self.pages_stub.GetDocument, request)  # type: ignore[no-any-return]

    def ingest(
        self,
        collection: str,
        items: Iterable[ingest_pb2.IngestItem],
        *,
        create: bool = True,
        timeout: float | None = None,
        on_duplicate: str = "",
        duplicate_threshold: float = 0.0,
        report_progress: bool = False,
    ) -> Iterator[ingest_pb2.IngestAck]:
        """Streams items; yields one acknowledgement per item, in order. Not retried (the stream
        is not replayable); re-running an ingest is safe because ids replace.

        on_duplicate: keep, skip or replace ("" : the collection's setting) an item whose every point
        is at least duplicate_threshold (0: the server's default) similar to another document's.
        report_progress: also yield progress acknowledgements (`ack.HasField("progress")`: points
        stored so far of an unfinished item, e.g. a PDF's pages) before an item's result."""
        dup = _duplicate_options(on_duplicate, duplicate_threshold)
        unsent: list[str] = []  # why an item could not be sent (gRPC would say only UNKNOWN)

        def requests() -> Iterator[ingest_pb2.IngestRequest]:
            for n, i in enumerate(items):
                try:
                    request = ingest_pb2.IngestRequest(
                        collection=collection,
                        item=i,
                        create_collection=create,
                        on_duplicate=dup,
                        report_progress=report_progress,
                    )
                except Exception as exc:  # e.g. metadata nested deeper than protobuf encodes
                    unsent.append(f"item {n} ({getattr(i, 'id', '?')!r}) cannot be encoded: {exc}")
                    return  # ends the stream: the items before it are still acknowledged
                yield request

        try:
            yield from self.ingest_stub.Ingest(requests(), timeout=timeout)
        except grpc.RpcError as exc:
            if unsent:
                raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, unsent[0]) from None
            raise self._error(exc) from None
        if unsent:
            raise MMSearchError(grpc.StatusCode.INVALID_ARGUMENT, unsent[0])

    def delete(
        self, collection: str, *, ids: Sequence[str] = (), filter: Mapping[str, Any] | common_pb2.Filter | None = None
    ) -> int:
        req = ingest_pb2.DeleteRequest(collection=collection, ids=list(ids), filter=_filter(filter))
        return self._call(self.ingest_stub.Delete, req).deleted_points

    def similarity_map(self, collection: str, document_id: str, page: int, query: str) -> pages_pb2.SimilarityMap:
        """How each patch of a ColPali page answers each query token (a heat map per token)."""
        page = _count("page", page)
        req = pages_pb2.GetSimilarityMapRequest(collection=collection, document_id=document_id, page=page, query=query)
        return self._call(self.pages_stub.GetSimilarityMap, req)

    def search(
        self,
        collection: str,
        text: str,
        *,
        top_k: int = 10,
        filter: Mapping[str, Any] | common_pb2.Filter | None = None,
        modalities: Sequence[Modality | str] = (),
        score_threshold: float | None = None,
        explain: bool = False,
        ranking: search_pb2.RankingOptions | None = None,
        all_passages: bool = False,
        image: tuple[bytes, str] | None = None,
        document_ids: Sequence[str] = (),
        thumbnails: bool = False,
        full_text: bool = False,
    ) -> search_pb2.SearchResponse:
        """Text and/or an image (bytes, mime type) as the query. thumbnails: each page result carries
        its kept page's WebP thumbnail (SearchResult.thumbnail). full_text: each result's snippet is its
        whole passage or page text."""
        query = search_pb2.Query(text=text)
        if image is not None:
            query.image.CopyFrom(common_pb2.Image(data=image[0], mime_type=image[1]))
        req = search_pb2.SearchRequest(
            collection=collection,
            query=query,
            top_k=_top_k(top_k),
            filter=_filter(filter),
            modalities=[_member(MODALITY, "modality", m) for m in modalities],
            explain=explain,
            ranking=ranking,
            all_passages=all_passages,
            document_ids=list(document_ids),
            thumbnails=thumbnails,
            full_text=full_text,
        )
        if score_threshold is not None:
            req.score_threshold = score_threshold
        return self._call(self.search_stub.Search, req)

    def rerank(
        self, query: str, documents: Sequence[str], *, top_n: int = 0, return_documents: bool = False
    ) -> rerank_pb2.RerankResponse:
        req = rerank_pb2.RerankRequest(
            query=query,
            documents=[rerank_pb2.RerankDocument(text=d) for d in documents],
            top_n=_count("top_n", top_n),
            return_documents=return_documents,
        )
        return self._call(self.rerank_stub.Rerank, req)

    def embed(
        self, texts: Sequence[str], *, as_query: bool = False, multi_vector: bool = False
    ) -> embed_pb2.EmbedResponse:
        req = embed_pb2.EmbedRequest(
            inputs=[embed_pb2.EmbedInput(text=t) for t in texts], as_query=as_query, multi_vector=multi_vector
        )
        return self._call(self.embed_stub.Embed, req)

    def classify(
        self,
        text: str,
        labels: Sequence[str | tuple[str, str]],
        *,
        image: tuple[bytes, str] | None = None,
        collection: str = "",
        threshold: float | None = None,
        cross_encoder: bool = False,
    ) -> classify_pb2.ClassifyResponse:
        """Zero-shot: the text (or a page image, read by OCR) scored against labels, each a name or
        (name, description); best first."""
        req = classify_pb2.ClassifyRequest(collection=collection, cross_encoder=cross_encoder)
        if image is not None:
            req.image.CopyFrom(common_pb2.Image(data=image[0], mime_type=image[1]))
        else:
            req.text = text
        for label in labels:
            name, description = (label, "") if isinstance(label, str) else label
            req.labels.add(name=name, description=description)
        if threshold is not None:
            req.threshold = threshold
        return self._call(self.classify_stub.Classify, req)


def _duplicate_options(policy: str, threshold: float) -> common_pb2.DuplicateOptions:
    """policy "" and threshold 0 take the collection's (or the server's) setting. The threshold is the
    server's to check (an ingest acknowledges each item INVALID_ARGUMENT; the CLI checks it once)."""
    number = _member(DUPLICATE_POLICY, "on_duplicate", policy) if policy else 0
    return common_pb2.DuplicateOptions(policy=number, threshold=threshold)


def compression_options(compression: Mapping[str, str | int]) -> collections_pb2.CompressionOptions:
    """{"tokens": "turbo4", "dense": "float16", "token_pool_factor": 3, "dense_quantization": "int8"} as the
    message; unknown keys or names raise ValueError here rather than reaching the server as UNSPECIFIED."""
    unknown = set(compression) - {"tokens", "dense", "token_pool_factor", "dense_quantization"}
    if unknown:
        raise ValueError(f"unknown compression keys: {', '.join(sorted(unknown))}")
    msg = collections_pb2.CompressionOptions()
    for key in ("tokens", "dense"):
        if key in compression:
            number = VECTOR_STORAGE.to_wire(str(compression[key]).lower())
            if not number:
                names = ", ".join(VectorStorage)
                raise ValueError(f"compression {key} {compression[key]!r}: use {names}")
            setattr(msg, key, number)
    if "token_pool_factor" in compression:
        raw = compression["token_pool_factor"]
        try:  # "3" was taken before these checks, and numpy's integers are
            factor = int(raw) if isinstance(raw, str) else operator.index(raw)
        except (TypeError, ValueError):
            factor = -1
        if isinstance(raw, bool) or not 0 <= factor < 2**31:  # what protobuf cannot send; the server checks the rest
            raise ValueError(f"compression token_pool_factor must be a whole number (1: no pooling), got {raw!r}")
        msg.token_pool_factor = factor
    if "dense_quantization" in compression:
        quantisation = DENSE_QUANTIZATION.to_wire(str(compression["dense_quantization"]).lower())
        if not quantisation:
            names = ", ".join(DenseQuantization)
            raise ValueError(f"compression dense_quantization {compression['dense_quantization']!r}: use {names}")
        msg.dense_quantization = quantisation
    return msg
