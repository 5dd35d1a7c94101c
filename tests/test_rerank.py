"""Rerank over gRPC with image documents: read by OCR (engine monkeypatched), then scored by text."""

from __future__ import annotations

import grpc
import pytest
from PIL import Image

from mmsearch.client import Client
from mmsearch.server.catalog import Catalog
from mmsearch.server.ingest.pages import Word
from mmsearch.v1 import common_pb2, rerank_pb2, rerank_pb2_grpc

from .pagegen import text_page

SENTENCES = {900: "owls hunt mice at night", 700: "trout swim in cold rivers"}


class _WordsByWidth:
    """Reads a fixed sentence off each image, chosen by the image's width."""

    name = "by-width"

    def words(self, image: Image.Image) -> list[Word]:
        return [Word(w, (0, 0, 1, 1)) for w in SENTENCES[image.width].split()]


def _image(width: int, mime: str = "image/png") -> rerank_pb2.RerankDocument:
    return rerank_pb2.RerankDocument(image=common_pb2.Image(data=text_page(["x"], size=(width, 200)), mime_type=mime))


def test_image_documents_are_read_and_ranked(fake_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Catalog, "ocr", lambda self: _WordsByWidth())
    stub = rerank_pb2_grpc.RerankServiceStub(fake_client.channel)
    docs = [_image(700), rerank_pb2.RerankDocument(text="cats sleep all day"), _image(900)]
    r = stub.Rerank(rerank_pb2.RerankRequest(query="mice at night", documents=docs, top_n=2, return_documents=True))
    assert len(r.results) == 2 and r.results[0].index == 2  # the image that reads "owls hunt mice at night"
    assert r.results[0].document.image.data == docs[2].image.data
    for bad, message in (
        ([docs[1], rerank_pb2.RerankDocument()], "document 1 is empty (set text or image)"),
        ([_image(900, mime="image/jpeg")], "document 0: mime type image/jpeg does not match the bytes (image/png)"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            stub.Rerank(rerank_pb2.RerankRequest(query="mice", documents=bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details() == message
