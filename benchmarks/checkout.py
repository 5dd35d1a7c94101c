"""`mmsearch.<part>` importable from this checkout on a machine where it is not installed (the lent GPU
machine gets the working tree only): a temporary `mmsearch` package whose parts link to the folders."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def import_from_checkout(*parts: str) -> None:
    """Makes `mmsearch.<part>` (e.g. "server", "encoders") import from ROOT/<part>, unless mmsearch is installed."""
    if importlib.util.find_spec("mmsearch") is not None:
        return
    pkg = Path(tempfile.mkdtemp(prefix="mmsearch-pkg-"))
    (pkg / "mmsearch").mkdir()
    for part in parts:
        (pkg / "mmsearch" / part).symlink_to(ROOT / part)
    sys.path.insert(0, str(pkg))
