"""The ingest stream: items in, acknowledgements out, in order.

Items are gathered into batches (whatever has arrived, up to `encode_batch_size` passages), encoded
in one call, and written by a single writer thread while the next batch encodes, so the encoder
(the bottleneck) never waits for storage. An item is acknowledged ok only after its points are
durably stored; an item that fails is acknowledged with its reason and the stream goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mmsearch.v1 import ingest_pb2

from ..collections import CollectionOptions, Collections
from ..errors import InvalidArgument, MMSearchError, NotFound, Unimplemented, status_code
from ..filters import metadata_to_dict
from ..ranking.lexical import document_terms
from ..storage.base import CollectionSpec, Cond, PointData, Where, point_id
from .text import decode_utf8, split_passages

log = logging.getLogger(__name__)
_END = object()
MAX_ID_CHARS = 512


@dataclass
class _Item:
    seq: int
    id: str
    source: str
    texts: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    error: MMSearchError | None = None
    points: list[PointData] = field(default_factory=list)


class Ingestor:
    def __init__(self, collections: Collections, batch_size: int) -> None:
        self.collections = collections
        self.store = collections.store
        self.batch_size = batch_size

    def run(self, requests: Iterator[ingest_pb2.IngestRequest]) -> Iterator[ingest_pb2.IngestAck]:
        inbox: queue.Queue = queue.Queue(maxsize=4 * self.batch_size)
        reader = threading.Thread(target=_pump, args=(requests, inbox), daemon=True)
        reader.start()
        state: dict = {"spec": None}
        seq = 0
        pending: tuple[Future, list[_Item]] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-writer") as writer:
            while True:
                try:
                    first = inbox.get_nowait()
                except queue.Empty:
                    if pending:  # nothing more has arrived: answer what is written before waiting
                        yield from self._finish(*pending)
                        pending = None
                    first = inbox.get()
                if first is _END:
                    break
                if isinstance(first, BaseException):
                    raise first
                batch = [first]
                while len(batch) < self.batch_size:
                    try:
                        nxt = inbox.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _END or isinstance(nxt, BaseException):
                        inbox.put(nxt)  # handle at the top of the loop
                        break
                    batch.append(nxt)
                items = []
                for req in batch:
                    items.append(self._parse(seq, req, state))
                    seq += 1
                self._encode(items, state["spec"])
                future = writer.submit(self._write, items, state["spec"])
                if pending:
                    yield from self._finish(*pending)
                pending = (future, items)
            if pending:
                yield from self._finish(*pending)

    def _parse(self, seq: int, req: ingest_pb2.IngestRequest, state: dict) -> _Item:
        it = req.item
        item = _Item(seq=seq, id=it.id, source=it.source)
        spec = state["spec"]
        if spec is None:  # an unknown collection fails the whole stream (NOT_FOUND), not each item
            spec = state["spec"] = self._collection(req)
        try:
            if req.collection != spec.name:
                raise InvalidArgument(f"collection changed within the stream ({spec.name!r} -> {req.collection!r})")
            if not it.id.strip():
                raise InvalidArgument("item has no id")
            if len(it.id) > MAX_ID_CHARS:
                raise InvalidArgument(f"item id is longer than {MAX_ID_CHARS} characters")
            item.metadata = metadata_to_dict(it.metadata)
            kind = it.WhichOneof("content")
            if kind == "text":
                text = it.text
            elif kind == "text_file":
                text = decode_utf8(it.text_file.data, f"text of item {it.id!r}")
            elif kind in ("image", "pdf"):
                raise Unimplemented(
                    f"item {it.id!r}: page images and PDFs are not supported by this server version yet"
                )
            else:
                raise InvalidArgument(f"item {it.id!r} has no content (set text, text_file, image or pdf)")
            passages = split_passages(text, spec.chunk_words, spec.chunk_overlap)
            if not passages:
                raise InvalidArgument(f"item {it.id!r} has no text")
            item.texts = [p.text for p in passages]
        except MMSearchError as exc:
            item.error = exc
        return item

    def _collection(self, req: ingest_pb2.IngestRequest) -> CollectionSpec:
        try:
            return self.collections.store.get_spec(req.collection)
        except NotFound:
            if not req.create_collection:
                raise
        try:
            return self.collections.create(req.collection, CollectionOptions())
        except MMSearchError:
            return self.collections.store.get_spec(req.collection)  # created meanwhile by another stream

    def _encode(self, items: list[_Item], spec: CollectionSpec | None) -> None:
        todo = [i for i in items if i.error is None]
        if not todo or spec is None:
            return
        encoder = self.collections.text_encoder(spec)
        texts = [t for i in todo for t in i.texts]
        try:
            encoded = encoder.encode_texts(texts, as_query=False)
        except Exception as exc:  # one bad input must not sink the batch: retry one by one
            log.warning("batch encode failed (%s); encoding items one by one", exc)
            for i in todo:
                try:
                    self._points(i, encoder.encode_texts(i.texts, as_query=False))
                except Exception as item_exc:
                    i.error = InvalidArgument(f"item {i.id!r} could not be encoded: {item_exc}")
            return
        pos = 0
        for i in todo:
            self._points(i, encoded[pos : pos + len(i.texts)])
            pos += len(i.texts)

    def _points(self, item: _Item, encoded: list) -> None:
        item.points = [
            PointData(
                id=point_id(item.id, n),
                space="text",
                dense=e.pooled,
                tokens=e.tokens,
                sparse=document_terms(text),
                payload={
                    "doc_id": item.id,
                    "seq": n,
                    "modality": "text",
                    "passage": n,
                    "page": 0,
                    "text": text,
                    "tokens": e.token_strings,
                    "meta": item.metadata,
                },
            )
            for n, (text, e) in enumerate(zip(item.texts, encoded, strict=True))
        ]

    def _write(self, items: list[_Item], spec: CollectionSpec | None) -> None:
        ok = [i for i in items if i.error is None and i.points]
        if not ok or spec is None:
            return
        self.store.upsert(spec.name, [p for i in ok for p in i.points])
        # New points first, then the old document's extra points: a crash in between leaves the
        # new version plus stale tail passages, never a lost document.
        for i in ok:
            self.store.delete(
                spec.name,
                Where(must=[Cond(key="doc_id", match=i.id), Cond(key="seq", range={"gte": len(i.points)})]),
            )

    def _finish(self, future: Future, items: list[_Item]) -> Iterator[ingest_pb2.IngestAck]:
        write_error: BaseException | None = None
        try:
            future.result()
        except BaseException as exc:  # storage failed: nothing in this batch is acknowledged ok
            log.exception("writing an ingest batch failed")
            write_error = exc
        for i in items:
            ack = ingest_pb2.IngestAck(sequence=i.seq, id=i.id, source=i.source)
            error = i.error
            if error is None and write_error is not None:
                error = write_error if isinstance(write_error, MMSearchError) else None
                ack.error_code = status_code(error).name if error else "INTERNAL"
                ack.error = str(error) if error else "storage write failed; the item was not stored"
            elif error is not None:
                ack.error_code = status_code(error).name
                ack.error = str(error)
            else:
                ack.ok = True
                ack.points = len(i.points)
            yield ack


def _pump(requests: Iterator, inbox: queue.Queue) -> None:
    try:
        for req in requests:
            inbox.put(req)
        inbox.put(_END)
    except BaseException as exc:  # the client cancelled or the stream broke
        inbox.put(exc)
