"""One SciFact fine-tuning run that keeps a model after every epoch, so 1, 2 and 3 epochs are compared
from one run (same shuffles, same schedule) instead of three. Pairs from qrels/train.tsv only
(benchmarks/finetune_scifact.py writes them); each epoch's model goes to OUT/epoch-N, the last to
OUT/epoch-<epochs>; evaluate them with `finetune_scifact.py --model OUT/epoch-N --skip-stock`.

    HF_HUB_OFFLINE=1 nice -n 10 uv run python benchmarks/finetune_scifact_epochs.py \\
        --pairs /tmp/ft/pairs.jsonl --out /tmp/ft/run --epochs 3 --max-seq-length 128
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mmsearch.encoders.finetune import finetune, load_pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--out", required=True, help="folder for epoch-N models and report.json")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--learning-rate", type=float, default=5e-5)
    ap.add_argument("--held-out", type=float, default=0.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    marks: dict[str, float] = {}

    def save(epoch: int, model: Any) -> None:
        # saved with the model's own limit (256), as finetune() saves the last one
        length, model.max_seq_length = model.max_seq_length, 256
        model.save(str(out / f"epoch-{epoch}"))
        model.max_seq_length = length
        marks[f"epoch-{epoch}"] = round(time.monotonic() - started, 1)
        print(f"saved epoch {epoch} after {marks[f'epoch-{epoch}']} s", file=sys.stderr, flush=True)

    report = finetune(
        load_pairs(Path(args.pairs)),
        out / f"epoch-{args.epochs}",
        epochs=args.epochs,
        batch_size=args.batch_size,
        held_out=args.held_out,
        max_seq_length=args.max_seq_length,
        learning_rate=args.learning_rate,
        on_epoch=save,
    )
    report["epoch_seconds"] = marks
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
