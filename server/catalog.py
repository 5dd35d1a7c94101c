"""The catalog of collections: creating one (defaults, validation), the models a collection's data
needs (its encoders, OCR, the cross-encoder) and its statistics."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from mmsearch.encoders.base import Capability, Encoder, EncoderError
from mmsearch.encoders.cross import CrossEncoderScorer
from mmsearch.encoders.models import canonical_model
from mmsearch.encoders.pool import EncoderPool
from mmsearch.protocol.vocab import DenseQuantization, FieldType, Modality, OcrMode

from .dedup import check_threshold
from .errors import FailedPrecondition, InvalidArgument, PermissionDenied
from .ingest.ocr import OCREngine, get_ocr
from .settings import Settings
from .storage.base import ROWCOL, STORAGES, CollectionSpec, Compression, Cond, SpaceSpec, Store, Where

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")  # fullmatch: `$` would let a trailing newline in


@dataclass
class CollectionOptions:
    """What a create request asks for; empty strings and None take the server's defaults (None, not 0,
    since an overlap of 0 words is a valid request)."""

    text_kind: str = ""
    text_model: str = ""
    page_kind: str = ""
    page_model: str = ""
    chunk_words: int | None = None
    chunk_overlap: int | None = None
    indexed_fields: dict[str, FieldType] | None = None
    # Compression: "" / None take the default for each space's encoder (settings).
    token_storage: str = ""
    dense_storage: str = ""
    token_pool_factor: int | None = None
    dense_quantization: str = ""  # a DenseQuantization value
    ocr: str = ""  # an OcrMode value; "" takes auto
    on_duplicate: str = ""  # an OnDuplicate value; "" keeps duplicates
    duplicate_threshold: float = 0.0


class Catalog:
    """The server's collections (in `store`) and the models that fill and search them (`encoders`)."""

    def __init__(self, store: Store, encoders: EncoderPool, settings: Settings) -> None:
        self.store = store
        self.encoders = encoders
        self.settings = settings
        self._ce: CrossEncoderScorer | None = None
        self._ce_lock = threading.Lock()

    def create(self, name: str, opts: CollectionOptions) -> CollectionSpec:
        if not _NAME.fullmatch(name or ""):
            raise InvalidArgument(
                f"collection name {name!r} is invalid: 1-64 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        words = self.settings.chunk_words if opts.chunk_words is None else opts.chunk_words
        if opts.chunk_overlap is not None:
            overlap = opts.chunk_overlap
        elif opts.chunk_words is not None:
            # The server's share of overlap at the passage size asked for (40 of 180 words: 50 -> 11):
            # 40 shared words of 50 would store every word five times.
            overlap = words * self.settings.chunk_overlap // self.settings.chunk_words  # >= 8 (settings)
        else:
            overlap = self.settings.chunk_overlap
        if words < 8 or words > 4096:
            raise InvalidArgument(f"chunking.max_words must be between 8 and 4096, got {words}")
        if overlap < 0:
            raise InvalidArgument(f"chunking.overlap_words must be 0 or more, got {overlap}")
        if overlap >= words:
            given = "" if opts.chunk_overlap is not None else ", the server's default; set it explicitly"
            raise InvalidArgument(f"chunking.overlap_words ({overlap}{given}) must be smaller than max_words ({words})")
        fields: dict[str, str] = {}
        for key, kind in (opts.indexed_fields or {}).items():
            try:
                fields[key] = FieldType(kind)
            except ValueError:
                *most, last = FieldType
                raise InvalidArgument(
                    f"indexed field {key!r} has no valid type ({', '.join(most)} or {last})"
                ) from None
        page_kind = opts.page_kind or ""
        if page_kind in ("ocr", "ocr-text"):  # explicit name of the default
            page_kind = ""
        if page_kind and page_kind != "colpali":
            raise InvalidArgument(
                f"unknown page encoder {page_kind!r}: use 'colpali' or leave empty for OCR + text model"
            )
        if page_kind and not opts.page_model:
            raise InvalidArgument("page_encoder.model is required for colpali (a local directory or cached model id)")
        text_model = self.check_model(opts.text_model, "text_encoder")
        page_model = self.check_model(opts.page_model if page_kind else "", "page_encoder")
        for what, storage in (("tokens", opts.token_storage), ("dense", opts.dense_storage)):
            if storage and storage not in STORAGES:
                raise InvalidArgument(f"compression.{what} {storage!r} is not one of {', '.join(STORAGES)}")
        if opts.dense_quantization and opts.dense_quantization not in set(DenseQuantization):
            choices = ", ".join(DenseQuantization)
            raise InvalidArgument(f"compression.dense_quantization {opts.dense_quantization!r} is not one of {choices}")
        ocr = opts.ocr or OcrMode.AUTO
        if ocr not in set(OcrMode):
            raise InvalidArgument(f"ocr {ocr!r} is not one of {', '.join(OcrMode)}")
        if ocr == OcrMode.NEVER and not page_kind:
            # Without an image encoder a page is found only by its words: never would leave every scan
            # unsearchable, and auto already takes a PDF's text layer without OCR.
            raise InvalidArgument(
                "ocr never needs a page encoder that reads the image (page_encoder colpali): without one, "
                "pages are found only by their words; use ocr auto (PDF text layers are never OCR'd)"
            )
        factor = opts.token_pool_factor
        if factor is not None and not 1 <= factor <= 64:
            raise InvalidArgument(f"compression.token_pool_factor must be between 1 and 64, got {factor}")
        spec = CollectionSpec(
            name=name,
            text_kind=opts.text_kind or self.settings.text_kind,
            text_model=text_model or self.settings.text_model,
            page_kind=page_kind,
            page_model=page_model,
            chunk_words=words,
            chunk_overlap=overlap,
            indexed_fields=fields,
            ocr=ocr,
            on_duplicate=opts.on_duplicate,
            duplicate_threshold=check_threshold(opts.duplicate_threshold) if opts.on_duplicate else 0.0,
        )
        encoder = self.encoder(spec.text_kind, spec.text_model)
        # Pages without a ColPali model are OCR'd into the text space, beside the passages.
        text_modalities: list[str] = [Modality.TEXT] if page_kind else [Modality.TEXT, Modality.PAGE]
        spec.spaces["text"] = SpaceSpec(
            "text", spec.text_kind, spec.text_model, encoder.dim, text_modalities, self._compression("text", opts)
        )
        if page_kind:
            page_encoder = self.encoder(page_kind, spec.page_model)
            spec.spaces["page"] = SpaceSpec(
                "page", page_kind, spec.page_model, page_encoder.dim, [Modality.PAGE], self._compression("page", opts),
                prefetch=ROWCOL if Capability.LATE_INTERACTION in page_encoder.capabilities else "",
            )  # fmt: skip
        self.store.create_collection(spec)
        return spec

    def _compression(self, space: str, opts: CollectionOptions) -> Compression:
        """What the request chose, else the server's default for the space's encoder: the text model's
        tokens and ColPali's patches differ in number and dimension (docs/benchmarks.md)."""
        s = self.settings
        tokens, factor = (
            (s.text_token_storage, s.text_token_pool_factor)
            if space == "text"
            else (s.page_token_storage, s.page_token_pool_factor)
        )
        return Compression(
            tokens=opts.token_storage or tokens,
            dense=opts.dense_storage or s.dense_storage,
            token_pool_factor=factor if opts.token_pool_factor is None else opts.token_pool_factor,
            dense_quantization=opts.dense_quantization or s.dense_quantization,
        )

    def check_model(self, model: str, what: str = "encoder") -> str:
        """Clients choose only among the models the operator configured (the defaults and
        allowed_models): anything else is refused before the path is looked at, so a client can
        neither make the server load a directory of its choosing nor learn what exists on disk.
        Returns the name to use and keep: a local directory as its absolute path (the settings
        hold theirs so too, encoders/models.py `canonical_model`)."""
        s = self.settings
        allowed = {s.text_model, s.cross_encoder_model, *s.allowed_models}
        if not model or model in allowed:
            return model
        # ./my-model where the operator allowed it: compared as strings, the disk untouched (the
        # answer must not depend on what exists there), and no ~user (that looks up accounts).
        absolute = os.path.abspath(model)
        if not model.startswith("~") and absolute in allowed:
            return absolute
        if "*" in allowed:
            return canonical_model(model)
        raise PermissionDenied(
            f"{what}.model {model!r} is not a model this server offers; the operator lists the allowed ones "
            "in allowed_models (--allowed-models)"
        )

    def client_encoder(self, kind: str = "", model: str = "") -> Encoder:
        """An encoder a request names (Embed): an allowed model, else PermissionDenied."""
        return self.encoder(kind, self.check_model(model))

    def encoder(self, kind: str = "", model: str = "") -> Encoder:
        """An encoder by kind and model; empty ones take the server's default text encoder's. One
        that cannot load is FailedPrecondition: the server is not set up for it."""
        try:
            return self.encoders.get(kind or self.settings.text_kind, model or self.settings.text_model)
        except EncoderError as exc:
            raise FailedPrecondition(str(exc)) from exc

    def text_encoder(self, spec: CollectionSpec) -> Encoder:
        return self.encoder(spec.text_kind, spec.text_model)

    def cross_encoder(self) -> CrossEncoderScorer:
        model = self.settings.cross_encoder_model
        if not model:
            raise FailedPrecondition(
                "no cross-encoder is configured: start the server with --cross-encoder-model PATH "
                "(a sentence-transformers CrossEncoder folder or a cached model id)"
            )
        with self._ce_lock:
            if self._ce is None:
                try:
                    self._ce = CrossEncoderScorer(model, self.settings.rerank_device or self.encoders.device)
                except EncoderError as exc:
                    raise FailedPrecondition(str(exc)) from exc
            return self._ce

    def ocr(self) -> OCREngine:
        s = self.settings
        return get_ocr(s.ocr_engine, s.ocr_workers, s.ocr_device, s.ocr_script, s.ocr_detector, s.data_dir / "models")

    def page_encoder(self, spec: CollectionSpec) -> Encoder:
        return self.encoder(spec.page_kind, spec.page_model)

    def stats(self, name: str, tenant: str | None = None) -> tuple[int, int]:
        """(documents, points), of `tenant` only when given. Every document has exactly one point
        with seq 0."""
        documents = Where(must=[Cond(key="seq", match=0)]).for_tenant(tenant)
        return self.store.count(name, documents), self.store.count(name, Where().for_tenant(tenant))
