"""ClassifyService: proto <-> Classifier."""

from __future__ import annotations

import grpc

from mmsearch.v1 import classify_pb2, classify_pb2_grpc

from ..classify import Classifier, ClassifyParams, Label
from ..errors import PermissionDenied
from ..ingest.items import ImageFile
from ..security.principal import current_principal


class ClassifyServicer(classify_pb2_grpc.ClassifyServiceServicer):
    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier

    def Classify(  # noqa: N802
        self, request: classify_pb2.ClassifyRequest, context: grpc.ServicerContext
    ) -> classify_pb2.ClassifyResponse:
        # The collection is optional (the default model needs none), so the security rule names none:
        # a named one is checked against the key here.
        principal = current_principal()
        if request.collection and not principal.may_use(request.collection):
            raise PermissionDenied(f"key {principal.key_id!r} may not use collection {request.collection!r}")
        image = request.image if request.WhichOneof("input") == "image" else None
        params = ClassifyParams(
            labels=[Label(x.name, x.description) for x in request.labels],
            text=request.text,
            image=ImageFile(image.data, image.mime_type) if image is not None else None,
            collection=request.collection,
            threshold=request.threshold if request.HasField("threshold") else None,
            cross_encoder=request.cross_encoder,
        )
        scores, text = self.classifier.classify(params)
        out = classify_pb2.ClassifyResponse(text=text)
        for s in scores:
            out.labels.add(label=s.label, score=s.score, signals=s.signals)
        return out
