"""Wiring: settings -> store, encoders, services -> a started gRPC server."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from threadpoolctl import threadpool_limits

from mmsearch.encoders.base import EncoderError
from mmsearch.encoders.pool import EncoderPool

from .catalog import Catalog
from .errors import MMSearchError
from .ingest.ocr import close_ocr
from .ingest.pdf_worker import close_pdf_readers
from .interceptors import ErrorInterceptor
from .limits import Admission, AdmissionInterceptor, ClassLimit
from .reads import UnaryReadInterceptor
from .security.interceptor import SecurityInterceptor
from .security.listener import (
    ListenError,
    bind,
    certificates,
    check_exposure,
    check_listen,
    lock_data_dir,
    preflight,
    security_interceptor,
)
from .services import SERVICE_NAMES, add_services
from .settings import Settings
from .storage.base import Store
from .web.connect import HandlerRegistry
from .web.gateway import Gateway, HttpServer
from .web.https import HttpsServer

log = logging.getLogger("mmsearch")


def make_store(settings: Settings) -> Store:
    if settings.storage == "remote":
        from .storage.remote import RemoteStore
        from .storage.remote_options import RemoteOptions

        return RemoteStore(
            settings.qdrant_url,
            settings.qdrant_api_key,
            settings.qdrant_prefer_grpc,
            RemoteOptions(
                shard_number=settings.qdrant_shard_number,
                replication_factor=settings.qdrant_replication_factor,
                hnsw_m=settings.qdrant_hnsw_m,
                hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
                on_disk=settings.qdrant_on_disk,
                hnsw_on_disk=settings.qdrant_hnsw_on_disk,
                hnsw_ef=settings.qdrant_hnsw_ef,
                quantization=settings.qdrant_quantization,
                product_compression=settings.qdrant_product_compression,
                turbo_bits=settings.qdrant_turbo_bits,
                rescore=settings.qdrant_rescore,
                oversampling=settings.qdrant_oversampling,
            ),
            sweep_grace_s=settings.remote_sweep_grace_s,
            data_dir=settings.data_dir,
        )
    from .storage.edge import EdgeStore, ShardOptions

    shards = ShardOptions(
        settings.seal_points,
        settings.max_shard_points,
        settings.hnsw_ef,
        settings.index_build,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_construct=settings.hnsw_ef_construct,
    )
    return EdgeStore(
        settings.data_dir, settings.flush_interval_s, shards, settings.min_free_disk_mb, prewarm=settings.prewarm
    )


@dataclass
class App:
    server: grpc.Server
    port: int
    store: Store
    encoders: EncoderPool
    health: health.HealthServicer
    security: SecurityInterceptor
    http: HttpServer | HttpsServer | None = None

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops accepting calls, gives in-flight ones `grace` seconds, cancels the rest (their work
        stops at the next page or batch; unacknowledged documents are rolled back), then flushes
        and closes the store."""
        self.health.enter_graceful_shutdown()
        if self.http is not None:
            self.http.stop()
        self.server.stop(grace).wait()
        close_ocr()  # the OCR worker processes (server/ingest/ocr_pool.py)
        close_pdf_readers()  # the PDF reader process (server/ingest/pdf_worker.py)
        self.store.close()


def make_encoders(settings: Settings) -> EncoderPool:
    # The text backend applies to the sentence-transformers kind; its ONNX export is cached beside the data.
    text = {"backend": settings.text_backend, "cache_dir": settings.data_dir / "models"}
    return EncoderPool(
        settings.device,
        {"sentence-transformers": text, "colpali": {"page_batch_mb": settings.page_batch_mb}},
        devices={
            "sentence-transformers": settings.text_device,
            "fake": settings.text_device,
            "colpali": settings.page_device,
        },
        max_encoders=settings.max_encoders,
        pinned=[(settings.text_kind, settings.text_model)],
    )


def make_admission(settings: Settings) -> Admission:
    s = settings
    return Admission(
        requests=ClassLimit("calls", s.workers, s.max_queued_requests, s.request_queue_timeout_s, "workers"),
        ingest=ClassLimit("ingest streams", s.max_ingest_streams, setting="max_ingest_streams"),
        streams=ClassLimit("streaming calls", s.max_other_streams, setting="max_other_streams"),
        health_threads=s.health_threads,
        pending_reads=s.max_pending_reads,
    )


