"""Tiny random ColPali-family checkpoints for tests (no real weights can be downloaded here).

Each builder makes a model a few MB in size with random weights, and saves it with
`model.save_pretrained(dir)` + `processor.save_pretrained(dir)`, so the encoder loads it through exactly
the path real weights take. Scores mean nothing; shapes, masking, padding and round-trips are real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_WORDS = (
    "the a an of to in and is are was page invoice total date receipt form name address amount "
    "what which where who how many much price tax company number describe image question answer "
    "query document text table chart figure summary report year month day value item list"
)


def _train_tokenizer(specials: list[str], pad: str, eos: str, bos: str | None, unk: str) -> Any:
    """A small byte-level BPE tokenizer, trained in milliseconds on a fixed word list."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([_WORDS] * 4, trainer=trainer)
    kwargs = {"pad_token": pad, "eos_token": eos, "unk_token": unk}
    if bos is not None:
        kwargs["bos_token"] = bos
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def _save(model_cls: Any, config: Any, processor: Any, out: Path, device: str | None = None) -> Path:
    """Instantiates `model_cls(config)` with seeded random weights and saves it with its processor.
    `device` (benchmarks/gpu_colpali.py's full-size shapes): made there, in bfloat16, which is how
    a real checkpoint is stored; minutes less than a few billion float32 weights made on a CPU."""
    import torch

    torch.manual_seed(0)  # the same tiny weights on every run
    out.mkdir(parents=True, exist_ok=True)
    if device is None:
        model_cls(config).eval().save_pretrained(out)
    else:
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device(device):
                model = model_cls(config).eval()
        finally:
            torch.set_default_dtype(default)
        model.save_pretrained(out)
        del model
    processor.save_pretrained(out)
    return out


def build_colpali(
    out: Path, side: int = 64, patch: int = 16, widths: dict[str, Any] | None = None, device: str | None = None
) -> Path:
    """PaliGemma backbone: 64 px square input, 16 px patches -> 16 image tokens, right padding (or
    side / patch squared tokens: 448 / 14 gives real ColPali's 1,024 patches). `widths` replaces the
    tiny sizes ("vision", "text": config keys; "projection_dim"), e.g. with a real model's."""
    from colpali_engine.models import ColPali, ColPaliProcessor
    from transformers import GemmaConfig, PaliGemmaConfig, SiglipImageProcessor, SiglipVisionConfig

    tokenizer = _train_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>"], "<pad>", "<eos>", "<bos>", "<unk>")
    image_processor: Any = SiglipImageProcessor(
        size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_convert_rgb=True
    )
    image_processor.image_seq_length = (side // patch) ** 2
    # Built first: the processor adds <image> and the loc/seg tokens, which sets the vocabulary size.
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    vocab = len(processor.tokenizer)
    widths = widths or {}
    vision_widths = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision = SiglipVisionConfig(**{**vision_widths, **widths.get("vision", {})}, image_size=side, patch_size=patch)
    text_widths = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "num_key_value_heads": 1, "head_dim": 16}  # fmt: skip
    text = GemmaConfig(
        **{**text_widths, **widths.get("text", {})}, vocab_size=vocab, pad_token_id=processor.tokenizer.pad_token_id
    )
    config = PaliGemmaConfig(
        vision_config=vision, text_config=text, image_token_index=processor.image_token_id,
        projection_dim=widths.get("projection_dim", 32), vocab_size=vocab,
    )  # fmt: skip
    return _save(ColPali, config, processor, out, device)


_QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
    "<|video_pad|>",
]  # fmt: skip


def build_colqwen2(out: Path, widths: dict[str, Any] | None = None, device: str | None = None) -> Path:
    """Qwen2-VL backbone: 14 px patches merged 2x2 -> one token per 28 px cell; dynamic resolution between
    2x2 and 4x4 cells (so pages of different sizes give different token counts); left padding. `widths`
    replaces the tiny sizes ("vision", "text": config keys; "max_pixels"), e.g. with a real model's."""
    from colpali_engine.models import ColQwen2, ColQwen2Processor
    from transformers import Qwen2VLConfig

    vision = {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14}
    return _build_qwen(out, ColQwen2, ColQwen2Processor, Qwen2VLConfig, vision, widths or {}, device)


def build_colqwen2_5(out: Path) -> Path:
    """Qwen2.5-VL backbone: as ColQwen2, with windowed attention in the vision tower."""
    from colpali_engine.models import ColQwen2_5, ColQwen2_5_Processor
    from transformers import Qwen2_5_VLConfig

    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
              "window_size": 56, "fullatt_block_indexes": [1], "patch_size": 14}  # fmt: skip
    return _build_qwen(out, ColQwen2_5, ColQwen2_5_Processor, Qwen2_5_VLConfig, vision)


def _build_qwen(
    out: Path,
    model_cls: Any,
    processor_cls: Any,
    config_cls: Any,
    vision: dict[str, Any],
    widths: dict[str, Any] | None = None,
    device: str | None = None,
) -> Path:
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    widths = widths or {}
    specials = [*_QWEN_SPECIALS, "<unk>"]
    tokenizer = _train_tokenizer(specials, "<|endoftext|>", "<|im_end|>", None, "<unk>")
    image_processor = Qwen2VLImageProcessor(
        patch_size=14, temporal_patch_size=2, merge_size=2, min_pixels=56 * 56,
        max_pixels=widths.get("max_pixels", 112 * 112),
    )  # fmt: skip
    processor = processor_cls(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor()
    )
    ids = {t: processor.tokenizer.convert_tokens_to_ids(t) for t in _QWEN_SPECIALS}
    text = {
        "vocab_size": len(processor.tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1,
        # M-RoPE splits each head's rotary half (head_dim 16 -> 8) into temporal/height/width sections.
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "pad_token_id": ids["<|endoftext|>"], "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
    }  # fmt: skip
    text.update(widths.get("text", {}))
    config = config_cls(
        text_config=text, vision_config={**vision, **widths.get("vision", {})}, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    return _save(model_cls, config, processor, out, device)


def build_colidefics3(out: Path) -> Path:
    """Idefics3 (ColSmol) backbone: 32 px tiles of 8 px patches, pixel-shuffled by 2 -> 4 tokens per tile;
    a page is split into up to 2x2 tiles plus one global tile; left padding."""
    from colpali_engine.models import ColIdefics3, ColIdefics3Processor
    from transformers import Idefics3Config, Idefics3ImageProcessor

    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                "<global-img>", *grid, "<unk>"]  # fmt: skip
    tokenizer = _train_tokenizer(specials, "<|endoftext|>", "<end_of_utterance>", "<|im_start|>", "<unk>")
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    processor = ColIdefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4)
    pad = processor.tokenizer.pad_token_id
    text = {
        "vocab_size": len(processor.tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "pad_token_id": pad,
    }  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    config = Idefics3Config(
        text_config=text, vision_config=vision, scale_factor=2, image_token_id=processor.image_token_id
    )
    return _save(ColIdefics3, config, processor, out)


_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "colpali": build_colpali,
    "colqwen2": build_colqwen2,
    "colqwen2_5": build_colqwen2_5,
    "colidefics3": build_colidefics3,
    # Real ColPali's number of patches per page (32 x 32), for compression
    "colpali_1024": lambda out: build_colpali(out, side=448, patch=14),
}


def build_tiny(family: str, root: Path) -> Path:
    """Builds (once per `root`) the tiny checkpoint of `family` in root/family and returns its folder."""
    out = root / family
    if not (out / "config.json").is_file():
        _BUILDERS[family](out)
    return out
