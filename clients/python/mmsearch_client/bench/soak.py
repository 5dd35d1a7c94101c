"""`mmsearch bench --soak`: N clients, each on its own channel, mix searches, ingests and deletes
against a running server for M minutes. Reports every call's status code, latency p50/p99 per kind
of call, and the server's resident memory over time (GetInfo, or /proc/<pid>/status with
--server-pid when the server runs on this machine), with its growth after warm-up.

Documents are replaced and deleted within a bounded set of ids, so a server whose memory is bounded
should hold it flat once the set is full and its encoders are loaded.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from mmsearch.v1 import ingest_pb2

from ..client import Client, MMSearchError
from ..connect import Credentials
from .load import percentile

KINDS = ("search", "ingest", "delete")


@dataclass
class SoakOptions:
    server: str = "127.0.0.1:50051"
    credentials: Credentials = field(default_factory=Credentials)  # the command's --api-key, --tls*
    clients: int = 8
    minutes: float = 3.0
    collection: str = "soak"
    mix: tuple[float, float, float] = (0.7, 0.2, 0.1)  # search, ingest, delete
    documents: int = 2000  # ids cycle within this set
    items_per_stream: int = 4
    words: int = 120
    sample_s: float = 10.0
    warmup_fraction: float = 0.2  # memory growth is measured from the first sample after this share of the run
    server_pid: int | None = None
    keep: bool = False
    seed: int = 0


@dataclass
class Call:
    kind: str
    code: str
    ms: float


@dataclass
class Sample:
    t_s: float
    rss_bytes: int
    anonymous_bytes: int  # 0 when read from /proc (VmRSS only)
    calls: int


@dataclass
class SoakResult:
    options: SoakOptions
    seconds: float = 0.0
    calls: list[Call] = field(default_factory=list, repr=False)
    memory: list[Sample] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        by_kind: dict[str, Any] = {}
        for kind in KINDS:
            calls = [c for c in self.calls if c.kind == kind]
            ok = [c.ms for c in calls if c.code == "OK"]
            by_kind[kind] = {
                "calls": len(calls),
                "codes": dict(Counter(c.code for c in calls).most_common()),
                "p50_ms": percentile(ok, 50),
                "p99_ms": percentile(ok, 99),
            }
        mem = self.memory
        warm = next((s for s in mem if s.t_s >= self.seconds * self.options.warmup_fraction), None)
        growth = (mem[-1].rss_bytes / warm.rss_bytes - 1) if warm and mem and warm.rss_bytes else float("nan")
        return {
            "clients": self.options.clients,
            "seconds": round(self.seconds, 1),
            "calls_per_s": len(self.calls) / self.seconds if self.seconds else 0.0,
            "by_kind": by_kind,
            "rss_mib": [(round(s.t_s), round(s.rss_bytes / 2**20)) for s in mem],
            "rss_growth_after_warmup": growth,
            "rss_max_mib": max((s.rss_bytes for s in mem), default=0) / 2**20,
        }


def render(report: dict[str, Any]) -> str:
    lines = [f"soak: {report['clients']} clients, {report['seconds']} s, {report['calls_per_s']:.1f} calls/s"]
    for kind, r in report["by_kind"].items():
        codes = ", ".join(f"{c} {n}" for c, n in r["codes"].items())
        latency = f"p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms"
        lines.append(f"  {kind:7} {r['calls']:6} calls  {latency}  [{codes}]")
    series = "  ".join(f"{t}s:{m}" for t, m in report["rss_mib"])
    lines.append(f"  server RSS MiB over time: {series}")
    lines.append(
        f"  RSS growth after warm-up: {report['rss_growth_after_warmup']:+.1%}, max {report['rss_max_mib']:.0f} MiB"
    )
    return "\n".join(lines)


def _rss_from_proc(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS in /proc/{pid}/status")


class _Words:
    """Deterministic pseudo-words: documents and queries share a vocabulary, so searches match."""

    def __init__(self, size: int = 3000, seed: int = 0) -> None:
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]

    def text(self, rng: random.Random, n: int) -> str:
        return " ".join(rng.choice(self.vocab) for _ in range(n))


class Soak:
    def __init__(self, options: SoakOptions) -> None:
        self.o = options
        self.words = _Words(seed=options.seed)
        self.result = SoakResult(options)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, progress: Any = None) -> SoakResult:
        o = self.o
        with o.credentials.client(o.server, timeout=60, retries=0) as c:
            if o.collection not in {x.name for x in c.list_collections()}:
                c.create_collection(o.collection, indexed_fields={"group": "integer"})
            start = time.monotonic()
            threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(o.clients)]
            for t in threads:
                t.start()
            end = start + o.minutes * 60
            while True:
                self._sample(c, time.monotonic() - start)
                if progress is not None:
                    progress(self.result.memory[-1])
                if self._stop.wait(max(0.0, min(o.sample_s, end - time.monotonic()))) or time.monotonic() >= end:
                    break
            self._stop.set()
            for t in threads:
                t.join()
            self.result.seconds = time.monotonic() - start
            self._sample(c, self.result.seconds)
            if not o.keep:
                c.delete_collection(o.collection)
        return self.result

    def _sample(self, c: Client, t: float) -> None:
        if self.o.server_pid:
            rss, anon = _rss_from_proc(self.o.server_pid), 0
        else:
            info = c.info()
            rss, anon = info.resident_memory_bytes, info.anonymous_memory_bytes
        with self._lock:
            self.result.memory.append(Sample(t, rss, anon, len(self.result.calls)))

    def _client(self, index: int) -> None:
        o = self.o
        rng = random.Random(o.seed * 1000 + index)
        with o.credentials.client(o.server, timeout=60, retries=0) as c:
            while not self._stop.is_set():
                kind = rng.choices(KINDS, weights=o.mix)[0]
                start = time.perf_counter()
                try:
                    getattr(self, f"_{kind}")(c, rng)
                    code = "OK"
                except MMSearchError as exc:
                    code = exc.code.name
                except grpc.RpcError as exc:  # a stream broken mid-way
                    code = exc.code().name
                call = Call(kind, code, (time.perf_counter() - start) * 1000)
                with self._lock:
                    self.result.calls.append(call)

    def _search(self, c: Client, rng: random.Random) -> None:
        c.search(self.o.collection, self.words.text(rng, rng.randint(2, 6)), top_k=10)

    def _ingest(self, c: Client, rng: random.Random) -> None:
        o = self.o
        items = []
        for _ in range(o.items_per_stream):
            n = rng.randrange(o.documents)
            item = ingest_pb2.IngestItem(id=f"soak-{n}", text=self.words.text(rng, o.words))
            item.metadata.fields.update({"group": n % 10})
            items.append(item)
        acks = list(c.ingest(o.collection, items, create=False))
        bad = [a for a in acks if not a.ok]
        if bad:
            raise MMSearchError(grpc.StatusCode[bad[0].error_code or "UNKNOWN"], bad[0].error)

    def _delete(self, c: Client, rng: random.Random) -> None:
        c.delete(self.o.collection, ids=[f"soak-{rng.randrange(self.o.documents)}" for _ in range(3)])
