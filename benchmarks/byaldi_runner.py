"""The byaldi half of benchmarks/byaldi_side_by_side.py. Runs in byaldi's own environment (byaldi is
never a dependency of mmsearch), imports nothing from mmsearch, and prints one JSON line.

    /tmp/byaldi-env/bin/python benchmarks/byaldi_runner.py MODEL_DIR PAGES_DIR QUERIES_JSON INDEX_ROOT
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def _tie_head() -> None:
    """ColPali checkpoints leave out PaliGemma's lm_head (tied to the input embeddings); transformers 5
    leaves it on the meta device and byaldi's `.to(device)` fails: re-tie it after loading, as
    mmsearch's encoder does (it never feeds the embeddings)."""
    from colpali_engine.models import ColPali

    original = ColPali.from_pretrained.__func__  # type: ignore[attr-defined]

    def from_pretrained(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        model = original(cls, *args, **kwargs)
        if any(p.is_meta for p in model.parameters()):
            model.model.tie_weights()
        return model

    ColPali.from_pretrained = classmethod(from_pretrained)  # type: ignore[assignment,method-assign]


def main() -> None:
    model_dir, pages_dir, queries_file, index_root = sys.argv[1:5]
    _tie_head()
    from byaldi import RAGMultiModalModel

    with open(queries_file) as f:
        queries = json.load(f)
    model = RAGMultiModalModel.from_pretrained(model_dir, device="cpu", index_root=index_root, verbose=0)
    t = time.perf_counter()
    model.index(input_path=pages_dir, index_name="bench", store_collection_with_index=False, overwrite=True)
    index_s = time.perf_counter() - t
    names = model.model.doc_ids_to_file_names  # doc id -> file path
    latencies, tops = [], []
    for q in queries * 2:  # the first pass warms up; the second is timed
        t = time.perf_counter()
        hits = model.search(q, k=10)
        latencies.append((time.perf_counter() - t) * 1000)
        tops.append([str(names[h.doc_id]).rsplit("/", 1)[-1].rsplit(".", 1)[0] for h in hits])
    timed = latencies[len(queries) :]
    print(
        json.dumps(
            {
                "pages": len(names),
                "index_s": index_s,
                "index_pages_per_s": len(names) / index_s,
                "search_ms_p50": statistics.median(timed),
                "top10": tops[len(queries) :],
            }
        )
    )


if __name__ == "__main__":
    main()
