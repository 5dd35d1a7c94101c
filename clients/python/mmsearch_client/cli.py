"""The `mmsearch` command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from mmsearch.protocol.vocab import Fusion, Modality
from mmsearch.protocol.wire import FUSION, MODALITY, metadata_to_dict
from mmsearch.v1 import collections_pb2

from .client import Client, MMSearchError
from .commands_dedup import similarity
from .connect import Credentials
from .connect import client_from_args as _client
from .files import Rejected, Skipped, expand, items_from_file

DEFAULT_SERVER = os.environ.get("MMSEARCH_SERVER", "127.0.0.1:50051")
_COND = re.compile(r"^([A-Za-z0-9_.\-]+)(>=|<=|>|<|=)(.*)$")


def _scalar(text: str) -> Any:
    """true/false, a whole number, a decimal number, or else text. Digits with a leading zero (a zip
    code, "007") stay text: as a number they would lose the zero."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"-?(0|[1-9]\d*)", text):
        return int(text)
    if re.fullmatch(r"-?(0|[1-9]\d*)\.\d+", text):
        return float(text)
    return text


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


def _any_of(texts: list[str]) -> list[Any]:
    """key=a|b: whole numbers when every value is one, else every value as the text typed (the server
    refuses a mix; `code=123|abc` on a keyword field means the texts, and "123" matches as text)."""
    values = [_scalar(t) for t in texts]
    whole = [isinstance(v, int) and not isinstance(v, bool) for v in values]
    if any(whole) and not all(whole) and all(w or isinstance(v, str) for w, v in zip(whole, values, strict=True)):
        return texts  # whole numbers and words: all words. Decimals or true/false go as they are,
    return values  # and the server names what it cannot match any-of (whole numbers or texts only).


def parse_filters(specs: list[str]) -> dict[str, Any] | None:
    """key=value (exact), key=a|b (any of), key>=n, key<=n, key>n, key<n (ranges)."""
    out: dict[str, Any] = {}
    for spec in specs or []:
        m = _COND.match(spec)
        if not m:
            raise SystemExit(f"bad --filter {spec!r}: expected key=value, key=a|b, key>=n, key<=n, key>n or key<n")
        key, op, value = m.groups()
        if op == "=" and re.fullmatch(r"[<>]-?\d+(\.\d+)?", value):  # year=>2020: the text ">2020"
            raise SystemExit(f"bad --filter {spec!r}: did you mean {key}{value[0]}={value[1:]}?")
        if op == "=":
            out[key] = _any_of(value.split("|")) if "|" in value else _scalar(value)
        else:
            try:
                bound = float(value)
            except ValueError:
                raise SystemExit(f"bad --filter {spec!r}: {value!r} is not a number") from None
            rng = out.setdefault(key, {})
            rng[{">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]] = bound
    return out or None


def result_dict(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "document_id": r.document_id,
        "page": r.page,
        "modality": MODALITY.from_wire(r.modality) or "unspecified",
        "score": round(r.score, 6),
        "metadata": metadata_to_dict(r.metadata),
        "snippet": r.snippet,
    }
    if r.HasField("explanation"):
        d["explanation"] = {
            "signals": dict(r.explanation.signals),
            "matches": [
                {"query_token": m.query_token, "document_token": m.document_token, "similarity": round(m.similarity, 4)}
                for m in r.explanation.matches
            ],
        }
        e = r.explanation
        if e.text_source:  # pages: where the words came from, and which OCR models read them
            d["explanation"]["text_source"] = e.text_source
            if e.ocr_reader:
                d["explanation"]["ocr_reader"] = e.ocr_reader
        if e.HasField("region"):  # a page ranked by its best region: that region's box, in page pixels
            b = e.region
            d["explanation"]["region"] = {"box": [b.x0, b.y0, b.x1, b.y1], "page_size": [e.page_width, e.page_height]}
        if r.explanation.boosts:
            d["explanation"]["unboosted_score"] = round(r.explanation.unboosted_score, 6)
            d["explanation"]["boosts"] = [
                {"boost": b.boost, "factor": round(b.factor, 4), "contribution": round(b.contribution, 4)}
                for b in r.explanation.boosts
            ]
    return d


def cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as c:
        try:
            status = c.health(timeout=args.timeout)
        except MMSearchError as exc:
            print(f"not serving: {exc.details}", file=sys.stderr)
            return 1
    print(status)
    return 0 if status == "SERVING" else 1


def _count_items(files: list[Path]) -> int:
    total = 0
    for f in files:
        if f.suffix.lower() == ".jsonl":
            with f.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
        else:
            total += 1
    return total


def _metadata_args(specs: list[str]) -> dict[str, Any]:
    out = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"bad --metadata {spec!r}: expected KEY=VALUE, e.g. team=finance")
        out[key.strip()] = _scalar(value)
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    entries = list(expand(args.paths))
    rejected: list[Rejected] = [e for e in entries if isinstance(e, Rejected)]
    files = [e for e in entries if isinstance(e, Path)]
    for s in (e for e in entries if isinstance(e, Skipped)):
        kinds = ", ".join(f"{n} {t}" for t, n in sorted(s.types.items()))
        print(f"skipped {s.types.total()} files of unsupported types in {s.folder} ({kinds})", file=sys.stderr)
    ok = points = 0
    dups = {"skipped": 0, "replaced": 0}  # acks naming duplicate_of: skipped ones are ok with no points
    first_source: dict[str, str] = {}  # id -> the input that first used it in this run
    common = _metadata_args(args.metadata)

    def items() -> Iterator[Any]:
        for f in files:
            for item in items_from_file(f):
                if not isinstance(item, Rejected) and item.id in first_source:
                    # Ids are file names without their extension: two folders' "receipt.jpg" would
                    # silently replace each other, the second one stored alone.
                    item = Rejected(
                        item.source,
                        f"id {item.id!r} is already used in this run by {first_source[item.id]} (a file's id is "
                        'its name without the extension, a JSONL record\'s its "id"); rename one of them',
                    )
                if isinstance(item, Rejected):
                    rejected.append(item)
                    progress.advance(task)
                else:
                    first_source[item.id] = item.source or item.id
                    if common:
                        merged = {**common, **metadata_to_dict(item.metadata)}
                        item.metadata.Clear()
                        item.metadata.fields.update(merged)
                    yield item

    columns = [
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}"),  # the long item under way: "attention.pdf 7/15 pages"
    ]
    with _client(args) as client, Progress(*columns, disable=args.quiet, transient=True) as progress:
        task = progress.add_task("ingest", total=_count_items(files), current="")
        try:
            dup = {"on_duplicate": args.on_duplicate or "", "duplicate_threshold": args.duplicate_threshold}
            for ack in client.ingest(args.collection, items(), report_progress=not args.quiet, **dup):
                if ack.HasField("progress"):
                    p = ack.progress
                    of = f"/{p.points_total}" if p.points_total else ""
                    text = ".jsonl:" in ack.source or Path(ack.source).suffix.lower() in {".txt", ".md", ".markdown"}
                    unit = "passages" if text else "pages"
                    progress.update(task, current=f"{ack.source or ack.id} {p.points_stored}{of} {unit}")
                    continue
                progress.update(task, advance=1, current="")
                if ack.duplicate_of:
                    verb = "skipped" if ack.ok and not ack.points else "replaced"
                    dups[verb] += 1
                    print(f"{verb} {ack.source or ack.id}: duplicate of {', '.join(ack.duplicate_of)}", file=sys.stderr)
                if ack.ok:
                    ok += not (ack.duplicate_of and not ack.points)  # a skipped item is ok, but not stored
                    points += ack.points
                else:
                    rejected.append(Rejected(ack.source or ack.id, f"{ack.error_code}: {ack.error}"))
        except MMSearchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for r in rejected:
        print(f"rejected {r.source}: {r.reason}", file=sys.stderr)
    duplicates = "".join(f"; {n} {verb} as duplicates" for verb, n in dups.items() if n)
    into = f"into {args.collection!r}{duplicates}"
    print(f"ingested {ok} documents ({points} passages/pages) {into}; {len(rejected)} rejected")
    return 1 if rejected else 0


