"""The SROIE receipts (../shared/data/sroie_receipts) as text records with their date and total as
metadata: the receipt's OCR transcript (manifest.jsonl's ocr_text, SROIE's line-level ground truth)
is the text; `date` becomes ISO 8601 (the receipts write it a dozen ways), `total` a number."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

_DATE_FORMATS = (
    "%d/%m/%Y", "%d-%m-%Y", "%d %b %Y", "%d-%b-%Y", "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%y", "%d-%m-%y", "%b %d, %Y",
)  # fmt: skip


def iso_date(text: str) -> str | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def amount(text: str) -> float | None:
    m = re.search(r"\d+(?:\.\d+)?", text.replace(",", ""))
    return float(m.group()) if m else None


def receipts(folder: Path) -> list[dict[str, Any]]:
    """[{"id", "text", "metadata": {"company", "date"?, "total"?}}] for every receipt of the manifest."""
    out = []
    for line in (folder / "manifest.jsonl").open(encoding="utf-8"):
        m = json.loads(line)
        meta: dict[str, Any] = {"company": m["company"]}
        if (date := iso_date(m["date"])) is not None:
            meta["date"] = date
        if (total := amount(m["total"])) is not None:
            meta["total"] = total
        out.append({"id": f"receipt-{m['id']}", "text": m["ocr_text"], "metadata": meta})
    return out
