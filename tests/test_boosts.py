"""Metadata boosts (docs/boosts.md): the formula on its own, the `--boost` syntax, and searches over
the real SROIE receipts (OCR text, date and total as metadata) through the server on both backends:
a recency boost moves a shop's newer receipts up, a price weight its cheaper ones, the other shops'
receipts stay below, scores stay in [0, 1], and bad boosts are INVALID_ARGUMENT naming the problem."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from scipy.stats import spearmanr

from mmsearch.client import Client, MMSearchError
from mmsearch.client.boosts import BoostSyntaxError, make_boosts
from mmsearch.protocol.vocab import BoostDirection, DecayFunction
from mmsearch.protocol.wire import metadata_to_dict
from mmsearch.server.errors import InvalidArgument
from mmsearch.server.ranking import boosts
from mmsearch.v1 import search_pb2

from .documents import text_item

SHOP = "UNIHAKKA INTERNATIONAL SDN BHD"  # 13 receipts, 3-30 March 2018, totals 6.90-9.20 (most 8.20)
SEAFOOD = "ONE ONE THREE SEAFOOD RESTAURANT SDN BHD"  # 10 receipts, April-June 2018, totals 35.00-179.50


def _receipts(shared: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, OCR text, {company, date (ISO), total}) for every receipt; dates as the demo reads them."""
    formats = ("%d/%m/%Y", "%d-%m-%Y", "%d %b %Y", "%Y-%m-%d", "%d/%m/%y", "%d-%m-%y")
    out = []
    for line in (shared / "sroie_receipts" / "manifest.jsonl").open(encoding="utf-8"):
        m = json.loads(line)
        meta: dict[str, Any] = {"company": m["company"]}
        for fmt in formats:
            try:
                meta["date"] = datetime.strptime(m["date"].strip(), fmt).date().isoformat()
                break
            except ValueError:
                pass
        if m["total"].strip("$ "):
            meta["total"] = float(m["total"].strip("$ RM").replace(",", ""))
        out.append((f"receipt-{m['id']}", m["ocr_text"], meta))
    return out


@pytest.fixture
def receipts(fake_client: Client, shared_data: Path) -> Client:
    items = [text_item(i, text, meta) for i, text, meta in _receipts(shared_data)]
    assert all(a.ok for a in fake_client.ingest("receipts", items))
    return fake_client


def _search(c: Client, *specs: str, shop: str = SHOP, top_k: int = 13) -> list[tuple[str, float, dict[str, Any], Any]]:
    ranking = search_pb2.RankingOptions(boosts=make_boosts(specs))
    results = c.search("receipts", f"receipt from {shop}", top_k=top_k, explain=True, ranking=ranking).results
    return [(r.document_id, r.score, metadata_to_dict(r.metadata), r.explanation) for r in results]


def _rank_correlation(results: list[tuple[str, float, dict[str, Any], Any]], key: str, shop: str = SHOP) -> float:
    """Spearman between the position in the list and the field, over the shop's receipts with it."""
    mine = [(n, m[key]) for n, (_, _, m, _) in enumerate(results) if m["company"] == shop and key in m]
    values = [datetime.fromisoformat(v).toordinal() if isinstance(v, str) else v for _, v in mine]
    return float(spearmanr([n for n, _ in mine], values).statistic)


def test_recency_moves_newer_receipts_of_the_shop_up(receipts: Client) -> None:
    plain = _search(receipts)
    boosted = _search(receipts, "date:exp:7d:0.2:2018-03-31")
    assert all(m["company"] == SHOP for _, _, m, _ in plain)
    assert all(m["company"] == SHOP for _, _, m, _ in boosted)  # the other shops' receipts stay out
    # position vs date: negative = newer first
    assert _rank_correlation(boosted, "date") < -0.7
    assert _rank_correlation(boosted, "date") < _rank_correlation(plain, "date") - 0.4
    assert boosted[0][2]["date"] >= "2018-03-27"  # one of the shop's three newest receipts leads
    assert all(0.0 <= s <= 1.0 for _, s, _, _ in boosted)
    top = boosted[0][3]
    assert [b.boost for b in top.boosts] == ["date:exp:7d"]
    days = (datetime(2018, 3, 31) - datetime.fromisoformat(boosted[0][2]["date"])).days
    assert top.boosts[0].factor == pytest.approx(0.5 ** (days / 7), abs=1e-4)  # exp: 0.5 at one scale
    assert top.boosts[0].contribution > 0
    assert boosted[0][1] == pytest.approx((top.unboosted_score + 0.2 * top.boosts[0].factor) / 1.2, abs=1e-5)


def test_price_weight_moves_cheaper_receipts_up(receipts: Client) -> None:
    plain = _search(receipts, shop=SEAFOOD, top_k=10)
    cheaper = _search(receipts, "total:lower:0.3", shop=SEAFOOD, top_k=10)
    assert all(m["company"] == SEAFOOD for _, _, m, _ in plain + cheaper)
    # position vs total: positive = cheaper first
    assert _rank_correlation(cheaper, "total", SEAFOOD) > _rank_correlation(plain, "total", SEAFOOD) + 0.2
    # min-max over the candidates: factors fall as totals rise
    factor = {d: e.boosts[0].factor for d, _, _, e in cheaper}
    totals = {d: m["total"] for d, _, m, _ in cheaper}
    assert sorted(totals, key=totals.__getitem__) == sorted(totals, key=lambda d: -factor[d])
    # a receipt without a total (033, of the other shop) gets factor 0
    unihakka = _search(receipts, "total:lower:0.3")
    assert [e.boosts[0].factor for d, _, _, e in unihakka if d == "receipt-033"] in ([], [0.0])