def cmd_search(args: argparse.Namespace) -> int:
    if args.queries is not None and (args.query is not None or args.image is not None):
        raise SystemExit("--queries cannot be combined with a QUERY or --image")
    if args.queries is None and args.query is None and args.image is None:
        raise SystemExit("give a QUERY, --image FILE (or both), or --queries FILE.jsonl")
    from mmsearch.v1 import search_pb2

    from .boosts import BoostSyntaxError, make_boosts

    try:
        boosts = make_boosts(args.boost)
    except BoostSyntaxError as exc:
        raise SystemExit(str(exc)) from None
    if args.hnsw_ef < 0:
        raise SystemExit("--hnsw-ef must be 0 (the server's setting) or positive")
    ranking = search_pb2.RankingOptions(
        fusion=FUSION.to_wire(args.fusion) if args.fusion else 0,
        cross_encoder=args.cross_encoder,
        boosts=boosts,
        hnsw_ef=args.hnsw_ef,
        exact=args.exact,
    )
    kwargs = dict(
        ranking=ranking,
        top_k=args.top_k,
        filter=parse_filters(args.filter),
        modalities=args.modality or (),
        score_threshold=args.threshold,
        explain=args.explain,
    )
    with _client(args) as c:
        if args.queries:
            return _search_batch(c, args.queries, args.collection, kwargs)
        from .files import read_image_arg

        image = read_image_arg(args.image) if args.image else None
        resp = c.search(args.collection, args.query or "", image=image, **kwargs)  # type: ignore[arg-type]
    results = [result_dict(r) for r in resp.results]
    if args.json:
        print(json.dumps({"query": args.query or "", "results": results}, indent=2))
        return 0
    if not results:
        print("no results")
    for n, r in enumerate(results, start=1):
        where = f" p.{r['page']}" if r["page"] else ""
        print(f"{n:>3}. {r['score']:.3f}  {r['document_id']}{where}  [{r['modality']}]")
        print(f"     {r['snippet'][:200]}")
        if "explanation" in r:
            signals = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["explanation"]["signals"].items()))
            print(f"     signals: {signals}")
            for b in r["explanation"].get("boosts", []):
                print(f"     boost {b['boost']}: factor {b['factor']:.3f}, {b['contribution']:+.3f}")
            strong = readable_matches(r["explanation"]["matches"])[:8]
            print(
                "     matched: "
                + ", ".join(f"{m['query_token']}→{m['document_token']} ({m['similarity']:.2f})" for m in strong)
            )
    print(f"({resp.timings.total_ms:.1f} ms)", file=sys.stderr)
    return 0


