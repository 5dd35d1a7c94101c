"""`mmsearch finetune`: trains a text model on the user's (query, positive[, negative]) pairs, locally
(no server needed unless hard negatives are mined from a collection)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from local folders only, never the hub


def _norm(text: str) -> str:
    return " ".join(text.split())


def mine_negatives(
    pairs: Sequence[Any], search: Callable[[str], Sequence[str]], log: Callable[[str], None] = print
) -> list[Any]:
    """For each pair without a negative: the best-ranked hit of its query (passage texts, as
    `search` returns them) that is no part of any positive of that query. Rank 1 is skipped, being
    the likeliest unjudged relevant passage."""
    from mmsearch.encoders.finetune import Pair

    positives: dict[str, list[str]] = {}
    for p in pairs:
        positives.setdefault(p.query, []).append(_norm(p.positive))
    out, mined = [], 0
    for p in pairs:
        if p.negative:
            out.append(p)
            continue
        negative = None
        for hit in list(search(p.query))[1:]:
            text = _norm(hit.removesuffix("…").removesuffix("..."))
            if text and not any(text in pos or pos in text for pos in positives[p.query]):
                negative = hit
                break
        mined += negative is not None
        out.append(Pair(p.query, p.positive, negative))
    log(f"mined hard negatives for {mined} of {len(pairs)} pairs")
    return out


def cmd_finetune(args: argparse.Namespace) -> int:
    say = (lambda s: print(s, file=sys.stderr)) if not args.json else (lambda s: None)
    with _library_bars(shown=not args.quiet):
        return _finetune(args, say)


def _finetune(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from mmsearch.encoders.base import EncoderError
    from mmsearch.encoders.finetune import PairsError, finetune, load_pairs, prepare_output

    try:
        try:
            pairs = load_pairs(Path(args.pairs))
        except OSError as exc:  # missing, a folder, unreadable: the file named, not "[Errno 2] ..."
            print(f"error: cannot read --pairs {args.pairs}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
            return 2
        prepare_output(Path(args.out))  # refuse a used output before any slow work
        if args.collection:
            from .connect import client_from_args as _client  # the server is needed only to mine

            with _client(args, timeout=600) as c:

                def search(q: str) -> list[str]:
                    # whole passages, as long as the positives they are trained against
                    return [r.snippet for r in c.search(args.collection, q, top_k=10, full_text=True).results]

                pairs = mine_negatives(pairs, search, say)
        report = finetune(
            pairs,
            Path(args.out),
            base=args.base,
            epochs=args.epochs,
            batch_size=args.batch_size,
            held_out=args.held_out,
            max_seq_length=args.max_seq_length,
            learning_rate=args.learning_rate,
            max_steps=args.max_steps,
            progress=not args.quiet,
            log=say,
        )
        report["hard_negatives"] = sum(1 for p in pairs if p.negative)  # given in the file or mined
    except (PairsError, EncoderError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        say(f"saved {args.out} ({report['steps']} steps, {report['seconds']} s); serve it with "
            f"`mmsearch serve --text-model {args.out}`")  # fmt: skip
    return 0


@contextlib.contextmanager
def _library_bars(shown: bool) -> Iterator[None]:
    """transformers' "Loading weights" and "Writing model shards" bars (and the hub's) are the
    libraries' own, outside finetune's `progress`: --quiet turns them off too. The switch is
    process-wide, so it is put back afterwards (main() also runs in-process, in tests)."""
    import huggingface_hub.utils as hub
    import transformers.utils.logging as tf

    was = tf.is_progress_bar_enabled(), not hub.are_progress_bars_disabled()
    if not shown:
        tf.disable_progress_bar()
        hub.disable_progress_bars()
    try:
        yield
    finally:
        if not shown:
            if was[0]:
                tf.enable_progress_bar()
            if was[1]:
                hub.enable_progress_bars()


def register(sp: argparse.ArgumentParser) -> None:
    """The flags of `mmsearch finetune` (sp carries the usual --server flags, used only to mine)."""
    sp.add_argument("--pairs", required=True, help='JSONL, one {"query", "positive"[, "negative"]} per line')
    sp.add_argument("--out", required=True, help="folder to write the model to (must not exist or be empty)")
    sp.add_argument("--base", default="all-MiniLM-L6-v2", help="model to start from: a folder or the bundled name")
    sp.add_argument("--epochs", type=int, default=1)
    sp.add_argument("--batch-size", type=int, default=32, help="pairs per step (each is a negative for the others)")
    sp.add_argument("--held-out", type=float, default=0.1, help="fraction of queries held out for the check")
    sp.add_argument(
        "--max-seq-length", type=int, default=128, help="tokens per text while training (0: the model's own)"
    )
    sp.add_argument("--learning-rate", type=float, default=3e-5)
    sp.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)")
    sp.add_argument("--collection", "-c", help="mine a hard negative per pair from this collection (needs a server)")
    sp.add_argument("--json", action="store_true", help="print the report as one JSON line")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sp.set_defaults(fn=cmd_finetune)
