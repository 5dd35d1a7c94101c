"""ColPali ingest in pipelined batches: the stream queues a batch of pages on the model while it makes
the previous batch's points (ingest/pipeline.py). One stream of many pages must store, page for
page and in order, what one-page streams store; and with keep_page_images off, image items keep no
image either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.server.app import App, create_server
from mmsearch.server.storage.base import PointData
from mmsearch.v1 import common_pb2, ingest_pb2

from .conftest import fake_settings
from .pagegen import text_page
from .tiny_colpali import build_tiny


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = create_server(fake_settings(tmp_path, allowed_models=["*"], keep_page_images=False))
    yield app
    app.stop(grace=None)


def _item(doc_id: str, data: bytes) -> ingest_pb2.IngestItem:
    return ingest_pb2.IngestItem(id=doc_id, image=common_pb2.Image(data=data, mime_type="image/png"))


def test_one_stream_of_pages_stores_what_one_page_streams_store(
    app: App, tmp_path: Path, tiny_colpali_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: dict[tuple[str, str], PointData] = {}
    real = app.store.upsert

    def upsert(name: str, points: list[PointData]) -> None:
        written.update({(name, p.payload["doc_id"]): p for p in points})
        real(name, points)

    monkeypatch.setattr(app.store, "upsert", upsert)
    model = str(build_tiny("colpali", tiny_colpali_dir))
    # 8 page images make a batch (pipeline.PAGE_IMAGES_PER_BATCH): 12 pages are 2 batches, the
    # second queued on the model while the first one's points are made and written
    pages = {f"p{i}": text_page([f"page {i}", "quarterly report"], size=(300 + 23 * i, 400)) for i in range(12)}
    items = [_item(k, v) for k, v in pages.items()]
    items.insert(5, _item("broken", b"\x89PNG\r\n\x1a\n not a png"))  # refused alone, in its place
    with Client(f"127.0.0.1:{app.port}", timeout=120, retries=0) as c:
        for name in ("many", "single"):
            c.create_collection(name, page_kind="colpali", page_model=model, ocr="never")
        acks = list(c.ingest("many", items))
        assert [a.id for a in acks] == [i.id for i in items]
        assert [a.ok for a in acks] == [i.id != "broken" for i in items]
        assert all(a.points == 1 for a in acks if a.ok)
        alone = ("p0", "p7", "p8", "p11")  # pages of the first and second batch, each in a stream of its own
        for doc in alone:
            assert [a.ok for a in c.ingest("single", [_item(doc, pages[doc])])] == [True]

    for doc in alone:
        many, single = written[("many", doc)], written[("single", doc)]
        assert many.id == single.id and many.payload == single.payload
        for field in ("dense", "tokens", "prefetch"):
            a, b = getattr(many, field), getattr(single, field)
            assert (a is None) is (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, atol=1e-5)  # batched matmuls may round differently
    assert {doc for name, doc in written if name == "many"} == set(pages)
    # keep_page_images off: no WebP copy of an image item is made or stored
    assert not any(p.is_file() for p in (tmp_path / "page_images").rglob("*"))