#: Refusals that concern one query, not the batch: that line gets an error line and the batch goes on.
PER_QUERY = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def _search_batch(c: Client, path: str, collection: str, kwargs: dict[str, Any]) -> int:
    """One JSON line out per query line in. A bad line, or a query the server refuses on its own
    account (INVALID_ARGUMENT, a deadline, a busy server), gets an error line and the batch goes on
    (exit 1 at the end). It stops at an error no line can escape: no such collection, no server, or
    the same refusal for the first two queries (then the shared options are at fault, e.g. a filter)."""
    failed = answered = 0
    first_refusals: list[tuple[str, str]] = []
    warned: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            qid = None
            try:
                q = json.loads(line)
                if not isinstance(q, dict) or not isinstance(q.get("query"), str) or "id" not in q:
                    raise ValueError('expected a JSON object with "id" and "query" (a string)')
                qid = q["id"]
                if extra := sorted(set(q) - {"id", "query"} - warned):
                    warned.update(extra)  # e.g. qrels kept beside the queries: fine, but options are global
                    print(f"note: {path}:{n}: keys {extra} are ignored; options apply to every line", file=sys.stderr)
                resp = c.search(collection, q["query"], **kwargs)
            except (json.JSONDecodeError, ValueError) as exc:
                error = {"code": "INVALID_ARGUMENT", "message": f"{path}:{n}: {exc}"}
            except MMSearchError as exc:
                if exc.code not in PER_QUERY:
                    raise
                if not answered and len(first_refusals) < 2:
                    first_refusals.append((q["query"], exc.details))
                    (a, why_a), (b, why_b) = first_refusals[0], first_refusals[-1]
                    if len(first_refusals) == 2 and a != b and why_a == why_b:
                        raise  # two different queries, one refusal: the options, not the lines
                error = {"code": exc.code.name, "message": f"{path}:{n}: {exc.details}"}
            else:
                answered += 1
                print(json.dumps({"id": qid, "results": [result_dict(r) for r in resp.results]}), flush=True)
                continue
            failed += 1
            print(json.dumps({"id": qid, "line": n, "error": error}), flush=True)
            print(f"error: {error['message']}", file=sys.stderr)
    return 1 if failed else 0


# Model tokens that are not words ([CLS], <pad>, ...): a query word "matching" one says nothing a
# reader can use (a blank page's [SEP]; ColPali's ten query <pad> tokens), so lists for people skip them.
SPECIAL_TOKENS = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<pad>", "<s>", "</s>", "<bos>", "<eos>", "<unk>"}


