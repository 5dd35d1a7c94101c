"""Fine-tuning MiniLM on BEIR SciFact's train pairs, then nDCG@10 on its test queries through the server.

1. pairs from qrels/train.tsv only: the claim, and the judged abstract as the eval ingests it
   ("<title>. <text>");
2. `mmsearch finetune` on them (skipped with --model, reusing a trained folder);
3. for the stock model and the fine-tuned one: a server on a fresh data directory (`--text-model`,
   `--seal-points 2000` as in the defaults run of docs/benchmarks.md, so the collection is indexed),
   `mmsearch eval beir` with the server's default ranking, then dense alone (weights 1/0/0) on the
   same collection.

    HF_HUB_OFFLINE=1 nice -n 10 uv run python benchmarks/finetune_scifact.py \\
        --work /tmp/ft --out benchmarks/results/scifact-finetune.json [--model DIR] [--skip-stock]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir_scifact"
MMSEARCH = [sys.executable, "-m", "mmsearch.client.cli"]


def texts(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(abstracts as the eval ingests them, "<title>. <text>"; claims), by id."""
    corpus = {}
    for line in (root / "corpus.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        title = (d.get("title") or "").strip()
        corpus[d["_id"]] = f"{title}. {d['text']}" if title else d["text"]
    queries = {(q := json.loads(line))["_id"]: q["text"] for line in (root / "queries.jsonl").open(encoding="utf-8")}
    return corpus, queries


def train_qrels(root: Path) -> list[tuple[str, str]]:
    """(query id, abstract id) of every positive judgement in qrels/train.tsv, in file order."""
    rows = []
    for i, line in enumerate((root / "qrels" / "train.tsv").open(encoding="utf-8")):
        qid, did, grade = line.rstrip("\n").split("\t")[:3]
        if i == 0 and not grade.lstrip("-").isdigit():
            continue  # header
        if int(grade) > 0:
            rows.append((qid, did))
    return rows


def write_pairs(root: Path, out: Path) -> int:
    corpus, queries = texts(root)
    judged = train_qrels(root)
    with out.open("w", encoding="utf-8") as fh:
        for qid, did in judged:
            fh.write(json.dumps({"query": queries[qid], "positive": corpus[did]}) + "\n")
    return len(judged)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model: str, data_dir: Path, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:  # fmt: skip
    """A server with `model` as the text model (seal 2,000 so the collection is indexed), once healthy."""
    port = _free_port()
    serve = [*MMSEARCH, "serve", "--port", str(port), "--http-port", "0", "--metrics-port", "0"]
    serve += ["--data-dir", str(data_dir), "--text-model", model, "--seal-points", "2000"]
    with log.open("a") as fh:
        server = subprocess.Popen(serve, stdout=fh, stderr=subprocess.STDOUT, env=env)
    for _ in range(600):
        ok = subprocess.run([*MMSEARCH, "health", "--server", f"127.0.0.1:{port}"], capture_output=True, env=env)
        if ok.returncode == 0:
            break
        time.sleep(2)
    return server, port


def evaluate(model: str, data_dir: Path, root: Path, log: Path) -> dict:
    """nDCG@10 etc. of the server's defaults and of dense alone, with `model` as the text model."""
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    server, port = start_server(model, data_dir, log, env)
    try:
        rows = {}
        for name, extra in (("server defaults", []), ("dense alone", ["--weights", "1,0,0"])):
            out = data_dir / f"{name.replace(' ', '-')}.json"
            cmd = [*MMSEARCH, "eval", "beir", str(root), "--split", "test", "--server", f"127.0.0.1:{port}"]
            subprocess.run([*cmd, *extra, "--out", str(out)], check=True, env=env)
            row = json.loads(out.read_text())["results"][0]
            rows[name] = {k: v for k, v in row.items() if k != "per_query_ndcg@10"}
            print(f"{model}: {name}: nDCG@10 {row['ndcg@10']:.4f}", file=sys.stderr)
        return rows
    finally:
        server.terminate()
        server.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--work", required=True, help="scratch folder (pairs, model, server data)")
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--model", help="an already fine-tuned folder (skips training)")
    ap.add_argument("--skip-stock", action="store_true", help="do not evaluate the stock model again")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--learning-rate", type=float, default=5e-5)
    args = ap.parse_args()
    root, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"dataset": "beir_scifact", "split": "test", "train": "qrels/train.tsv"}
    pairs = work / "scifact-train-pairs.jsonl"
    report["pairs"] = write_pairs(root, pairs)
    model = args.model
    if model is None:
        model = str(work / "minilm-scifact")
        train = [*MMSEARCH, "finetune", "--pairs", str(pairs), "--out", model, "--json", "--held-out", "0.05"]
        train += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        train += ["--max-seq-length", str(args.max_seq_length), "--learning-rate", str(args.learning_rate)]
        done = subprocess.run(train, check=True, stdout=subprocess.PIPE, text=True)
        report["finetune"] = json.loads(done.stdout.strip().splitlines()[-1])
    report["fine_tuned"] = evaluate(model, work / "data-finetuned", root, work / "server.log")
    if not args.skip_stock:
        report["stock"] = evaluate("all-MiniLM-L6-v2", work / "data-stock", root, work / "server.log")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
