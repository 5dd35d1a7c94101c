"""`mmsearch bench --soak` (bench/soak.py) against a fake-encoder server, a few seconds long."""

from __future__ import annotations

import os

from mmsearch.client.bench.soak import Soak, SoakOptions, render
from mmsearch.server.app import App


def test_soak_mixes_calls_and_samples_server_memory(fake_app: App) -> None:
    opts = SoakOptions(server=f"127.0.0.1:{fake_app.port}", clients=3, minutes=0.05, sample_s=1.0, documents=20)
    report = Soak(opts).run().report()
    kinds = report["by_kind"]
    assert all(kinds[k]["calls"] > 0 for k in ("search", "ingest", "delete")), kinds
    assert set().union(*(kinds[k]["codes"] for k in kinds)) == {"OK"}, kinds
    assert kinds["search"]["p50_ms"] > 0
    assert len(report["rss_mib"]) >= 3 and report["rss_max_mib"] > 10
    assert "RSS growth after warm-up" in render(report)


def test_soak_reads_rss_from_proc_with_a_server_pid(fake_app: App) -> None:
    opts = SoakOptions(server=f"127.0.0.1:{fake_app.port}", clients=1, minutes=0.02, sample_s=1.0,
                       server_pid=os.getpid(), mix=(1.0, 0.0, 0.0))  # fmt: skip
    result = Soak(opts).run()
    assert result.memory and all(s.rss_bytes > 10 * 2**20 and s.anonymous_bytes == 0 for s in result.memory)
