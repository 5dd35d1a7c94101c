"""`mmsearch bench`: speed and memory of a running server over gRPC, each figure beside the floor it
should be compared to, measured in the same run (the machine may be noisy: compare ratios).

Per collection size: ingest throughput against the raw encoder's; search latency p50/p95/p99 and
throughput per concurrency against the query encoder's time; resident memory and disk per item;
and, for passages, the two-stage search (pooled/BM25 candidates, then MaxSim) against exact
brute-force MaxSim over the whole collection: recall@10 and speed-up. Per long-PDF size: one PDF of
that many pages ingested as one document, and the server's resident memory while it is.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.encoders.text import DEFAULT_BACKEND
from mmsearch.protocol.vocab import Fusion
from mmsearch.protocol.wire import FUSION
from mmsearch.v1 import ingest_pb2, search_pb2

from ..client import Client, MMSearchError
from ..connect import Credentials
from .floors import ExactMaxSim, encode_corpus, encode_pages, encode_queries
from .load import percentile, run_searches
from .longpdf import ServerMemory, long_pdf
from .progress import Reporter
from .storage import storage_only
from .workload import PageFile, WorkloadError, corpus_texts, page_files, page_items, page_plan, passages, queries


@dataclass
class BenchOptions:
    server: str
    credentials: Credentials = field(default_factory=Credentials)  # the command's --api-key, --tls*
    corpus: Path | None = None
    queries_file: Path | None = None
    passages: list[int] = field(default_factory=lambda: [10_000])
    words: int = 64
    pages: list[int] = field(default_factory=list)
    page_source: Path | None = None
    pdf_pages: list[int] = field(default_factory=list)  # long single-PDF sizes, cut from page_source's PDFs
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32])
    requests: int = 300
    exact_queries: int = 100
    prefetch: list[int] = field(default_factory=lambda: [100])
    batch: int = 32
    page_floor_pages: int = 30
    prefix: str = "bench"
    reuse: bool = False
    keep: bool = False
    device: str = "cpu"
    storage_only: bool = False  # fake encoder at `dim` dims: storage and ranking without the encoder
    dim: int = 384
    index_timeout_s: float = 3600.0
    hnsw_ef: list[int] = field(default_factory=lambda: [0])  # storage-only recall: breadths to measure (0: server's)
    # storage-only: searches before the timed levels, with queries the levels do not use, reported as the
    # first searches after indexing/start: a server restarted on a big collection reads its files in first.
    warmup: int = 100
    ocr_engine: str = "rapidocr"  # the page floor's OCR; match the server's --ocr-engine
    # Page sizes are measured once per OCR mode (collection setting `ocr`; "" = the server's default),
    # so one report shows pages/s with and without OCR; "never" needs a page model.
    page_ocr: list[str] = field(default_factory=lambda: [""])
    page_model: str = ""  # "KIND:MODEL" of the page collections' page encoder (e.g. colpali:DIR)
    # The floors' text runtime (match the server's --text-backend) and where its ONNX export is cached
    # (the server's data_dir/models reuses the server's export).
    text_backend: str = DEFAULT_BACKEND
    model_cache: Path = Path("mmsearch-data/models")

    def connect(self, **kw: Any) -> Client:
        """A client of the server with the command's key and TLS (each load-test thread opens its own)."""
        return self.credentials.client(self.server, **kw)


def _machine() -> dict[str, Any]:
    import platform

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}


