"""`mmsearch bench --storage-only`: storage and ranking at sizes the real encoder cannot reach here.

The collection uses the server's fake encoder (`fake-<dim>`: one deterministic unit vector per word,
so a 64-word passage keeps 64 token vectors of `dim` dimensions, sizes like a real text model's)
and the encoder is taken out of the measurement. What is measured per size: ingest rate, disk per
passage and the server's own memory; the longest health check and search while ingesting and while
the index is being built (the server must never freeze); search latency (server-side retrieve +
rerank, the part storage decides) once indexed; and recall@10 of the approximate first stage (HNSW)
against exact brute-force dense search over every passage, computed here with the same fake vectors.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mmsearch.v1 import collections_pb2, ingest_pb2, search_pb2

from ..client import Client
from .load import percentile, run_searches


class Prober:
    """Calls Health (and one search, when a query is given) every `interval_s` on its own channel and
    keeps the latencies: the server's answer time while it ingests or indexes."""

    def __init__(
        self, connect: Callable[..., Client], collection: str = "", query: str = "", interval_s: float = 0.5
    ) -> None:
        self.client = connect(timeout=60, retries=0)
        self.collection, self.query, self.interval_s = collection, query, interval_s
        self.health_ms: list[float] = []
        self.search_ms: list[float] = []
        self.errors = 0
        self.slow_at: list[str] = []  # wall-clock times of probes over 1 s, to match with the server's log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-prober", daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                t0 = time.perf_counter()
                self.client.health(timeout=30.0)
                self._keep(self.health_ms, "health", t0)
                if self.query:
                    t0 = time.perf_counter()
                    self.client.search(self.collection, self.query, top_k=10)
                    self._keep(self.search_ms, "search", t0)
            except Exception:  # counted: a probe that fails is as bad as a slow one
                self.errors += 1

    def _keep(self, into: list[float], what: str, t0: float) -> None:
        ms = (time.perf_counter() - t0) * 1000
        into.append(ms)
        if ms > 1000:
            self.slow_at.append(
                f"{time.strftime('%H:%M:%S', time.localtime(time.time() - ms / 1000))} {what} {ms:.0f} ms"
            )

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"probes": len(self.health_ms), "errors": self.errors, "slow_at": self.slow_at}
        for name, values in (("health", self.health_ms), ("search", self.search_ms)):
            if values:
                out[f"{name}_max_ms"] = max(values)
                out[f"{name}_p99_ms"] = percentile(values, 99)
                out[f"{name}_over_1s"] = sum(v > 1000 for v in values)
        return out


class ExactDense:
    """Brute-force cosine over every passage's pooled fake vector, built the way encoders/fake.py builds
    it (unit word vectors, their mean, normalised), with each distinct word's vector computed once."""

    def __init__(self, docs: list[str], dim: int) -> None:
        from mmsearch.encoders.fake import FakeEncoder

        self.encoder = FakeEncoder(f"fake-{dim}", dim)
        vocab: dict[str, int] = {}
        ids: list[int] = []
        starts: list[int] = []
        for text in docs:
            starts.append(len(ids))
            words, _ = self.encoder.split(text)
            ids.extend(vocab.setdefault(w, len(vocab)) for w in words)
        table = np.stack([self.encoder.word_vector(w) for w in vocab]).astype(np.float32)
        table /= np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
        # Summed a chunk of passages at a time: gathering every word's row at once took 20 GB at
        # 200k passages of 64 words (the bench was OOM-killed there).
        ends = [*starts[1:], len(ids)]
        word_ids = np.asarray(ids)
        self.pooled = np.empty((len(docs), dim), dtype=np.float32)
        for c in range(0, len(docs), 2048):
            lo, hi = starts[c], ends[min(c + 2048, len(docs)) - 1]
            offsets = np.asarray(starts[c : c + 2048]) - lo
            sums = np.add.reduceat(table[word_ids[lo:hi]], offsets, axis=0)
            self.pooled[c : c + 2048] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    def top(self, query: str, k: int) -> set[str]:
        q = self.encoder.encode_texts([query], as_query=True)[0].pooled
        scores = self.pooled @ q
        best = np.argpartition(-scores, k)[:k]
        return {f"p{i}" for i in best}