def create_server(settings: Settings, store: Store | None = None, encoders: EncoderPool | None = None) -> App:
    """Builds and starts the server; returns it with the port it bound (settings.port 0 = any)."""
    check_exposure(settings)
    # numpy/scipy's BLAS on one thread: the server's own math is small per call (token pooling, fusion,
    # explanations) and runs beside the encoder's threads and other requests. OpenBLAS's threads then
    # only wait for each other: Ward pooling of a 101-token passage measured 1.4 ms on one thread and
    # up to 17 ms with two while another process used the second core. Torch keeps its own threads.
    threadpool_limits(1, user_api="blas")
    # A bad key file or certificate stops the start before anything opens.
    security = security_interceptor(settings)
    tls = certificates(settings)
    store = store or make_store(settings)
    for spec in store.list_specs():  # before serving: nothing writes yet
        if swept := store.sweep(spec.name):
            log.info("collection %s: deleted %d hidden points left by writes a crash cut short", spec.name, swept)
    encoders = encoders or make_encoders(settings)
    catalog = Catalog(store, encoders, settings)
    limit = settings.max_message_mb * 1024 * 1024
    admission = make_admission(settings)
    # Refusals first: nothing runs for a refused call; the security interceptor records the status the
    # error interceptor inside it set. The HTTP port runs the same list.
    interceptors: list[grpc.ServerInterceptor] = [security, ErrorInterceptor(), AdmissionInterceptor(admission)]
    # The gRPC port alone reads unary requests itself, with a timeout (server/reads.py): grpcio would
    # wait for them on a pool thread without one. The HTTP port reads its bodies itself.
    reads = UnaryReadInterceptor(settings.request_read_timeout_s, settings.max_pending_reads)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=admission.threads, thread_name_prefix="rpc"),
        interceptors=[reads, *interceptors],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # grpcio's default SO_REUSEPORT let a second server bind the same port quietly (and share
            # its calls): a taken port must fail start-up instead.
            ("grpc.so_reuseport", 0),
        ],
        # A thread for every call admitted: calls beyond are refused at once, never queued in the pool.
        maximum_concurrent_rpcs=admission.threads,
    )
    registry = HandlerRegistry(server)  # the HTTP port serves the same handlers
    add_services(registry, catalog, settings)  # type: ignore[arg-type]

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registry)  # type: ignore[arg-type]
    reflection.enable_server_reflection([*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    port = bind(server, settings, tls)
    if port == 0:
        raise ListenError(f"cannot listen on {settings.host}:{settings.port} (--port): the port is taken or not ours")
    server.start()
    for name in ["", *SERVICE_NAMES]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    app = App(server, port, store, encoders, health_servicer, security)
    if settings.http_port:
        try:
            gateway = Gateway(registry, interceptors, limit)
            if settings.tls_cert is not None and settings.tls_key is not None:
                tls_files = (settings.tls_cert, settings.tls_key, settings.tls_client_ca)
                app.http = HttpsServer(gateway, settings.host, settings.http_port, settings.http_threads, tls_files)
            else:
                app.http = HttpServer(gateway, settings.host, settings.http_port, settings.http_threads)
        except OSError as exc:
            app.stop(grace=None)  # e.g. the HTTP port is taken: nothing half-started stays behind
            raise ListenError(f"cannot listen on {settings.host}:{settings.http_port} (--http-port): {exc}") from exc
        except Exception:
            app.stop(grace=None)
            raise
    return app


def _no_progress_bars() -> None:
    """A server's log is not a terminal: loading a model draws no progress bar in it."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # transformers takes this over when it is imported (not before: 1-2 s)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


class StartupError(Exception):
    """A start-up mistake of the operator's besides those of security/listener.py: the default text
    model cannot load, the remote Qdrant cannot be used. `mmsearch serve` says it in one line."""


def open_store(settings: Settings) -> Store:
    """The store. A remote Qdrant is asked for its collections as the store opens: unreachable, or
    refusing the API key, it is a StartupError naming the URL (it was a traceback after the model
    had loaded)."""
    if settings.storage != "remote":
        return make_store(settings)
    try:
        return make_store(settings)
    except MMSearchError as exc:  # the engine's errors arrive as domain errors (storage/engine_errors.py)
        raise StartupError(f"cannot use the remote store: {exc}; check --qdrant-url and the server") from None


def load_default_encoder(settings: Settings) -> EncoderPool:
    """The encoder pool with the default text model loaded. A model that is not there fails in
    milliseconds, before torch is imported (encoders/models.py), as a StartupError."""
    _no_progress_bars()
    encoders = make_encoders(settings)
    log.info("loading default text encoder %s:%s", settings.text_kind, settings.text_model)
    try:
        encoders.get(settings.text_kind, settings.text_model)
    except EncoderError as exc:
        raise StartupError(f"the default text model cannot be loaded (--text-model, --text-kind): {exc}") from None
    return encoders


def serve(settings: Settings) -> None:
    """Runs until SIGTERM/SIGINT, then drains in-flight calls and closes the store."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    preflight(settings)  # a bad key file or certificate fails now, not after the model has loaded
    check_listen(settings)  # and so does a taken port
    lock = lock_data_dir(settings)  # and an unusable or busy data directory; held till the end  # noqa: F841
    store = open_store(settings)  # and a remote Qdrant that cannot be reached
    try:
        encoders = load_default_encoder(settings)
    except BaseException:
        store.close()
        raise
    app = create_server(settings, store=store, encoders=encoders)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(settings.metrics_port, addr=settings.host)
        except OSError as exc:
            app.stop(grace=None)
            raise ListenError(
                f"cannot listen on {settings.host}:{settings.metrics_port} (--metrics-port): {exc}"
            ) from exc
        log.info("Prometheus metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    where = settings.data_dir.resolve() if settings.storage == "edge" else settings.qdrant_url
    log.info("mmsearch serving on %s:%d (storage: %s %s)", settings.host, app.port, settings.storage, where)
    if app.http is not None:
        log.info(
            "HTTP/JSON (Connect) and the web console on %s://%s:%d/", app.http.scheme, settings.host, app.http.port
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if app.security.keys is not None:  # kill -HUP: re-read the key file now (it is also re-read when it changes)
        keys = app.security.keys
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=keys.reload, daemon=True).start())
    stop.wait()
    log.info("shutting down: in-flight calls get %.0f s, then are cancelled", settings.shutdown_grace_s)
    # Whatever still runs after 10 s (a stuck model call, a thread that ignores cancellation) must not
    # keep the process up: dying there is as safe as a kill -9, which leaves no partial document.
    watchdog = threading.Timer(SHUTDOWN_LIMIT_S, _exit_now)
    watchdog.daemon = True
    watchdog.start()
    app.stop(grace=settings.shutdown_grace_s)
    log.info("stopped")
    logging.shutdown()
    os._exit(0)  # worker pools (encoders, OCR) would otherwise be joined at interpreter exit


SHUTDOWN_LIMIT_S = 9.5


def _exit_now() -> None:
    log.error("shutdown took over %.1f s: exiting without waiting further", SHUTDOWN_LIMIT_S)
    logging.shutdown()
    os._exit(1)