class Bench:
    def __init__(self, opts: BenchOptions, reporter: Reporter) -> None:
        self.o = opts
        self.say = reporter
        self.client = opts.connect(timeout=3600, retries=0)

    def close(self) -> None:
        self.client.close()

    def run(self, on_size: Callable[[dict[str, Any]], None] = lambda report: None) -> dict[str, Any]:
        """The report; `on_size` gets it so far after each collection size (long runs keep their
        finished sizes if stopped)."""
        # Inputs first: a wrong path is named before any server work starts.
        texts = corpus_texts(self.o.corpus) if self.o.passages and self.o.corpus else []
        files = page_files(self.o.page_source) if (self.o.pages or self.o.pdf_pages) and self.o.page_source else []
        pdfs = [f.path for f in files if f.path.suffix.lower() == ".pdf"]
        if self.o.pdf_pages and not pdfs:
            raise WorkloadError(f"--pdf-pages needs PDFs in {self.o.page_source} (their pages make the long PDF)")
        self.client.health(timeout=5.0)  # unreachable: MMSearchError naming the address
        info = self.client.info()
        report: dict[str, Any] = {
            "server": self.o.server,
            "server_version": info.version,
            "storage": info.storage_backend,
            "machine": _machine(),
            "floor_text_backend": self.o.text_backend,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "passages": [],
            "pages": [],
            "long_pdfs": [],
        }
        report["storage_only"] = []
        for n in self.o.passages:
            if self.o.storage_only:
                docs = passages(texts, n, self.o.words)
                qs = queries(
                    self.o.corpus or Path("."), self.o.queries_file, docs, max(self.o.requests, 100) + self.o.warmup
                )
                report["storage_only"].append(storage_only(self, n, docs, qs))
            else:
                report["passages"].append(self.passages(texts, n))
            on_size(report)
        for n in self.o.pages:
            for mode in self.o.page_ocr:
                report["pages"].append(self.pages(files, n, texts, mode))
                on_size(report)
        for n in self.o.pdf_pages:
            report["long_pdfs"].append(self.long_pdf(pdfs, n))
            on_size(report)
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return report

    # -- shared steps
    def _collection(self, name: str, max_words: int = 0, **config: str) -> tuple[bool, Any]:
        """(reused, encoder spec of the text space); creates the collection (with `config`, e.g. its
        page encoder and OCR mode) unless reusing it."""
        existing = {c.name: c for c in self.client.list_collections()}
        if name in existing and not self.o.reuse:
            self.client.delete_collection(name)
        if name not in existing or not self.o.reuse:
            try:
                self.client.create_collection(name, max_words=max_words, **config)  # type: ignore[arg-type]
            except MMSearchError as exc:
                raise BenchError(f"cannot create {name!r} with {config}: {exc}") from None
        col = self.client.get_collection(name)
        space = next(s for s in col.spaces if s.name == "text")
        return name in existing and self.o.reuse, space.encoder

    def _encoder(self, spec: Any) -> Any:
        from mmsearch.encoders.base import EncoderError
        from mmsearch.encoders.registry import create

        try:
            text = {"backend": self.o.text_backend, "cache_dir": self.o.model_cache}
            options = text if spec.kind == "sentence-transformers" else {}
            return create(spec.kind, spec.model, self.o.device, **options)
        except EncoderError as exc:
            raise BenchError(
                f"the floors need the server's text encoder here ({spec.kind}:{spec.model}), and it cannot be "
                f"loaded: {exc}"
            ) from None

    def _ingest(self, name: str, items: Iterable[ingest_pb2.IngestItem], total: int, unit: str) -> dict[str, Any]:
        before = self.client.info()
        bar = self.say.bar(f"ingest {total:,} {unit}", total)
        points = 0
        t0 = time.perf_counter()
        for ack in self.client.ingest(name, items, create=False):
            if not ack.ok:
                raise BenchError(f"the server rejected {ack.id!r}: {ack.error_code}: {ack.error}")
            points += ack.points
            bar(ack.points)
        seconds = time.perf_counter() - t0
        after = self.client.info()
        return {
            "seconds": seconds,
            "per_second": points / seconds,
            "points": points,
            "disk_bytes_per_item": (after.storage_bytes - before.storage_bytes) / max(1, points),
            # of which kept page images and thumbnails (0 for text; a page is one point)
            "image_bytes_per_item": (after.page_image_bytes - before.page_image_bytes) / max(1, points),
            "server_rss_bytes": after.resident_memory_bytes,
            "server_anonymous_bytes": after.anonymous_memory_bytes,
            "server_peak_rss_bytes": after.peak_resident_memory_bytes,
            "loadavg": os.getloadavg(),
        }

    def _searches(self, name: str, qs: list[str], encode_ms: list[float]) -> dict[str, Any]:
        encode_p50 = statistics.median(encode_ms)
        levels = []
        for c in self.o.concurrency:
            bar = self.say.bar(f"search, {c} client{'s' if c > 1 else ''}", self.o.requests)
            levels.append(run_searches(self.o.connect, name, qs, c, self.o.requests, progress=bar).summary())
        out: dict[str, Any] = {
            "query_encode_p50_ms": encode_p50,
            "query_encode_p95_ms": percentile(encode_ms, 95),
            "levels": levels,
        }
        one = next((x for x in levels if x["concurrency"] == 1), None)
        if one is not None:
            budget = 1.3 * encode_p50 + 10.0
            out["target"] = {"p50_ms": one["p50_ms"], "budget_ms": budget, "met": one["p50_ms"] <= budget}
        return out

    # -- passages
    def passages(self, texts: list[str], n: int) -> dict[str, Any]:
        if not texts:
            raise BenchError("passage sizes need --corpus (a BEIR folder, JSONL, .txt or .md files)")
        o = self.o
        name = f"{o.prefix}-p{n}-w{o.words}"
        self.say.section(f"{n:,} passages of {o.words} words -> collection {name!r}")
        docs = passages(texts, n, o.words)
        qs = queries(o.corpus or Path("."), o.queries_file, docs, max(o.requests, o.exact_queries))
        reused, spec = self._collection(name, max_words=max(o.words, 180))  # one point per passage
        encoder = self._encoder(spec)
        result: dict[str, Any] = {"passages": n, "words": o.words, "collection": name, "encoder": spec.model}
        if reused:
            result["ingest"] = None
            self.say.note(f"reusing {name!r}: ingest not measured")
        else:
            items = (ingest_pb2.IngestItem(id=f"p{i}", text=t) for i, t in enumerate(docs))
            result["ingest"] = self._ingest(name, items, n, "passages")
        # The corpus floor is what ingest is compared with and what exact MaxSim scores: a reused
        # collection without the exact comparison needs neither (a kept 100k collection re-measured).
        corpus, result["encoder_floor"] = None, None
        if result["ingest"] or o.exact_queries > 0:
            bar = self.say.bar("raw encoder (floor)", n)
            corpus = encode_corpus(encoder, docs, o.batch, bar)
            result["encoder_floor"] = {
                "seconds": corpus.seconds,
                "per_second": corpus.per_second,
                "mean_tokens": corpus.mean_tokens,
            }
            if result["ingest"]:
                result["ingest_over_encoder"] = result["ingest"]["per_second"] / corpus.per_second
        query_vectors, encode_ms = encode_queries(encoder, qs)
        result["search"] = self._searches(name, qs, encode_ms)
        result["two_stage"] = None
        if corpus is not None and o.exact_queries > 0:
            result["two_stage"] = self._two_stage(name, qs, query_vectors, corpus.tokens)
        after = self.client.info()
        result["server_rss_after_bytes"] = after.resident_memory_bytes
        result["server_anonymous_after_bytes"] = after.anonymous_memory_bytes
        result["server_peak_rss_bytes"] = after.peak_resident_memory_bytes
        if not o.keep:
            self.client.delete_collection(name)
        return result

    def _two_stage(self, name: str, qs: list[str], query_vectors: list[Any], tokens: list[Any]) -> dict[str, Any]:
        """Recall@10 of search with MaxSim over pooled + BM25 candidates against exact MaxSim over
        every passage, and the speed-up of the first over the second (query encoding excluded)."""
        k, m = 10, min(self.o.exact_queries, len(qs))
        exact = ExactMaxSim(tokens)  # takes the vectors over
        bar = self.say.bar(f"exact MaxSim over {exact.n:,} passages (floor)", m)
        truth, exact_ms = [], []
        for v in query_vectors[:m]:
            ids, _, ms = exact.search(v, k)
            truth.append({f"p{i}" for i in ids})
            exact_ms.append(ms)
            bar(1)
        del exact
        runs = []
        for prefetch in self.o.prefetch:
            ranking = search_pb2.RankingOptions(fusion=FUSION.to_wire(Fusion.MAXSIM), prefetch_k=prefetch)
            bar = self.say.bar(f"two-stage search, prefetch {prefetch}", m)
            r = run_searches(self.o.connect, name, qs[:m], 1, m, ranking=ranking, top_k=k, progress=bar)
            recall = [len(set(got[:k]) & want) / len(want) for got, want in zip(r.results, truth, strict=True)]
            scoring = [a + b for a, b in zip(r.server_ms["retrieve"], r.server_ms["rerank"], strict=True)]
            runs.append(
                {
                    "prefetch_k": prefetch,
                    "recall_at_10": statistics.fmean(recall),
                    "queries_fully_recalled": sum(x == 1.0 for x in recall),
                    "search_p50_ms": statistics.median(r.latency_ms),
                    "retrieve_rerank_p50_ms": statistics.median(scoring),
                    "speedup": statistics.median(exact_ms) / max(1e-6, statistics.median(scoring)),
                }
            )
        return {"queries": m, "exact_p50_ms": statistics.median(exact_ms), "runs": runs}

    # -- pages
    def pages(self, files: list[PageFile], n: int, texts: list[str], ocr: str = "") -> dict[str, Any]:
        o = self.o
        name = f"{o.prefix}-pg{n}" + (f"-ocr-{ocr}" if ocr else "")
        page_kind, _, page_model = o.page_model.partition(":")
        self.say.section(f"{n:,} pages from {o.page_source} -> collection {name!r}" + (f" (ocr {ocr})" if ocr else ""))
        plan = page_plan(files, n)
        total = sum(f.pages for _, f in plan)
        qs = queries(o.corpus or Path("."), o.queries_file, texts, o.requests)
        reused, spec = self._collection(name, ocr=ocr, page_kind=page_kind, page_model=page_model)
        encoder = self._encoder(spec)
        result: dict[str, Any] = {
            "pages": total,
            "files": len(files),
            "collection": name,
            "encoder": spec.model,
            "page_encoder": o.page_model or "ocr+text",
            "ocr": ocr or "default",
        }
        if reused:
            result["ingest"] = None
        else:
            result["ingest"] = self._ingest(name, page_items(plan), total, "pages")
        # The floor is what the collection's page path costs without the server: the page model over the
        # images when OCR is off, else OCR (of every page for `always`, else where there is no text
        # layer) and the text model.
        page_encoder = self._page_encoder(page_kind, page_model) if ocr == "never" else None
        always = ocr == "always"
        paths = [f.path for f in files]
        floor = encode_pages(encoder, paths, o.page_floor_pages, o.ocr_engine, page_encoder, ocr_always=always)
        reader = f"{o.ocr_engine} of every page" if always else f"text layer or {o.ocr_engine}"
        of = f"{reader} + {spec.model}"
        result["encoder_floor"] = {
            "pages": floor.pages,
            "seconds": floor.seconds,
            "per_second": floor.per_second,
            "of": o.page_model if page_encoder is not None else of,
        }
        if result["ingest"]:
            result["ingest_over_encoder"] = result["ingest"]["per_second"] / floor.per_second
        _, encode_ms = encode_queries(encoder, qs)
        result["search"] = self._searches(name, qs, encode_ms)
        if not o.keep:
            self.client.delete_collection(name)
        return result

    def _page_encoder(self, kind: str, model: str) -> Any:
        from mmsearch.encoders.base import EncoderError
        from mmsearch.encoders.registry import create

        try:
            return create(kind, model, self.o.device)
        except EncoderError as exc:
            raise BenchError(f"the page floor needs the page model here ({kind}:{model}): {exc}") from None

    # -- one long PDF
    def long_pdf(self, pdfs: list[Path], n: int) -> dict[str, Any]:
        name = f"{self.o.prefix}-pdf{n}"
        self.say.section(f"one PDF of {n:,} pages from {self.o.page_source} -> collection {name!r}")
        data = long_pdf(pdfs, n)
        existing = {c.name for c in self.client.list_collections()}
        if name in existing:
            self.client.delete_collection(name)
        self.client.create_collection(name)
        item = ingest_pb2.IngestItem(id=f"long-{n}", source=f"{n} pages", pdf=data)
        with ServerMemory(self.client) as memory:
            result = self._ingest(name, iter([item]), n, "pages")
        if not self.o.keep:
            self.client.delete_collection(name)
        return {
            "pages": result["points"],
            "collection": name,
            "ingest": result,
            "server_rss_before_bytes": memory.before,
            "server_rss_peak_bytes": memory.peak,
            "server_rss_growth_bytes": memory.peak - memory.before,
            "server_anonymous_peak_bytes": memory.anonymous_peak,
        }


class BenchError(Exception):
    """The benchmark cannot run as asked (the message says why)."""


__all__ = ["Bench", "BenchError", "BenchOptions", "MMSearchError"]
