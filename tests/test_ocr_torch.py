"""OCR's two networks on torch (server/ingest/ocr_torch.py), the path `ocr_device` auto/cuda takes on a
GPU without onnxruntime-gpu. This machine has no GPU, so the same conversion runs on the CPU here
(ocr.TORCH_DEVICE); on an H200 it read the receipts and forms of docs/ocr.md 2.8-4.9× faster per page
than the CPU default
at the same accuracy (benchmarks/results/ocr_gpu_h200.json). Data: ../shared/data."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

from mmsearch.server.ingest import ocr, ocr_torch
from mmsearch.server.ingest.ocr import RapidOCREngine

from .test_ocr_pool import FORM, RECEIPT, needs_data

# rapidocr's recogniser batches (6 crops, at least 320 px wide): what a GPU engine keeps. The CPU
# default reads one crop at a time at its own width, which changes a few words, not the models.
GPU_BATCHES = {"Rec.rec_img_shape": [3, 48, 320], "Rec.rec_batch_num": 6}


@pytest.fixture()
def torch_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """ocr_device auto behaves as on a machine where torch sees a GPU, with the CPU standing in for it."""
    monkeypatch.setattr(ocr_torch, "torch_cuda", lambda: True)
    monkeypatch.setattr(ocr, "TORCH_DEVICE", "cpu")


@needs_data
@pytest.mark.slow
def test_torch_reads_the_same_words_and_boxes_as_onnx_runtime(torch_on_cpu: None) -> None:
    onnx_runtime = RapidOCREngine(device="cpu", params=GPU_BATCHES)
    on_torch = RapidOCREngine(device="auto")
    assert on_torch.provider == "torch"
    for path in (RECEIPT, FORM):
        page = Image.open(path)
        words = on_torch.words(page)
        assert len(words) > 50
        assert words == onnx_runtime.words(page), path.name  # same texts, boxes equal to the float
    engine = on_torch._engine()
    assert isinstance(engine.text_det.session, ocr_torch.TorchSession)
    assert isinstance(engine.text_rec.session, ocr_torch.TorchSession)
    text = " ".join(w.text.lower() for w in on_torch.words(Image.open(RECEIPT)))
    assert "book ta" in text and "9.00" in text


@needs_data
def test_a_model_torch_cannot_convert_stays_on_onnx_runtime(
    torch_on_cpu: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(path: str, device: str) -> None:
        raise NotImplementedError('"Foo" operation is not implemented')

    monkeypatch.setattr(ocr_torch, "TorchSession", refuse)
    engine = RapidOCREngine(device="auto")
    with caplog.at_level(logging.WARNING, logger=ocr_torch.__name__):
        words = engine.words(Image.open(RECEIPT))
    assert "9.00" in " ".join(w.text for w in words)  # read all the same, by ONNX Runtime
    assert type(engine._engine().text_rec.session).__name__ == "OrtInferSession"
    assert "cannot be converted" in caplog.text and "stays on the CPU" in caplog.text


def test_same_upper_padding_is_written_out_only_where_it_does_not_depend_on_the_size() -> None:
    import onnx
    from onnx import helper

    def conv(name: str, kernel: list[int], strides: list[int]) -> onnx.NodeProto:
        return helper.make_node("Conv", ["x", "w"], [name], kernel_shape=kernel, strides=strides, auto_pad="SAME_UPPER")

    nodes = [conv("a", [2, 2], [1, 1]), conv("b", [3, 3], [1, 1]), conv("c", [3, 3], [2, 2])]
    model = helper.make_model(helper.make_graph(nodes, "g", [], []))
    ocr_torch._explicit_pads(model)
    attrs = [{a.name: helper.get_attribute_value(a) for a in n.attribute} for n in model.graph.node]
    assert attrs[0]["pads"] == [0, 0, 1, 1] and "auto_pad" not in attrs[0]  # the odd one at the end
    assert attrs[1]["pads"] == [1, 1, 1, 1] and "auto_pad" not in attrs[1]
    assert attrs[2]["auto_pad"] == b"SAME_UPPER" and "pads" not in attrs[2]  # stride 2: left to onnx2torch


@needs_data
@pytest.mark.slow
def test_rapidocrs_own_models_move_too(torch_on_cpu: None) -> None:
    """`--ocr-script all --ocr-detector small`: models rapidocr locates itself (no path configured here),
    as is the recogniser that re-reads pages with Chinese or Japanese lines (ocr_fallback.py)."""
    engine = RapidOCREngine(device="auto", script="all", detector="small")
    text = " ".join(w.text for w in engine.words(Image.open(RECEIPT)))
    assert "9.00" in text
    loaded = engine._engine()
    assert isinstance(loaded.text_det.session, ocr_torch.TorchSession)
    assert isinstance(loaded.text_rec.session, ocr_torch.TorchSession)
    assert loaded.text_rec.session.path.endswith("PP-OCRv6_rec_small.onnx")


@pytest.mark.parametrize(("gpu", "workers_get"), [(False, "cpu"), (True, "cuda")])
def test_workers_are_told_the_device_get_ocr_resolved(
    monkeypatch: pytest.MonkeyPatch, gpu: bool, workers_get: str
) -> None:
    """auto is resolved once, in the server: workers of a CPU-only server get "cpu" and never import
    torch to look for a GPU; with one they get "cuda"."""
    from mmsearch.server.ingest.ocr_pool import OCRPool

    monkeypatch.setattr(ocr_torch, "torch_cuda", lambda: gpu)
    monkeypatch.setattr(ocr, "_LOADED", {})
    monkeypatch.setattr(OCRPool, "__init__", lambda self, workers, engine: setattr(self, "engine", engine))
    pool = ocr.get_ocr("rapidocr", workers=2, device="auto")
    assert isinstance(pool, OCRPool)
    assert pool.engine.keywords["device"] == workers_get  # type: ignore[attr-defined]


def test_a_gpu_out_of_memory_is_resource_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the page's fault: RESOURCE_EXHAUSTED (ingest keeps the kind per item, points.py)."""
    import numpy as np
    import torch

    from mmsearch.server.errors import ResourceExhausted

    def out_of_memory(x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    session = ocr_torch.TorchSession.__new__(ocr_torch.TorchSession)
    session.device, session.module = torch.device("cpu"), out_of_memory  # type: ignore[assignment]
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with pytest.raises(ResourceExhausted, match=r"ran out of memory.*--ocr-device cpu"):
        session(np.zeros((6, 3, 48, 320), dtype=np.float32))


def test_the_rereading_engine_moves_only_its_recogniser(torch_on_cpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine that re-reads a page's lines with every script (ocr_fallback.py) never detects: its
    detector is not loaded on the GPU."""
    moved: list[tuple[str, ...]] = []
    made: list[object] = []
    monkeypatch.setattr(ocr_torch, "move_to_torch", lambda engine, device, stages: moved.append(stages))
    monkeypatch.setattr(ocr, "add_fallback", lambda engine, all_scripts: made.append(all_scripts()))
    RapidOCREngine(device="auto")._engine()
    assert len(made) == 1
    assert moved == [("det", "rec"), ("rec",)]
