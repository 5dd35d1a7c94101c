"""The bench report as text: each figure beside its floor and, where the project has one, its target."""

from __future__ import annotations

from typing import Any

from .storage import render as storage_render


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _searches(s: dict[str, Any]) -> list[str]:
    lines = [
        f"  search        query encoder alone (floor): p50 {s['query_encode_p50_ms']:.1f} ms",
        "                clients      p50      p95      p99      q/s   server p50: encode / retrieve / rerank ms",
    ]
    for lv in s["levels"]:
        sp = lv["server_p50_ms"]
        lines.append(
            f"                {lv['concurrency']:>7} {lv['p50_ms']:8.1f} {lv['p95_ms']:8.1f} {lv['p99_ms']:8.1f} "
            f"{lv['throughput_qps']:8.1f}   {sp['encode']:.1f} / {sp['retrieve']:.1f} / {sp['rerank']:.1f}"
        )
    if "target" in s:
        t = s["target"]
        verdict = "met" if t["met"] else "MISSED"
        lines.append(
            f"  target        p50 at 1 client {t['p50_ms']:.1f} ms <= 1.3 x {s['query_encode_p50_ms']:.1f} + 10 = "
            f"{t['budget_ms']:.1f} ms: {verdict}"
        )
    return lines


def _ingest(r: dict[str, Any], unit: str) -> list[str]:
    ing, floor = r.get("ingest"), r["encoder_floor"]
    if not ing:
        raw = f"; raw encoder {floor['per_second']:.1f} {unit}/s" if floor else ""
        return [f"  ingest        not measured (collection reused){raw}"]
    return [
        f"  ingest        {ing['per_second']:.1f} {unit}/s over gRPC; raw encoder (floor) {floor['per_second']:.1f} "
        f"{unit}/s; ratio {r['ingest_over_encoder']:.2f}",
        f"  memory        server RSS {_mb(ing['server_rss_bytes'])} after ingest, of which "
        f"{_mb(ing.get('server_anonymous_bytes', 0))} its own (the rest: mapped files, reclaimable); peak RSS "
        f"{_mb(ing['server_peak_rss_bytes'])}; disk {ing['disk_bytes_per_item'] / 1024:,.1f} KiB per "
        f"{unit.rstrip('s')}" + _images(ing),
    ]


def _images(ing: dict[str, Any]) -> str:
    """The kept page images' part of the disk per page (reports from before it was measured have none)."""
    per = ing.get("image_bytes_per_item") or 0
    return f", of which {per / 1024:,.1f} KiB kept image + thumbnail" if per else ""


def _ocr_modes(pages: list[dict[str, Any]]) -> list[str]:
    """One line per page size measured under several OCR modes: ingest pages/s side by side."""
    out = []
    for n in dict.fromkeys(r["pages"] for r in pages):
        runs = [r for r in pages if r["pages"] == n and r.get("ingest")]
        if len({r.get("ocr", "default") for r in runs}) < 2:
            continue
        base = runs[0]["ingest"]["per_second"]
        parts = [
            f"ocr {r['ocr']} {r['ingest']['per_second']:.2f} pages/s ({r['ingest']['per_second'] / base:.2f}x)"
            for r in runs
        ]
        out += ["", f"{n:,} pages, ingest by OCR mode: " + "; ".join(parts)]
    return out


def render(report: dict[str, Any]) -> str:
    backend = report.get("floor_text_backend")
    floors = f", floors on text backend {backend}" if backend else ""
    where = f"{report['storage']} storage, {report['server_version']}{floors}"
    out = [f"mmsearch bench against {report['server']} ({where})"]
    for r in report["passages"]:
        out.append("")
        floor = r["encoder_floor"]
        tokens = f", {floor['mean_tokens']:.0f} tokens each on average" if floor else ""
        out.append(f"{r['passages']:,} passages of {r['words']} words ({r['encoder']}{tokens})")
        out += _ingest(r, "passages")
        out += _searches(r["search"])
        ts = r["two_stage"]
        if not ts:
            continue
        out.append(
            f"  two-stage     MaxSim over pooled + BM25 candidates vs exact brute-force MaxSim over every passage "
            f"({ts['queries']} queries; exact p50 {ts['exact_p50_ms']:,.1f} ms)"
        )
        for run in ts["runs"]:
            out.append(
                f"                prefetch {run['prefetch_k']:>4}: recall@10 {run['recall_at_10']:.3f} "
                f"({run['queries_fully_recalled']}/{ts['queries']} queries complete), retrieve + rerank p50 "
                f"{run['retrieve_rerank_p50_ms']:.1f} ms, {run['speedup']:,.0f}x faster than exact"
            )
    for r in report.get("storage_only", []):
        out.append("")
        out += storage_render(r)
    for r in report["pages"]:
        out.append("")
        mode = f"; ocr {r['ocr']}" if r.get("ocr", "default") != "default" else ""
        out.append(
            f"{r['pages']:,} pages from {r['files']} files ({r.get('page_encoder', 'ocr+text')}, {r['encoder']}{mode})"
        )
        out += _ingest(r, "pages")
        out += _searches(r["search"])
    out += _ocr_modes(report["pages"])
    for r in report.get("long_pdfs", []):
        ing = r["ingest"]
        out.append("")
        out.append(f"one PDF of {r['pages']:,} pages, ingested as one document")
        out.append(f"  ingest        {ing['per_second']:.2f} pages/s over gRPC ({ing['seconds']:.1f} s)")
        out.append(
            f"  memory        server RSS {_mb(r['server_rss_before_bytes'])} before, peak "
            f"{_mb(r['server_rss_peak_bytes'])} during ingest (+{_mb(r['server_rss_growth_bytes'])}); "
            f"own memory at most {_mb(r['server_anonymous_peak_bytes'])}"
        )
    return "\n".join(out)
