"""Metadata boosts on real receipts: the 100 SROIE receipts (../shared/data/sroie_receipts) ingested as
text (their OCR transcripts, benchmarks/receipts.py) with `date` (ISO) and `total` as metadata, searched
for a shop with and without boosts through the server with the bundled MiniLM.

Per shop and boost: how many of the top n (n = the shop's receipts) are the shop's (the others must
stay out), Spearman's rho between position and date (negative = newer first) and total (positive =
cheaper first) over the shop's receipts in the list, and the list itself. Results:
benchmarks/results/boosts_receipts.json; docs/boosts.md.

    uv run python benchmarks/boosts_receipts.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from mmsearch.client import Client
from mmsearch.client.boosts import make_boosts
from mmsearch.protocol.wire import metadata_to_dict
from mmsearch.server.app import create_server
from mmsearch.server.settings import Settings
from mmsearch.v1 import ingest_pb2, search_pb2

sys.path.insert(0, str(Path(__file__).parent))
from receipts import receipts

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sroie_receipts"
# shop -> (its receipts, the day after its newest receipt: the recency origin; the data is from 2018,
# so the default origin, now, would give every receipt a decay of about 0)
SHOPS = {
    "UNIHAKKA INTERNATIONAL SDN BHD": (13, "2018-03-31", "7d"),
    "ONE ONE THREE SEAFOOD RESTAURANT SDN BHD": (10, "2018-06-24", "14d"),
}
WEIGHTS = (0.1, 0.2, 0.3, 0.5, 1.0)


def rho(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3 or len(set(ys)) < 2:
        return None
    return round(float(spearmanr(xs, ys).statistic), 3)


def run(c: Client, shop: str, n: int, specs: list[str]) -> dict[str, Any]:
    ranking = search_pb2.RankingOptions(boosts=make_boosts(specs))
    resp = c.search("receipts", f"receipt from {shop}", top_k=n, explain=True, ranking=ranking)
    rows = []
    for r in resp.results:
        m = metadata_to_dict(r.metadata)
        rows.append({
            "id": r.document_id, "company": m["company"], "date": m.get("date"), "total": m.get("total"),
            "score": round(r.score, 4),
            "unboosted": round(r.explanation.unboosted_score, 4) if specs else round(r.score, 4),
            "boosts": {b.boost: [round(b.factor, 4), round(b.contribution, 4)] for b in r.explanation.boosts},
        })  # fmt: skip
    mine = [(i, row) for i, row in enumerate(rows) if row["company"] == shop]
    dated = [(i, date.fromisoformat(row["date"]).toordinal()) for i, row in mine if row["date"]]
    priced = [(i, row["total"]) for i, row in mine if row["total"] is not None]
    return {
        "boosts": specs,
        "shop_in_top_n": f"{len(mine)}/{n}",
        "rho_position_date": rho([i for i, _ in dated], [d for _, d in dated]),
        "rho_position_total": rho([i for i, _ in priced], [t for _, t in priced]),
        "scores_in_0_1": all(0.0 <= row["score"] <= 1.0 for row in rows),
        "results": rows,
    }


def latency(c: Client, shop: str, specs: list[str], repeats: int = 15) -> dict[str, float]:
    """Median search ms with and without the boosts, interleaved (the boosts read every candidate's metadata)."""
    plain, boosted = [], []
    ranking = search_pb2.RankingOptions(boosts=make_boosts(specs))
    for _ in range(repeats):
        for out, opts in ((plain, None), (boosted, ranking)):
            t0 = time.perf_counter()
            c.search("receipts", f"receipt from {shop}", top_k=10, ranking=opts)
            out.append((time.perf_counter() - t0) * 1000)
    return {"plain_ms": round(statistics.median(plain), 2), "boosted_ms": round(statistics.median(boosted), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "boosts_receipts.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_server(Settings(port=0, data_dir=Path(tmp), workers=4))
        try:
            with Client(f"127.0.0.1:{app.port}", timeout=600, retries=0) as c:
                items = []
                for r in receipts(DATA):
                    item = ingest_pb2.IngestItem(id=r["id"], text=r["text"], source=r["id"])
                    item.metadata.fields.update(r["metadata"])
                    items.append(item)
                assert all(a.ok for a in c.ingest("receipts", items))
                result: dict[str, Any] = {"model": "all-MiniLM-L6-v2 (bundled)", "receipts": len(items), "shops": {}}
                for shop, (n, origin, scale) in SHOPS.items():
                    runs = [run(c, shop, n, [])]
                    runs += [run(c, shop, n, [f"date:exp:{scale}:{w}:{origin}"]) for w in WEIGHTS]
                    runs += [run(c, shop, n, [f"total:lower:{w}"]) for w in WEIGHTS]
                    runs += [run(c, shop, n, [f"total:lower:{w}:0..200"]) for w in WEIGHTS]
                    runs.append(run(c, shop, n, [f"date:exp:{scale}:0.3:{origin}", "total:lower:0.3"]))
                    for r in runs:
                        print(
                            shop[:12], r["boosts"], r["shop_in_top_n"], r["rho_position_date"], r["rho_position_total"]
                        )
                    both = [f"date:exp:{scale}:0.3:{origin}", "total:lower:0.3"]
                    result["shops"][shop] = {"receipts": n, "runs": runs, "latency": latency(c, shop, both)}
        finally:
            app.stop(grace=None)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