def test_keyword_multiplier_promotes_and_demotes(receipts: Client) -> None:
    plain = _search(receipts, top_k=20)
    others = [d for d, _, m, _ in plain if m["company"] != SHOP]
    assert others
    promoted = _search(receipts, f"company={plain[-1][2]['company']}:5", top_k=20)
    assert promoted[0][0] == plain[-1][0]  # x5 lifts the last result to the top
    assert promoted[0][1] <= 1.0
    demoted = _search(receipts, f"company={SHOP}:0.1", top_k=20)
    assert demoted[0][2]["company"] != SHOP
    assert all(0.0 <= s <= 1.0 for _, s, _, _ in demoted)


BAD = [  # (--boost, what the message names)
    ("company:lower:0.3", "'company'"),  # a keyword field is not numeric
    ("total:exp:7d:0.5", "not an ISO 8601 date"),
    ("prize:lower:0.3", "no candidate has a numeric field 'prize'"),
    ("date:exp:30 days:0.5", "does not parse"),
    ("date:exp:30d:-1", "weight must be in"),
    ("total:lower:1e6", "weight must be in"),
    ("company=X:0", "multiplier must be in"),
    ("date:exp:30d:0.5:yesterday", "origin"),
]


def test_bad_boosts_are_invalid_argument(receipts: Client) -> None:
    for spec, message in BAD:
        with pytest.raises(MMSearchError) as exc:
            _search(receipts, spec)
        assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT, spec
        assert message in exc.value.details, (spec, exc.value.details)
    ranking = search_pb2.RankingOptions()
    ranking.boosts.decay.add(key="date", function=9, scale="7d", weight=0.5)  # type: ignore[arg-type]
    with pytest.raises(MMSearchError) as exc:
        receipts.search("receipts", f"receipt from {SHOP}", ranking=ranking)
    assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown decay" in exc.value.details


def test_formula_stays_in_unit_interval() -> None:
    rng = np.random.default_rng(0)
    metas = [{"p": float(x), "d": f"2024-01-{1 + int(x) % 28:02d}", "s": "a" if x > 50 else "b"}
             for x in rng.uniform(0, 100, 200)]  # fmt: skip
    b = boosts.Boosts(
        numeric=[boosts.NumericBoost("p", BoostDirection.LOWER, 100.0)],
        decay=[boosts.DecayBoost("d", DecayFunction.GAUSS, "3d", 50.0, origin="2024-01-15")],
        keyword=[boosts.KeywordBoost("s", "a", 100.0), boosts.KeywordBoost("s", "b", 0.01)],
    )
    boosts.validate(b)
    f = boosts.factors(b, metas, now=0.0)
    for relevance in (np.zeros(200), np.ones(200), rng.uniform(0, 1, 200)):
        s = boosts.combine(relevance, f)
        assert s.min() >= 0.0 and s.max() <= 1.0
    # the best possible candidate (relevance 1, every factor 1, matching the x100 keyword) scores 1
    best = boosts.Factors(np.ones((1, 2)), f.weights, [], np.array([[100.0, 1.0]]), f.ceilings, [])
    assert boosts.combine(np.ones(1), best)[0] == pytest.approx(1.0)


def test_decay_functions_reach_the_midpoint_at_one_scale() -> None:
    day = 86400.0
    metas = [{"d": "2024-01-01"}, {"d": "2024-01-31"}, {"d": "2024-03-15"}]
    for function in DecayFunction:
        b = boosts.Boosts(decay=[boosts.DecayBoost("d", function, "30d", 1.0, origin="2024-01-31")])
        f = boosts.factors(b, metas, now=0.0).additive[:, 0]
        assert f[1] == pytest.approx(1.0)
        assert f[0] == pytest.approx(0.5)  # 30 days before the origin
        assert f[2] < 0.5  # 44 days after: distance is absolute
    assert boosts.parse_scale("12h") == 12 * 3600
    assert boosts.parse_scale("2w") == 14 * day
    with pytest.raises(InvalidArgument, match="does not parse"):
        boosts.parse_scale("0d")


def test_boost_syntax() -> None:
    b = make_boosts(["price:lower:0.3", "price:higher:1:0..100", "date:gauss:7d:1:2018-03-31T12:00:00",
                     "source=handbook:1.2", "url=http://x:y:0.5"])  # fmt: skip
    assert (b.numeric[0].key, b.numeric[0].direction, b.numeric[0].weight) == (
        "price", search_pb2.BOOST_DIRECTION_LOWER, pytest.approx(0.3),
    )  # fmt: skip
    assert (b.numeric[1].min, b.numeric[1].max) == (0, 100)
    assert (b.decay[0].function, b.decay[0].scale, b.decay[0].origin) == (
        search_pb2.DECAY_FUNCTION_GAUSS, "7d", "2018-03-31T12:00:00",
    )  # fmt: skip
    assert (b.keyword[0].key, b.keyword[0].value) == ("source", "handbook")
    assert (b.keyword[1].value, b.keyword[1].multiplier) == ("http://x:y", pytest.approx(0.5))
    for bad in ("price", "price:cheaper:0.3", "price:lower:x", "date:exp:30d", "=x:1", "a=b", "p:lower:1:5"):
        with pytest.raises(BoostSyntaxError):
            make_boosts([bad])
