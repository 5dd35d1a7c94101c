"""The byaldi half of benchmarks/byaldi_side_by_side.py. Runs in byaldi's own environment (byaldi is
never a dependency of mmsearch) and imports nothing from mmsearch.

    /tmp/byaldi-env/bin/python benchmarks/byaldi_runner.py MODEL_DIR PAGES_DIR INDEX_ROOT [SPLICE_JSON]

Indexes PAGES_DIR, optionally grows the index with spliced pages (SPLICE_JSON: the plan
byaldi_side_by_side.py applies to mmsearch's vectors too), prints one JSON line with the index time,
then answers queries: one JSON line in (a query string), one JSON line out ({"ms", "top10"}), so the
caller can interleave them with mmsearch's.
"""

from __future__ import annotations

import json
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


def _splice(inner, plan: dict) -> None:  # type: ignore[no-untyped-def]
    """Adds plan["pages"] pages to the index: each is the first `cut` image patches of page a over the
    rest of page b (byaldi keeps the prompt's rows after the patches: page a's), plus the plan's noise."""
    import numpy as np
    import torch

    patches = plan["patches"]
    base = len(inner.indexed_embeddings)
    for n, (a, b, cut, seed) in enumerate(plan["splices"]):
        ea, eb = inner.indexed_embeddings[a], inner.indexed_embeddings[b]
        rows = torch.cat([ea[:cut], eb[cut:patches]]).float().numpy()
        rows = rows + np.random.default_rng(seed).normal(0, plan["noise"], rows.shape)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        new = torch.from_numpy(rows.astype(np.float32)).to(ea.dtype)  # byaldi keeps the model's dtype (bfloat16)
        inner.embed_id_to_doc_id[base + n] = {"doc_id": 10_000_000 + n, "page_id": 1}
        inner.indexed_embeddings.append(torch.cat([new, ea[patches:]]))
        inner.doc_ids_to_file_names[10_000_000 + n] = f"s{n:05d}.png"  # byaldi's doc ids are integers


def main() -> None:
    model_dir, pages_dir, index_root = sys.argv[1:4]
    _tie_head()
    from byaldi import RAGMultiModalModel

    model = RAGMultiModalModel.from_pretrained(model_dir, device="cpu", index_root=index_root, verbose=0)
    t = time.perf_counter()
    model.index(input_path=pages_dir, index_name="bench", store_collection_with_index=False, overwrite=True)
    index_s = time.perf_counter() - t
    inner = model.model
    pages = len(inner.indexed_embeddings)
    if len(sys.argv) > 4:
        with open(sys.argv[4]) as f:
            _splice(inner, json.load(f))
    names = inner.doc_ids_to_file_names  # doc id -> file path
    stats = {"pages": len(inner.indexed_embeddings), "index_s": index_s, "index_pages_per_s": pages / index_s}
    print(json.dumps(stats))
    sys.stdout.flush()
    for line in sys.stdin:
        q = json.loads(line)
        t = time.perf_counter()
        hits = model.search(q, k=10)
        ms = (time.perf_counter() - t) * 1000
        top = [str(names[h.doc_id]).rsplit("/", 1)[-1].rsplit(".", 1)[0] for h in hits]
        print(json.dumps({"ms": ms, "top10": top}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