def wait_indexed(client: Client, name: str, timeout_s: float) -> dict[str, Any]:
    """Polls the collection until every point is indexed (servers that do not report it: no wait)."""
    t0 = time.perf_counter()
    while True:
        col = client.get_collection(name)
        state = collections_pb2.IndexState.Name(col.index_state)
        waited = time.perf_counter() - t0
        if col.index_state != collections_pb2.INDEX_STATE_INDEXING or waited > timeout_s:
            return {
                "state": state,
                "seconds": waited,
                "points": col.point_count,
                "indexed_points": col.indexed_point_count,
                "shards": col.shard_count,
            }
        time.sleep(2.0)


def storage_only(bench: Any, n: int, docs: list[str], qs: list[str]) -> dict[str, Any]:
    """One collection size of the storage-only mode; `bench` is the running Bench (options, client)."""
    o, client = bench.o, bench.client
    name = f"{o.prefix}-s{n}-d{o.dim}"
    bench.say.section(f"{n:,} passages of {o.words} words, fake encoder at {o.dim} dims -> collection {name!r}")
    result: dict[str, Any] = {"passages": n, "words": o.words, "collection": name, "encoder": f"fake-{o.dim}"}
    existing = {c.name: c.point_count for c in client.list_collections()}
    if o.reuse and existing.get(name) == n:  # measured again as it is (e.g. by a newer server)
        bench.say.note(f"reusing {name!r} ({n:,} points): ingest not measured")
        result["reused"] = True
    else:
        if name in existing:
            client.delete_collection(name)
        client.create_collection(name, text_kind="fake", text_model=f"fake-{o.dim}", max_words=max(o.words, 180))

        def items() -> Iterator[ingest_pb2.IngestItem]:
            return (ingest_pb2.IngestItem(id=f"p{i}", text=t) for i, t in enumerate(docs))

        with Prober(o.connect, name, qs[0]) as during_ingest:
            result["ingest"] = bench._ingest(name, items(), n, "passages")
        result["during_ingest"] = during_ingest.summary()
    with Prober(o.connect, name, qs[0]) as during_index:
        result["index"] = wait_indexed(client, name, o.index_timeout_s)
    result["during_index"] = during_index.summary()
    after = client.info()
    result["disk_bytes_per_passage"] = after.storage_bytes / max(1, n)
    result["server_anonymous_bytes"] = after.anonymous_memory_bytes
    result["server_rss_bytes"] = after.resident_memory_bytes

    # The first searches after a build or a restart read the shards' files in; they are reported apart,
    # with queries the timed levels do not use, so that the levels measure a warm server.
    # (With too few queries for both, the warm-up repeats the timed ones.)
    enough = o.warmup and len(qs) - o.warmup >= min(o.requests, max(o.exact_queries, 1))
    timed, spare = (qs[: -o.warmup], qs[-o.warmup :]) if enough else (qs, qs)
    if o.warmup:
        bar = bench.say.bar("first searches (warm-up)", o.warmup)
        result["warmup"] = _level(run_searches(o.connect, name, spare, 1, o.warmup, progress=bar))
    levels = []
    for c in o.concurrency:
        bar = bench.say.bar(f"search, {c} client{'s' if c > 1 else ''}", o.requests)
        levels.append(_level(run_searches(o.connect, name, timed, c, o.requests, progress=bar)))
    result["search"] = {"levels": levels}

    if o.exact_queries > 0:
        result.update(recall(bench, name, docs, timed))
    if not o.keep:
        client.delete_collection(name)
    return result


def _level(r: Any) -> dict[str, Any]:
    """A load run's summary with the server's retrieve + rerank time (what storage decides)."""
    summary: dict[str, Any] = r.summary()
    scoring = [a + b for a, b in zip(r.server_ms["retrieve"], r.server_ms["rerank"], strict=True)]
    summary["retrieve_rerank_p50_ms"] = statistics.median(scoring)
    summary["retrieve_rerank_p99_ms"] = percentile(scoring, 99)
    return summary


