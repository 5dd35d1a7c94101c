"""Precision and recall of `FindDuplicates` on planted near-duplicates, through a server (MiniLM).

Text: SciFact abstracts; for each of `--texts` originals a lightly edited copy (2 words dropped, 1
repeated, 2 OCR-style character slips), plus as many distinct abstracts as controls.
Pages: SROIE receipt scans; for each of `--receipts` originals three copies (re-saved as JPEG at
quality 60, rescaled to 70%, rotated 2 degrees), plus distinct receipts as controls, several of
the same shop (UNIHAKKA has 13), which read alike. Pages go through the server's OCR.

A predicted pair: two documents in one group (cross_document); the truth: an original and its
copies, pairwise. Reported per threshold.

    HF_HUB_OFFLINE=1 nice -n 10 uv run python benchmarks/dedup_planted.py --server HOST:PORT \\
        --out benchmarks/results/dedup-planted.json
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import sys
import time
from pathlib import Path

from PIL import Image

from mmsearch.client import Client
from mmsearch.v1 import common_pb2, ingest_pb2

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SLIPS = {"l": "1", "o": "0", "e": "c", "i": "l", "s": "5", "a": "o"}


def edit(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(2):
        del words[rng.randrange(len(words))]
    k = rng.randrange(len(words))
    words.insert(k, words[k])
    for _ in range(2):
        k = rng.randrange(len(words))
        words[k] = "".join(SLIPS.get(ch, ch) for ch in words[k])
    return " ".join(words)


def variants(jpeg: bytes) -> dict[str, bytes]:
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    out = {}
    for name, im, quality in (
        ("resaved", img, 60),
        ("rescaled", img.resize((int(img.width * 0.7), int(img.height * 0.7)), Image.Resampling.LANCZOS), 90),
        ("rotated", img.rotate(2, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white"), 90),
    ):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        out[name] = buf.getvalue()
    return out


def planted(n_texts: int, n_receipts: int, seed: int) -> tuple[list[ingest_pb2.IngestItem], set[frozenset[str]]]:
    rng = random.Random(seed)
    items, truth = [], set()
    docs = [json.loads(line) for line in (DATA / "beir_scifact" / "corpus.jsonl").open(encoding="utf-8")]
    docs = [d for d in docs if len(d["text"].split()) >= 60]
    for d in rng.sample(docs, 2 * n_texts)[:n_texts]:
        text = f"{d['title']}. {d['text']}"
        items += [ingest_pb2.IngestItem(id=f"t{d['_id']}", text=text)]
        items += [ingest_pb2.IngestItem(id=f"t{d['_id']}-edited", text=edit(text, rng))]
        truth.add(frozenset({f"t{d['_id']}", f"t{d['_id']}-edited"}))
    used = {i.id for i in items}
    for d in [d for d in rng.sample(docs, 3 * n_texts) if f"t{d['_id']}" not in used][:n_texts]:
        items.append(ingest_pb2.IngestItem(id=f"t{d['_id']}", text=f"{d['title']}. {d['text']}"))
    scans = sorted((DATA / "sroie_receipts" / "images").glob("*.jpg"))
    rng.shuffle(scans)
    for k, path in enumerate(scans[: 2 * n_receipts]):
        rid = f"r{path.stem}"
        data = path.read_bytes()
        items.append(ingest_pb2.IngestItem(id=rid, image=common_pb2.Image(data=data, mime_type="image/jpeg")))
        if k < n_receipts:  # the first n_receipts get copies; the rest are controls
            group = [rid]
            for name, copy in variants(data).items():
                items.append(
                    ingest_pb2.IngestItem(id=f"{rid}-{name}", image=common_pb2.Image(data=copy, mime_type="image/jpeg"))
                )
                group.append(f"{rid}-{name}")
            truth |= {frozenset(p) for p in itertools.combinations(group, 2)}
    return items, truth


def score(groups: list[list[str]], truth: set[frozenset[str]], prefix: str) -> dict[str, float]:
    pred = {frozenset(p) for g in groups for p in itertools.combinations(sorted(set(g)), 2)}
    pred = {p for p in pred if all(x.startswith(prefix) for x in p)}
    want = {p for p in truth if all(x.startswith(prefix) for x in p)}
    hit = len(pred & want)
    return {
        "predicted_pairs": len(pred),
        "true_pairs": len(want),
        "precision": round(hit / len(pred), 4) if pred else 1.0,
        "recall": round(hit / len(want), 4) if want else 1.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default="127.0.0.1:50051")
    ap.add_argument("--collection", default="dedup-planted")
    ap.add_argument("--texts", type=int, default=100, help="SciFact originals (each gets an edited copy)")
    ap.add_argument("--receipts", type=int, default=10, help="receipt scans that get three copies each")
    ap.add_argument("--thresholds", default="0.8,0.85,0.9,0.93,0.95,0.97,0.99")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    items, truth = planted(args.texts, args.receipts, args.seed)
    with Client(args.server, timeout=3600, retries=0) as c:
        if args.collection in {col.name for col in c.list_collections()}:
            c.delete_collection(args.collection)
        c.create_collection(args.collection)
        started = time.monotonic()
        acks = list(c.ingest(args.collection, items))
        bad = [f"{a.id}: {a.error}" for a in acks if not a.ok]
        took = time.monotonic() - started
        print(f"ingested {len(acks) - len(bad)} items in {took:.0f} s; {bad[:5]}", file=sys.stderr)
        points = c.get_collection(args.collection).point_count
        rows = []
        for t in [float(x) for x in args.thresholds.split(",")]:
            started = time.monotonic()
            found = c.find_duplicates(args.collection, threshold=t, cross_document=True)
            seconds = time.monotonic() - started
            groups = [list(g.document_ids) for g in found.groups]
            row = {"threshold": t, "seconds": round(seconds, 2), "groups": len(groups)}
            row |= {"text": score(groups, truth, "t"), "pages": score(groups, truth, "r")}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    report = {
        "texts": {"originals": args.texts, "edited_copies": args.texts, "controls": args.texts},
        "receipts": {"originals": args.receipts, "copies_each": 3, "controls": args.receipts},
        "items": len(items),
        "points": points,
        "rejected": bad,
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
