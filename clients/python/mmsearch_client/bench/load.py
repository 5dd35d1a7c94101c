"""Search load at a fixed concurrency: `concurrency` clients, each with its own channel, share a
fixed number of requests; latency is each call's wall time on the client, throughput the requests
over the wall time of the whole run."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmsearch.v1 import search_pb2

from ..client import Client


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    latency_ms: list[float] = field(repr=False)
    server_ms: dict[str, list[float]] = field(repr=False)  # encode/retrieve/rerank/total, per request
    results: list[list[str]] = field(repr=False)  # document ids per request, in request order

    def summary(self) -> dict[str, Any]:
        lat = self.latency_ms
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "throughput_qps": self.requests / self.seconds,
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "server_p50_ms": {k: statistics.median(v) for k, v in self.server_ms.items()},
        }


def run_searches(
    connect: Callable[..., Client],
    collection: str,
    queries: Sequence[str],
    concurrency: int,
    requests: int,
    ranking: search_pb2.RankingOptions | None = None,
    top_k: int = 10,
    progress: Callable[[int], None] = lambda n: None,
) -> LoadResult:
    """Request i searches queries[i % len(queries)]; each client warms up with one search first."""
    clients = [connect(timeout=120, retries=0) for _ in range(concurrency)]
    latency = [0.0] * requests
    timings: list[Any] = [None] * requests
    results: list[list[str]] = [[] for _ in range(requests)]
    counter = itertools.count()
    errors: list[BaseException] = []

    def worker(c: Client) -> None:
        try:
            while (i := next(counter)) < requests:
                t0 = time.perf_counter()
                r = c.search(collection, queries[i % len(queries)], top_k=top_k, ranking=ranking, all_passages=True)
                latency[i] = (time.perf_counter() - t0) * 1000
                timings[i] = r.timings
                results[i] = [x.document_id for x in r.results]
                progress(1)
        except BaseException as exc:  # reported by the caller; the other workers stop too
            errors.append(exc)

    try:
        for n, c in enumerate(clients):
            c.search(collection, queries[n % len(queries)], top_k=top_k, ranking=ranking)
        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
    finally:
        for c in clients:
            c.close()
    if errors:
        raise errors[0]
    server = {k: [float(getattr(t, f"{k}_ms")) for t in timings] for k in ("encode", "retrieve", "rerank", "total")}
    return LoadResult(concurrency, requests, seconds, latency, server, results)