def recall(bench: Any, name: str, docs: list[str], qs: list[str]) -> dict[str, Any]:
    """Recall@10 of the approximate first stage at each HNSW breadth of `--hnsw-ef` (0: the server's):
    dense alone against brute-force dense search computed here, and the default ranking (dense, BM25,
    MaxSim fused) against the same ranking with an exact dense first stage (`exact`, server-side):
    what the graphs cost the results a user gets. With each, retrieve + rerank p50 of those searches."""
    o = bench.o
    bar = bench.say.bar("exact dense search over every passage (floor)", 1)
    exact = ExactDense(docs, o.dim)
    bar(1)
    m = min(o.exact_queries, len(qs))
    truth = [exact.top(q, 10) for q in qs[:m]]
    ranked_exact = run_searches(o.connect, name, qs[:m], 1, m, ranking=search_pb2.RankingOptions(exact=True)).results
    rows = []
    for ef in o.hnsw_ef:
        dense_only = search_pb2.RankingOptions(dense_weight=1.0, maxsim_weight=0.0, lexical_weight=0.0, hnsw_ef=ef)
        dense = run_searches(o.connect, name, qs[:m], 1, m, ranking=dense_only)
        ranked = run_searches(o.connect, name, qs[:m], 1, m, ranking=search_pb2.RankingOptions(hnsw_ef=ef))
        scoring = [a + b for a, b in zip(ranked.server_ms["retrieve"], ranked.server_ms["rerank"], strict=True)]
        rows.append({
            "hnsw_ef": ef,
            "dense_recall_at_10": statistics.fmean(
                len(set(got[:10]) & t) / 10 for got, t in zip(dense.results, truth, strict=True)
            ),
            "ranked_recall_at_10": statistics.fmean(
                len(set(got[:10]) & set(want[:10])) / max(1, len(want[:10]))
                for got, want in zip(ranked.results, ranked_exact, strict=True)
            ),
            "retrieve_rerank_p50_ms": statistics.median(scoring),
            "retrieve_rerank_p99_ms": percentile(scoring, 99),
        })  # fmt: skip
    return {"dense_recall_at_10": rows[0]["dense_recall_at_10"], "recall_queries": m, "recall_by_ef": rows}


def render(r: dict[str, Any]) -> list[str]:
    idx = r["index"]
    rate = f"{r['ingest']['per_second']:.1f} passages/s" if "ingest" in r else "not measured (reused)"
    out = [
        f"{r['passages']:,} passages of {r['words']} words, storage only ({r['encoder']}; encoder not measured)",
        f"  ingest        {rate}; disk {r['disk_bytes_per_passage'] / 1024:,.2f} KiB per "
        f"passage; server own memory {r['server_anonymous_bytes'] / 2**20:,.0f} MiB (RSS "
        f"{r['server_rss_bytes'] / 2**20:,.0f} MiB)",
        f"  index         {idx['state']} after {idx['seconds']:.0f} s of waiting: {idx['indexed_points']:,} of "
        f"{idx['points']:,} points indexed, {idx['shards']} shards",
    ]
    for label in ("during_ingest", "during_index"):
        p = r.get(label, {})
        if p.get("probes"):
            out.append(
                f"  {label.replace('_', ' '):<13} health max {p['health_max_ms']:.0f} ms, search max "
                f"{p.get('search_max_ms', float('nan')):.0f} ms over {p['probes']} probes; over 1 s: "
                f"{p.get('health_over_1s', 0)} health, {p.get('search_over_1s', 0)} search; errors {p['errors']}"
            )
    if w := r.get("warmup"):
        out.append(
            f"  first searches {w['requests']} after the build/start, 1 client: server retrieve + rerank p50 "
            f"{w['retrieve_rerank_p50_ms']:.1f} ms, p99 {w['retrieve_rerank_p99_ms']:.1f} ms (not in the levels below)"
        )
    for lv in r["search"]["levels"]:
        out.append(
            f"  search        {lv['concurrency']} client(s): p50 {lv['p50_ms']:.1f} ms, p99 {lv['p99_ms']:.1f} ms; "
            f"server retrieve + rerank p50 {lv['retrieve_rerank_p50_ms']:.1f} ms, p99 "
            f"{lv['retrieve_rerank_p99_ms']:.1f} ms"
        )
    for row in r.get("recall_by_ef", []):
        ef = row["hnsw_ef"] or "server's"
        out.append(
            f"  recall        hnsw_ef {ef}: dense recall@10 vs brute force {row['dense_recall_at_10']:.3f}; default "
            f"ranking vs exact first stage {row['ranked_recall_at_10']:.3f}; retrieve + rerank p50 "
            f"{row['retrieve_rerank_p50_ms']:.1f} ms, p99 {row.get('retrieve_rerank_p99_ms', float('nan')):.1f} ms "
            f"({r['recall_queries']} queries)"
        )
    return out
