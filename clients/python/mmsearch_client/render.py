"""`mmsearch explain`: draws a result's matched regions over its page and saves a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .files import IMAGE_TYPES


def load_page(path: Path, page: int) -> Image.Image:
    """Page `page` (1-based) of an image file (TIFF frames count) or a PDF, as the server reads it
    (upright by its EXIF orientation, transparency on white). SystemExit naming what is wrong."""
    suffix = path.suffix.lower()
    if suffix != ".pdf" and suffix not in IMAGE_TYPES:
        raise SystemExit(f"--file {path}: expected a PDF or one of {', '.join(sorted(IMAGE_TYPES))}")
    if not path.is_file():
        raise SystemExit(f"--file {path}: no such file")
    if suffix == ".pdf":
        import pypdfium2 as pdfium

        try:
            doc = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise SystemExit(f"--file {path}: cannot be opened as a PDF ({exc})") from None
        try:
            if not 1 <= page <= len(doc):
                raise SystemExit(f"{path} has {len(doc)} pages; page {page} does not exist")
            return doc[page - 1].render(scale=150 / 72).to_pil().convert("RGB")
        finally:
            doc.close()
    try:
        img = Image.open(path)
        frames = getattr(img, "n_frames", 1)
        if page > frames:
            raise SystemExit(f"{path} has {frames} pages; page {page} does not exist")
        img.seek(max(0, page - 1))
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SystemExit(f"--file {path}: cannot be read as an image ({exc})") from None
    from mmsearch.server.ingest.pages import upright_rgb  # the page as the server read it, boxes and all

    return upright_rgb(img, copy=True)


def render_matches(page: Image.Image, explanation: Any, out: Path, min_similarity: float = 0.0) -> int:
    """Boxes of matched words/patches, tinted by similarity and labelled with the query token.
    Returns how many boxes were drawn."""
    sx = page.width / explanation.page_width if explanation.page_width else 1.0
    sy = page.height / explanation.page_height if explanation.page_height else 1.0
    overlay = Image.new("RGBA", page.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font_size = max(12, page.height // 80)
    font = ImageFont.load_default(size=font_size)
    drawn = 0
    if explanation.HasField("region"):  # the page was ranked by this region of it: outline it
        r = explanation.region
        draw.rectangle((r.x0 * sx, r.y0 * sy, r.x1 * sx, r.y1 * sy), outline=(0, 120, 255, 255), width=3)
    for m in sorted(explanation.matches, key=lambda m: m.similarity):
        b = m.box
        if m.similarity < min_similarity or (b.x1 <= b.x0 and b.y1 <= b.y0):
            continue
        box = (b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy)
        strength = max(0.0, min(1.0, m.similarity))
        draw.rectangle(box, fill=(255, 200, 0, int(60 + 120 * strength)), outline=(220, 60, 0, 255), width=2)
        draw.text((box[0], max(0, box[1] - font_size - 2)), m.query_token, fill=(200, 0, 0, 255), font=font)
        drawn += 1
    Image.alpha_composite(page.convert("RGBA"), overlay).convert("RGB").save(out, "PNG")
    return drawn
