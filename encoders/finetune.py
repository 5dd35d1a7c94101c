"""Fine-tuning a sentence-transformers text model on (query, positive[, negative]) pairs, on CPU and
offline: MultipleNegativesRankingLoss (every other positive in a batch is a negative for a query,
plus the pair's hard negative when it has one), AdamW with linear warm-up and decay, and a held-out
check (recall@1 / MRR@10 of each held-out query's positives among all the file's texts) before and
after. The result is written to a temporary folder beside the output and renamed into place at the
end, so an interrupted or failed run leaves nothing half-written.

The loop is written here rather than with SentenceTransformerTrainer, which needs the `datasets`
package (pyarrow, pandas) that nothing else in mmsearch uses; the loss and the model are the library's.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .models import resolve_model_dir


class PairsError(ValueError):
    """The pairs file is not usable (the message names the line)."""


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    negative: str | None = None


def parse_pairs(lines: Iterable[str], source: str = "pairs") -> list[Pair]:
    """One JSON object per line: {"query", "positive"[, "negative"]}, non-empty strings. Blank lines
    are skipped; the first bad line raises PairsError naming it."""
    pairs = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PairsError(f"{source}:{n}: malformed JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise PairsError(f'{source}:{n}: expected an object with "query" and "positive"')
        fields = {}
        for key in ("query", "positive", "negative"):
            value = rec.get(key)
            if value is None and key == "negative":
                continue
            if value is None:
                raise PairsError(f"{source}:{n}: missing field {key!r}")
            if not isinstance(value, str) or not value.strip():
                raise PairsError(f"{source}:{n}: field {key!r} must be non-empty text")
            fields[key] = value
        pairs.append(Pair(**fields))
    if not pairs:
        raise PairsError(f"{source}: no pairs")
    return pairs


def load_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as fh:
        return parse_pairs(fh, str(path))


def split_held_out(pairs: Sequence[Pair], fraction: float, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Held out by query (all pairs of a query on one side), so the check never sees a trained query."""
    queries = sorted({p.query for p in pairs})
    random.Random(seed).shuffle(queries)
    held = set(queries[: round(len(queries) * fraction)])
    return [p for p in pairs if p.query not in held], [p for p in pairs if p.query in held]


def make_batches(pairs: Sequence[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches in which no text appears twice (a repeated positive would be a false
    in-batch negative); pairs with and without a hard negative are batched apart because the loss
    takes the same columns for every row."""
    out: list[list[Pair]] = []
    for group in ([p for p in pairs if p.negative], [p for p in pairs if not p.negative]):
        pending = list(group)
        rng.shuffle(pending)
        while pending:
            batch: list[Pair] = []
            seen: set[str] = set()
            rest = []
            for p in pending:
                texts = {p.query, p.positive, p.negative or p.positive}
                if len(batch) < size and not texts & seen:
                    batch.append(p)
                    seen |= texts
                else:
                    rest.append(p)
            out.append(batch)
            pending = rest
    rng.shuffle(out)
    return out


def held_out_check(model: Any, held: Sequence[Pair], corpus: Sequence[str]) -> dict[str, float]:
    """recall@1 and MRR@10 of each held-out query's positives ranked among `corpus` (every text of
    the file) by cosine similarity."""
    if not held:
        return {}
    queries = sorted({p.query for p in held})
    relevant: dict[str, set[int]] = {q: set() for q in queries}
    index = {t: i for i, t in enumerate(corpus)}
    for p in held:
        relevant[p.query].add(index[p.positive])
    q = model.encode(queries, normalize_embeddings=True, batch_size=32, show_progress_bar=False)  # (Q, dim)
    d = model.encode(list(corpus), normalize_embeddings=True, batch_size=32, show_progress_bar=False)  # (D, dim)
    order = np.argsort(-(q @ d.T), axis=1)[:, :10]  # (Q, 10)
    r1 = mrr = 0.0
    for qi, text in enumerate(queries):
        ranks = [k for k, doc in enumerate(order[qi]) if int(doc) in relevant[text]]
        r1 += float(bool(ranks) and ranks[0] == 0)
        mrr += 1.0 / (ranks[0] + 1) if ranks else 0.0
    return {"queries": len(queries), "recall@1": round(r1 / len(queries), 4), "mrr@10": round(mrr / len(queries), 4)}


def prepare_output(out: Path) -> Path:
    """Refuses an output that exists and is not an empty folder; returns the temporary folder the
    model is written to first."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PairsError(f"output {out} exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def finetune(
    pairs: Sequence[Pair],
    out: Path,
    *,
    base: str = "all-MiniLM-L6-v2",
    epochs: int = 1,
    batch_size: int = 32,
    held_out: float = 0.1,
    max_seq_length: int = 0,
    learning_rate: float = 2e-5,
    max_steps: int = 0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """Trains `base` on `pairs` and saves the result as a sentence-transformers folder at `out`.
    max_seq_length: tokens per text while training (0: the model's own; shorter is much faster on
    CPU); the saved model keeps its own limit. max_steps: stop early (0: all epochs). Returns a
    report: steps, seconds, the held-out check before and after."""
    import time

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if epochs < 1 or batch_size < 2 or not 0.0 <= held_out < 1.0:
        raise PairsError("epochs must be >= 1, batch size >= 2 and the held-out fraction in [0, 1)")
    tmp = prepare_output(out)
    random.seed(seed)
    torch.manual_seed(seed)
    train, held = split_held_out(pairs, held_out, seed)
    if not train:
        raise PairsError("no pairs left to train on after holding some out")
    corpus = list(dict.fromkeys(t for p in pairs for t in (p.positive, p.negative) if t))
    model = SentenceTransformer(str(resolve_model_dir(base)), device="cpu", local_files_only=True)
    own_length = model.max_seq_length
    before = held_out_check(model, held, corpus)
    if before:
        log(f"held-out check before: {before}")
    loss = MultipleNegativesRankingLoss(model)
    rng = random.Random(seed)
    plan = [make_batches(train, batch_size, rng) for _ in range(epochs)]
    total = sum(len(b) for b in plan)
    if max_steps:
        total = min(total, max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    model.max_seq_length = max_seq_length or own_length
    model.train()
    started = time.monotonic()
    step = 0
    bar = tqdm(total=total, desc="fine-tuning", unit="step", disable=not progress)
    try:
        for epoch, batches in enumerate(plan, start=1):
            if epoch > 1 and on_epoch is not None and step < total:
                model.eval()
                on_epoch(epoch - 1, model)
                model.train()
            for batch in batches:
                if step >= total:
                    break
                columns = [[p.query for p in batch], [p.positive for p in batch]]
                if batch[0].negative:
                    columns.append([p.negative or "" for p in batch])
                features = [model.preprocess(c) for c in columns]
                value = loss(features, None)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value.item():.4f}")
        bar.close()
        model.eval()
        model.max_seq_length = own_length
        after = held_out_check(model, held, corpus)
        if after:
            log(f"held-out check after:  {after}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp))
        if out.exists():
            out.rmdir()  # empty (prepare_output checked)
        os.replace(tmp, out)
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "base": base,
        "pairs": len(pairs),
        "train_pairs": len(train),
        "held_out_pairs": len(held),
        "epochs": epochs,
        "batch_size": batch_size,
        "max_seq_length": max_seq_length or own_length,
        "steps": step,
        "seconds": round(time.monotonic() - started, 1),
        "held_out_before": before,
        "held_out_after": after,
    }