def readable_matches(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strongest first, without special tokens on either side, each (query token, document token) once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for m in sorted(matches, key=lambda m: -m["similarity"]):
        pair = (m["query_token"], m["document_token"])
        if pair[0] in SPECIAL_TOKENS or pair[1] in SPECIAL_TOKENS or pair in seen:
            continue
        seen.add(pair)
        out.append(m)
    return out


def cmd_explain(args: argparse.Namespace) -> int:
    from .render import load_page, render_matches

    with _client(args) as c:
        # a page of a long PDF may rank low within its document: ask for as many as the server allows
        top_k = min(1000, c.info().max_top_k or 1000) if args.page else 50
        resp = c.search(
            args.collection, args.query, top_k=top_k, explain=True, all_passages=True, document_ids=[args.document]
        )
    hits = [r for r in resp.results if not args.page or r.page == args.page]
    if not hits:
        # Restricted to one document, search returns its passages or pages whatever their scores.
        if len(resp.results) >= top_k:
            print(f"page {args.page} is not among the {top_k} best pages of {args.document!r}", file=sys.stderr)
        elif resp.results:
            pages = sorted({r.page for r in resp.results})
            print(f"document {args.document!r} has no page {args.page} (its pages: {pages})", file=sys.stderr)
        else:
            print(f"no document {args.document!r} in collection {args.collection!r}", file=sys.stderr)
        return 1
    best = hits[0]
    # The fused score of a search restricted to one document says nothing (it is ranked against
    # itself): print the raw signals, which do not depend on the other candidates.
    signals = ", ".join(f"{k} {v:.3f}" for k, v in sorted(best.explanation.signals.items()))
    # page 0 is a text passage (0-based on the wire; shown 1-based, as `duplicates` and the console do)
    where = f"p.{best.page}" if best.page else f"passage {best.passage + 1}"
    print(f"{best.document_id} {where}: {signals}")
    source = best.explanation.text_source
    if source:  # pages: where the words matched below came from
        print(f"  words from: {'the PDF text layer' if source == 'pdf' else source}", end="")
        print(f" ({best.explanation.ocr_reader})" if best.explanation.ocr_reader else "")
    matches = [
        {"query_token": m.query_token, "document_token": m.document_token, "similarity": m.similarity}
        for m in best.explanation.matches
    ]
    strong = readable_matches(matches)
    for m in strong:
        print(f"  {m['query_token']:>15} → {m['document_token']} ({m['similarity']:.2f})")
    if len(strong) < len(matches):
        print(
            f"  ({len(matches) - len(strong)} more on special tokens or repeated, not shown; "
            "`search --explain --json` has all)"
        )
    if not best.page and (args.out or args.similarity_map):
        # a text passage has no page image: the server would say only "has no page 1"
        flag = "--out" if args.out else "--similarity-map"
        raise SystemExit(f"{args.document!r} is a text document: {flag} draws on pages only")
    if args.out:
        page = load_page(Path(args.file), best.page or 1) if args.file else _kept_page(args, best.page or 1)
        stored = best.explanation
        if args.file and stored.page_width and stored.page_height:  # boxes drawn on another file's page land anywhere
            want, got = stored.page_width / stored.page_height, page.width / page.height
            if abs(got - want) > 0.03 * want:
                raise SystemExit(
                    f"--file {args.file}: its page {best.page or 1} is {page.width}×{page.height} px, not the shape of "
                    f"the page stored for {args.document!r} ({stored.page_width}×{stored.page_height}); give the file "
                    "the document was ingested from"
                )
        n = render_matches(page, best.explanation, Path(args.out), args.min_similarity)
        print(f"wrote {args.out} ({n} highlighted regions)")
    if args.similarity_map:
        from .commands_similarity import write_similarity_map

        with _client(args) as c:
            write_similarity_map(c, args, best.page or 1, load_page)
    return 0


def _kept_page(args: argparse.Namespace, page: int) -> Any:
    """The page image the server kept at ingest (WebP, maybe scaled down: the boxes scale with it)."""
    import io

    from PIL import Image

    with _client(args) as c:
        kept = c.get_page(args.collection, args.document, page)
    if not kept.image:
        raise SystemExit(
            "--out needs --file (the page image or PDF the document was ingested from): the server kept no image "
            "of this page (it runs with keep_page_images off)"
        )
    return Image.open(io.BytesIO(kept.image)).convert("RGB")


def _weights(specs: list[str]) -> list[tuple[float, float, float]]:
    """ "D,M,L" triples; each may list alternatives with ':' ("1,0:0.3,1" is two triples)."""
    out: list[tuple[float, float, float]] = []
    for spec in specs:
        try:
            alternatives = [[float(x) for x in part.split(":")] for part in spec.split(",")]
        except ValueError:
            alternatives = []
        if len(alternatives) != 3:
            raise SystemExit(
                f"bad --weights {spec!r}: expected dense,maxsim,lexical numbers, e.g. 1,0.3,1 or 1,0:0.5,1"
            )
        out += [(d, m, lex) for d in alternatives[0] for m in alternatives[1] for lex in alternatives[2]]
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import EvalError, compare, evaluate, ingest, load_beir, load_pages, render, run_configs

    fusions = [f.strip() for f in (args.fusion or "").split(",") if f.strip()]
    if any(f not in set(Fusion) for f in fusions):
        raise SystemExit(f"bad --fusion {args.fusion!r}: expected some of {', '.join(Fusion)}, comma-separated")
    if args.max_queries < 0:
        raise SystemExit("--max-queries must be at least 0")
    configs = run_configs(
        fusions, _weights(args.weights), _sizes(args.prefetch_k, "--prefetch-k"), args.modality_baselines
    )
    try:
        es = load_beir(Path(args.dir), args.split) if args.format == "beir" else load_pages(Path(args.dir), args.split)
    except (EvalError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_queries:
        es = es.first(args.max_queries)
    collection = args.collection or f"eval-{es.name}"
    with _client(args, timeout=600) as c:
        existing = {col.name: col for col in c.list_collections()}
        if collection in existing and not args.reingest:
            print(f"using collection {collection!r} ({existing[collection].document_count} documents)", file=sys.stderr)
        else:
            if collection in existing:
                c.delete_collection(collection)
            print(f"ingesting {len(es.corpus_ids)} documents into {collection!r}...", file=sys.stderr)
            ok, rejected = ingest(c, collection, es)
            for r in rejected[:20]:
                print(f"rejected {r.source}: {r.reason}", file=sys.stderr)
            print(f"ingested {ok}; {len(rejected)} rejected", file=sys.stderr)
        outcomes = []
        for cfg in configs:
            outcomes.append(evaluate(c, collection, es, cfg))
            if len(configs) > 1:
                print(f"{cfg.name}: nDCG@10 {outcomes[-1].metrics['ndcg@10']:.4f}", file=sys.stderr)
    head = {"dataset": es.name, "split": args.split, "collection": collection}
    if args.out:
        rows = [o.row() | {"per_query_ndcg@10": {q: round(v, 5) for q, v in o.per_query.items()}} for o in outcomes]
        report = head | {"queries": len(es.qrels), "results": rows, "comparison": compare(outcomes)}
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        for o in outcomes:
            print(json.dumps(head | o.row()))
    else:
        print(render(es, args.split, outcomes))
    return 0


def _sizes(text: str, flag: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bad {flag} {text!r}: expected comma-separated whole numbers, e.g. 1,8,32") from None
    if any(v < 0 for v in values):
        raise SystemExit(f"bad {flag} {text!r}: numbers must be positive")
    return [v for v in values if v > 0]


def _breadths(text: str) -> list[int]:
    """--hnsw-ef of the bench: comma-separated breadths, 0 for the server's setting."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bad --hnsw-ef {text!r}: expected comma-separated whole numbers, e.g. 0,256,512") from None
    if not values or any(not 0 <= v <= 4096 for v in values):
        raise SystemExit(f"bad --hnsw-ef {text!r}: each must be 0 (the server's setting) to 4096")
    return values


def cmd_soak(args: argparse.Namespace) -> int:
    from .bench.soak import Soak, SoakOptions, render

    if args.clients < 1 or args.minutes <= 0:
        raise SystemExit("--clients must be at least 1 and --minutes more than 0")
    opts = SoakOptions(
        server=args.server,
        credentials=Credentials.from_args(args),
        clients=args.clients,
        minutes=args.minutes,
        collection=f"{args.prefix}-soak",
        sample_s=args.sample_s,
        server_pid=args.server_pid,
        keep=args.keep,
    )

    def progress(sample: Any) -> None:
        if not (args.quiet or args.json):
            print(f"  {sample.t_s:6.0f} s  {sample.calls:7} calls  server RSS {sample.rss_bytes / 2**20:,.0f} MiB",
                  file=sys.stderr)  # fmt: skip

    report = Soak(opts).run(progress).report()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report) if args.json else render(report))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.soak:
        return cmd_soak(args)
    from .bench import Bench, BenchError, BenchOptions
    from .bench.progress import Reporter
    from .bench.report import render
    from .bench.workload import WorkloadError

    opts = BenchOptions(
        server=args.server,
        credentials=Credentials.from_args(args),
        corpus=Path(args.corpus) if args.corpus else None,
        queries_file=Path(args.queries) if args.queries else None,
        # a page or PDF benchmark alone unless passages are asked for too
        passages=_sizes(args.passages or ("0" if args.pages or args.pdf_pages else "10000"), "--passages"),
        words=args.words,
        pages=_sizes(args.pages, "--pages"),
        page_source=Path(args.page_source) if args.page_source else None,
        pdf_pages=_sizes(args.pdf_pages, "--pdf-pages"),
        concurrency=_sizes(args.concurrency, "--concurrency") or [1],
        requests=args.requests,
        exact_queries=args.exact_queries,
        prefetch=_sizes(args.prefetch, "--prefetch") or [100],
        batch=args.batch,
        prefix=args.prefix,
        reuse=args.reuse,
        keep=args.keep,
        ocr_engine=args.ocr_engine,
        page_ocr=[m.strip() for m in args.page_ocr.split(",")] if args.page_ocr else [""],
        page_model=args.page_model,
        storage_only=args.storage_only,
        dim=args.dim,
        index_timeout_s=args.index_timeout,
        hnsw_ef=_breadths(args.hnsw_ef),
        warmup=args.warmup,
        text_backend=args.text_backend,
        model_cache=Path(args.model_cache),
    )
    if opts.passages and opts.corpus is None:
        raise SystemExit("--passages needs --corpus (a BEIR folder, a JSONL file, .txt/.md files or a folder of them)")
    if (opts.pages or opts.pdf_pages) and opts.page_source is None:
        raise SystemExit("--pages and --pdf-pages need --page-source (a folder of page images or PDFs)")
    if bad := [m for m in opts.page_ocr if m not in ("", "auto", "always", "never")]:
        raise SystemExit(f"--page-ocr: {', '.join(map(repr, bad))} is not one of auto, always, never")
    if "never" in opts.page_ocr and not opts.page_model:
        raise SystemExit(
            "--page-ocr never needs --page-model KIND:MODEL (e.g. colpali:DIR): without OCR a page "
            "is found only through its page model"
        )
    if opts.page_model and ":" not in opts.page_model:
        raise SystemExit("--page-model must be KIND:MODEL, e.g. colpali:/models/colqwen2")
    if opts.storage_only and not 8 <= opts.dim <= 4096:
        raise SystemExit("--dim must be between 8 and 4096")
    if opts.words < 8 or args.requests < 1 or args.exact_queries < 0 or args.warmup < 0:
        raise SystemExit("--words must be at least 8, --requests at least 1, --exact-queries and --warmup at least 0")

    def save(report: dict[str, Any]) -> None:
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1))

    bench = Bench(opts, Reporter(quiet=args.quiet or args.json))
    try:
        with bench.say:
            report = bench.run(on_size=save)
    except (BenchError, WorkloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bench.close()
    save(report)
    print(json.dumps(report) if args.json else render(report))
    return 0


def cmd_rerank(args: argparse.Namespace) -> int:
    with _client(args) as c:
        resp = c.rerank(args.query, args.documents, top_n=args.top_n)
    results = [{"index": r.index, "relevance_score": round(r.relevance_score, 6)} for r in resp.results]
    if args.json:
        print(json.dumps({"results": results}))
    else:
        for r in results:
            print(f"{r['relevance_score']:.3f}  [{r['index']}] {args.documents[r['index']][:100]}")
    return 0


def cmd_collections(args: argparse.Namespace) -> int:
    from .commands_collection import describe, settings

    with _client(args) as c:
        cols = c.list_collections()
    if args.json:
        print(json.dumps([json_format.MessageToDict(col, preserving_proto_field_name=True) for col in cols], indent=2))
        return 0
    for col in cols:
        spaces = ", ".join(f"{s.name}:{s.encoder.model} ({s.dim}d)" for s in col.spaces)
        print(f"{col.name}: {col.document_count} documents, {col.point_count} points; {spaces}")
        print(f"  {describe(col)}")
        print(f"  {settings(col)}")
        # A small collection (or its newest shard) is searched exactly, without an index to build. (The
        # two counts are not on one basis: point_count is this tenant's visible points, the index's all.)
        state = "an index build is due" if col.index_state == collections_pb2.INDEX_STATE_INDEXING else "no build due"
        print(
            f"  {col.shard_count} shards; {col.indexed_point_count} points in built indexes, the rest searched "
            f"exactly ({state})"
        )
    if not cols:
        print("no collections")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    flt = parse_filters(args.filter)
    if bool(args.id) == bool(flt):
        raise SystemExit("give --id ID... or --filter k=v (one of them)")
    with _client(args) as c:
        n = c.delete(args.collection, ids=args.id or (), filter=flt)
    print(f"deleted {n} passages/pages from {args.collection!r}")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    with _client(args) as c:
        if args.action == "create":
            snap = c.create_snapshot(args.collection)
            print(snap.name)
            print(f"snapshot {snap.name} of {args.collection!r}: {snap.size_bytes / 2**20:.1f} MB", file=sys.stderr)
        elif args.action == "list":
            for snap in c.list_snapshots(args.collection):
                print(f"{snap.name}  {snap.size_bytes / 2**20:.1f} MB")
        else:
            if not args.name:
                raise SystemExit("mmsearch snapshot restore needs the snapshot's name")
            col = c.restore_snapshot(args.collection, args.name)
            print(f"restored {args.collection!r} from {args.name}: {col.document_count} documents")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _client(args) as c:
        print(json.dumps(json_format.MessageToDict(c.info(), preserving_proto_field_name=True), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmsearch", description="Multimodal search server and client.")
    sub = p.add_subparsers(dest="command", required=True)

    def client_cmd(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument(
            "--server", default=DEFAULT_SERVER, help="HOST[:PORT] (port 50051 if left out; env MMSEARCH_SERVER)"
        )
        sp.add_argument("--api-key", default=None, help="API key, sent as a Bearer token (env MMSEARCH_API_KEY)")
        sp.add_argument("--tls-ca", default=None, help="connect with TLS; this CA verifies the server's certificate")
        sp.add_argument("--tls", action="store_true", help="connect with TLS, verified by the system's CAs")
        sp.add_argument("--tls-cert", default=None, help="client certificate for mutual TLS (with --tls-key)")
        sp.add_argument("--tls-key", default=None, help="private key of --tls-cert")
        sp.set_defaults(fn=fn)
        return sp

    # Listed for --help only: main hands `serve` to the server's own command line before parsing.
    sub.add_parser("serve", help="run the server (`mmsearch serve --help` lists its flags)")

    sp = client_cmd("health", cmd_health, "exit 0 when the server is SERVING")
    sp.add_argument("--timeout", type=float, default=5.0)

    sp = client_cmd("ingest", cmd_ingest, "ingest files and folders (.txt .md .jsonl; images and PDFs)")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sp.add_argument(
        "--on-duplicate",
        choices=["keep", "skip", "replace"],
        help="an item near-duplicating stored documents: keep it, skip it, or replace them (default: the collection's)",
    )
    sp.add_argument("--duplicate-threshold", type=similarity, default=0.0, help="cosine similarity (default: 0.95)")
    sp.add_argument(
        "--metadata",
        "-m",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata for every item, e.g. -m team=finance -m year=2024 (one pair each; a JSONL record's own "
        "keys win; 007 and other digits with a leading zero stay text)",
    )

    sp = client_cmd("search", cmd_search, "search a collection")
    sp.add_argument("query", nargs="?")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--top-k", "-k", type=_positive, default=10)
    sp.add_argument("--filter", "-f", action="append", default=[], help="key=value, key=a|b, key>=n ... (repeatable)")
    sp.add_argument("--modality", action="append", choices=[m.value for m in Modality])
    sp.add_argument("--threshold", type=float, default=None, help="minimum score in [0, 1]")
    sp.add_argument("--explain", action="store_true")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--fusion", choices=[f.value for f in Fusion], help="fusion strategy")
    sp.add_argument("--cross-encoder", action="store_true", help="rescore the top results with the cross-encoder")
    sp.add_argument("--image", help="query by example: a page image (with or without QUERY text)")
    sp.add_argument("--queries", help='batch mode: JSONL lines {"id", "query"}; prints one JSON line per query')
    sp.add_argument(
        "--hnsw-ef", type=int, default=0,
        help="HNSW search breadth of this search (0: the server's); wider finds more of the true neighbours, slower",
    )  # fmt: skip
    sp.add_argument(
        "--exact", action="store_true",
        help="search every point exactly, without the HNSW indexes (slow: to check what the index misses)",
    )  # fmt: skip
    sp.add_argument(
        "--boost", action="append", default=[],
        help="metadata boost (repeatable): price:lower:0.3, date:exp:30d:0.5[:ORIGIN], source=handbook:1.2 "
        "(docs/boosts.md)",
    )  # fmt: skip

    sp = client_cmd("rerank", cmd_rerank, "rerank documents for a query (stateless)")
    sp.add_argument("query")
    sp.add_argument("documents", nargs="+")
    sp.add_argument("--top-n", type=int, default=0)
    sp.add_argument("--json", action="store_true")

    from .commands_classify import add_arguments, cmd_classify

    classify = client_cmd("classify", lambda a: cmd_classify(a, _client), "zero-shot classification of a text or image")
    add_arguments(classify)

    sp = client_cmd(
        "explain", cmd_explain, "why a document matched: matched words/regions, optionally drawn on the page"
    )
    sp.add_argument("query")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--document", "-d", required=True, help="document id")
    sp.add_argument("--page", type=int, default=0, help="1-based page (default: the best-matching page)")
    sp.add_argument("--file", help="the page image or PDF to draw on (default: the page image the server kept)")
    sp.add_argument("--out", help="PNG to write with the matched regions highlighted")
    sp.add_argument("--min-similarity", type=float, default=0.3, help="draw only matches at least this similar")
    sp.add_argument("--similarity-map", help="PNG to write with a ColPali page's patch scores as a heat map")
    sp.add_argument("--map-token", help="the heat map of this query token alone (default: best over the query)")

    sp = client_cmd("eval", cmd_eval, "retrieval quality on a BEIR or page-retrieval folder, through the server")
    sp.add_argument("format", choices=["beir", "pages"])
    sp.add_argument("dir")
    sp.add_argument("--split", default="test")
    sp.add_argument("--collection", "-c", help="default: eval-<folder name>; reused if it exists")
    sp.add_argument("--reingest", action="store_true", help="drop and rebuild the collection")
    # Several values run one configuration per combination; the first is the baseline of the comparison.
    sp.add_argument(
        "--fusion",
        help=f"fusion strategies, comma-separated: {', '.join(Fusion)} (default: the server's)",
    )
    sp.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="D,M,L",
        help="dense, MaxSim and BM25 weights, e.g. 1,0.3,1; ':' lists alternatives (1,0:0.5,1); repeatable",
    )
    sp.add_argument("--prefetch-k", default="", help="first-stage candidates per retriever, e.g. 100,200")
    sp.add_argument(
        "--modality-baselines",
        action="store_true",
        help="also rank text passages only, pages only, and their concatenation",
    )
    sp.add_argument("--max-queries", type=int, default=0, help="only the first N judged queries (0: all)")
    sp.add_argument("--json", action="store_true", help="one JSON line per configuration")
    sp.add_argument("--out", help="write the report (per configuration: metrics, per-query nDCG@10) as JSON")

    sp = client_cmd("bench", cmd_bench, "speed and memory of a running server, each figure beside its floor")
    sp.add_argument("--corpus", help="passages are cut from it: a BEIR folder, JSONL {text}, .txt/.md, or a folder")
    sp.add_argument(
        "--queries", help="query texts: JSONL {text} or one per line (default: the BEIR folder's queries.jsonl)"
    )
    sp.add_argument(
        "--passages",
        default="",
        help="collection sizes in passages, e.g. 10000,50000,100000 (default 10000; 0 with --pages or --pdf-pages)",
    )
    sp.add_argument("--words", type=int, default=64, help="words per passage")
    sp.add_argument("--pages", default="", help="collection sizes in pages, e.g. 1000,5000")
    sp.add_argument("--page-source", help="page images and PDFs, cycled (with distinct ids) to reach each page size")
    sp.add_argument(
        "--pdf-pages",
        default="",
        help="long-PDF sizes, e.g. 50,200: one PDF of that many pages (cycled from --page-source's PDFs) ingested "
        "as one document, with the server's memory while it is",
    )
    sp.add_argument("--concurrency", default="1,8,32", help="concurrent clients, e.g. 1,8,32")
    sp.add_argument("--requests", type=int, default=300, help="searches per concurrency level")
    sp.add_argument(
        "--exact-queries",
        type=int,
        default=100,
        help="queries compared with exact brute-force MaxSim (0: no comparison)",
    )
    sp.add_argument("--prefetch", default="100", help="prefetch_k values for the two-stage recall runs, e.g. 100,400")
    sp.add_argument("--batch", type=int, default=32, help="raw encoder batch size (match the server's)")
    sp.add_argument(
        "--ocr-engine",
        default="rapidocr",
        choices=["rapidocr", "tesseract"],
        help="the page floor's OCR (match the server's)",
    )
    sp.add_argument(
        "--page-ocr",
        default="",
        help="page sizes once per OCR mode, e.g. auto,never: pages/s with and without OCR in one report "
        "(collection setting ocr; never needs --page-model)",
    )
    sp.add_argument("--page-model", default="", help="the page collections' page encoder KIND:MODEL, e.g. colpali:DIR")
    sp.add_argument(
        "--storage-only",
        action="store_true",
        help="passage sizes with the server's fake encoder (--dim dims, one vector per word): storage, indexing and "
        "ranking at sizes the real encoder cannot reach; health and search are probed while ingesting and indexing "
        "(the server must allow the model: --allowed-models fake-<dim>)",
    )
    sp.add_argument("--dim", type=int, default=384, help="--storage-only: vector dimensions of the fake encoder")
    sp.add_argument(
        "--index-timeout", type=float, default=3600.0, help="--storage-only: seconds to wait for the index build"
    )
    sp.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="--storage-only: searches before the timed ones, with other queries, reported as the first searches "
        "after the index build (or server start): the timed levels then measure a warm server",
    )
    sp.add_argument(
        "--hnsw-ef",
        default="0",
        help="--storage-only: HNSW breadths whose recall@10 (dense vs brute force; ranked vs an exact first "
        "stage) and latency are measured, e.g. 0,256,512 (0: the server's setting)",
    )
    from mmsearch.encoders.text import DEFAULT_BACKEND, TEXT_BACKENDS

    sp.add_argument(
        "--text-backend",
        default=os.environ.get("MMSEARCH_TEXT_BACKEND") or DEFAULT_BACKEND,
        choices=TEXT_BACKENDS,
        help="the floors' text model runtime (match the server's --text-backend; default: the server's default)",
    )
    sp.add_argument(
        "--model-cache",
        default=str(Path(os.environ.get("MMSEARCH_DATA_DIR", "mmsearch-data")) / "models"),
        help="where the floors' ONNX export is cached (default: $MMSEARCH_DATA_DIR/models, else "
        "./mmsearch-data/models, where a server started here with its default data dir keeps its export; "
        "give SERVER_DATA_DIR/models to reuse the export of a server with another --data-dir)",
    )
    sp.add_argument(
        "--soak",
        action="store_true",
        help="soak test instead: --clients clients mix search/ingest/delete for --minutes; status codes, p50/p99 "
        "and the server's RSS over time",
    )
    sp.add_argument("--clients", type=int, default=8, help="--soak: concurrent clients")
    sp.add_argument("--minutes", type=float, default=3.0, help="--soak: duration")
    sp.add_argument("--sample-s", type=float, default=10.0, help="--soak: seconds between server memory samples")
    sp.add_argument(
        "--server-pid", type=int, help="--soak: read the server's RSS from /proc/PID/status (default: GetInfo)"
    )
    sp.add_argument("--prefix", default="bench", help="collection name prefix")
    sp.add_argument("--reuse", action="store_true", help="reuse an existing bench collection (ingest not measured)")
    sp.add_argument("--keep", action="store_true", help="keep the bench collections afterwards")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    sp.add_argument("--out", help="also write the JSON report to this file")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    sp = client_cmd("collections", cmd_collections, "list collections")
    sp.add_argument("--json", action="store_true")

    sp = client_cmd("delete", cmd_delete, "delete documents by id or metadata filter")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--id", action="append", default=[])
    sp.add_argument("--filter", "-f", action="append", default=[])

    from .commands_page import cmd_page

    sp = client_cmd("page", lambda a: cmd_page(a, _client), "a kept page: its text, words and image (WebP)")
    sp.add_argument("document", help="document id")
    sp.add_argument("page", nargs="?", type=int, default=0, help="1-based page (default: every page)")
    sp.add_argument("--collection", "-c", required=True)
    sp.add_argument("--out", help="save the image here (several pages: NAME-<page>.webp)")
    sp.add_argument("--json", action="store_true")

    sp = client_cmd("snapshot", cmd_snapshot, "create, list or restore snapshots of a collection")
    sp.add_argument("action", choices=["create", "list", "restore"])
    sp.add_argument("name", nargs="?", help="restore: the snapshot's name (as create printed it)")
    sp.add_argument("--collection", "-c", required=True)

    client_cmd("info", cmd_info, "server version, storage and loaded models")
    from .commands_finetune import register as register_finetune

    register_finetune(client_cmd("finetune", None, "fine-tune a text model on (query, positive) pairs (local)"))
    from .commands_collection import register as register_create
    from .commands_collection import register_drop

    register_create(
        client_cmd("create", None, "create a collection with settings of its own (page model, OCR mode, ...)")
    )
    register_drop(client_cmd("drop", None, "delete a collection and every document in it"))
    from .commands_dedup import register as register_duplicates

    register_duplicates(client_cmd("duplicates", None, "groups of near-duplicate passages/pages in a collection"))
    from .commands_reindex import register as register_reindex

    register_reindex(client_cmd("reindex", None, "re-encode a collection with another text model (on the server)"))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from mmsearch.server.cli import main as serve  # only `serve` needs the server package

        return serve(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except MMSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mmsearch ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # a file that cannot be read or written (--out into a missing folder, ...)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
