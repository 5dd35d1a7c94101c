"""Wiring: settings -> store, encoders, services -> a started gRPC server."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mmsearch.encoders.pool import EncoderPool

from .catalog import Catalog
from .interceptors import ErrorInterceptor
from .services import SERVICE_NAMES, add_services
from .settings import Settings
from .storage.base import Store

log = logging.getLogger("mmsearch")


def make_store(settings: Settings) -> Store:
    if settings.storage == "remote":
        from .storage.remote import RemoteStore

        if not settings.qdrant_url:
            raise ValueError("storage=remote needs qdrant_url (MMSEARCH_QDRANT_URL or --qdrant-url)")
        if settings.qdrant_url == ":memory:":  # qdrant-client's local mode is not safe to share between threads
            raise ValueError("qdrant_url ':memory:' is not a server: use storage=edge for a store without one")
        return RemoteStore(
            settings.qdrant_url,
            settings.qdrant_api_key,
            settings.qdrant_prefer_grpc,
            settings.qdrant_replication_factor,
        )
    from .storage.edge import EdgeStore, ShardOptions

    shards = ShardOptions(settings.seal_points, settings.max_shard_points, settings.hnsw_ef, settings.index_build)
    return EdgeStore(settings.data_dir, settings.flush_interval_s, shards, settings.min_free_disk_mb)


@dataclass
class App:
    server: grpc.Server
    port: int
    store: Store
    encoders: EncoderPool
    health: health.HealthServicer

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops accepting calls, gives in-flight ones `grace` seconds, cancels the rest (their work
        stops at the next page or batch; unacknowledged documents are rolled back), then flushes
        and closes the store."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.store.close()


def make_encoders(settings: Settings) -> EncoderPool:
    # The text backend applies to the sentence-transformers kind; its ONNX export is cached beside the data.
    text = {"backend": settings.text_backend, "cache_dir": settings.data_dir / "models"}
    return EncoderPool(settings.device, {"sentence-transformers": text})


def create_server(settings: Settings, store: Store | None = None, encoders: EncoderPool | None = None) -> App:
    """Builds and starts the server; returns it with the port it bound (settings.port 0 = any)."""
    store = store or make_store(settings)
    for spec in store.list_specs():  # before serving: nothing writes yet
        if swept := store.sweep(spec.name):
            log.info("collection %s: deleted %d hidden points left by writes a crash cut short", spec.name, swept)
    encoders = encoders or make_encoders(settings)
    catalog = Catalog(store, encoders, settings)
    limit = settings.max_message_mb * 1024 * 1024
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
        interceptors=[ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    add_services(server, catalog, settings)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    server.start()
    for name in ["", *SERVICE_NAMES]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return App(server, port, store, encoders, health_servicer)


def serve(settings: Settings) -> None:
    """Runs until SIGTERM/SIGINT, then drains in-flight calls and closes the store."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    encoders = make_encoders(settings)
    log.info("loading default text encoder %s:%s", settings.text_kind, settings.text_model)
    encoders.get(settings.text_kind, settings.text_model)
    app = create_server(settings, encoders=encoders)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)
        log.info("Prometheus metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    where = settings.data_dir.resolve() if settings.storage == "edge" else settings.qdrant_url
    log.info("mmsearch serving on %s:%d (storage: %s %s)", settings.host, app.port, settings.storage, where)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
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
