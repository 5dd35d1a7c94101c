"""Zero-shot classification: an input (text, or a page image read by OCR) scored against label
descriptions with a collection's text model (or the server's default), as search scores candidates
(docs/classify.md):

- signals per label: the pooled cosine of input and description ("dense"), MaxSim of the
  description's tokens over the input's, divided by their number ("maxsim"), and the cross-encoder's
  score of (input, description) when the request asks for it;
- fused as search fuses them: z-scores over the request's labels, weighted with the search weights
  (dense_weight, maxsim_weight; the cross-encoder 1), then the logistic of the weight-averaged z-score.

So a score is relative to the other labels of the request: 0.5 is the labels' average, 0.88 is two
standard deviations above it on every signal. Multi-label classification keeps the labels at or above
a threshold; a single label has nothing to be compared with and scores 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmsearch.encoders.base import Encoded
from mmsearch.protocol.vocab import Fusion, Signal

from .catalog import Catalog
from .errors import InvalidArgument, MMSearchError
from .ingest.items import ImageFile
from .ingest.pages import PageLimits, image_pages
from .ranking import fusion
from .settings import Settings

#: Most labels in one request: every label is encoded per request (no cache), and the scores are
#: relative to the labels given, so a request is one decision among a bounded set of choices.
MAX_LABELS = 256
MAX_LABEL_CHARS = 1000


@dataclass
class Label:
    name: str
    description: str = ""  # empty: the name

    @property
    def text(self) -> str:
        return self.description or self.name


@dataclass
class LabelScore:
    label: str
    score: float
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class ClassifyParams:
    labels: list[Label]
    text: str = ""
    image: ImageFile | None = None
    collection: str = ""  # empty: the server's default text model
    threshold: float | None = None
    cross_encoder: bool = False


class Classifier:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings

    def validate(self, p: ClassifyParams) -> None:
        if not p.labels:
            raise InvalidArgument("no labels: give at least one label to score the input against")
        if len(p.labels) > MAX_LABELS:
            raise InvalidArgument(f"{len(p.labels)} labels in one request; the limit is {MAX_LABELS}")
        seen: set[str] = set()
        for i, label in enumerate(p.labels):
            if not label.name.strip():
                raise InvalidArgument(f"label {i} has no name")
            if label.name in seen:
                raise InvalidArgument(f"label {label.name!r} is given twice")
            seen.add(label.name)
            if len(label.text) > MAX_LABEL_CHARS:
                raise InvalidArgument(
                    f"label {label.name!r} is {len(label.text)} characters; the limit is {MAX_LABEL_CHARS}"
                )
        if p.image is None and not p.text.strip():
            raise InvalidArgument("the input is empty: give text or an image")
        if p.image is not None and p.text:
            raise InvalidArgument("give text or an image, not both")
        if len(p.text) > self.settings.max_rerank_document_chars:
            limit = self.settings.max_rerank_document_chars
            raise InvalidArgument(f"the input is {len(p.text)} characters; the limit is {limit}")
        if p.threshold is not None and not 0.0 <= p.threshold <= 1.0:
            raise InvalidArgument(f"threshold must be in [0, 1], got {p.threshold}")

    def classify(self, p: ClassifyParams) -> tuple[list[LabelScore], str]:
        """Labels with their scores, best first (those under the threshold left out), and the text
        that was classified."""
        self.validate(p)
        if p.collection:
            encoder = self.catalog.text_encoder(self.catalog.store.get_spec(p.collection))
        else:
            encoder = self.catalog.encoder()
        text = p.text if p.image is None else self._read(p.image)
        names = [label.name for label in p.labels]
        document = encoder.encode_texts([text], as_query=False)[0]
        # Labels play the part of queries: short descriptions matched against the input.
        labels = encoder.encode_texts([label.text for label in p.labels], as_query=True)
        ce = None
        if p.cross_encoder:
            ce = [float(x) for x in self.catalog.cross_encoder().score(text, [label.text for label in p.labels])]
        weights = {Signal.DENSE: self.settings.dense_weight, Signal.MAXSIM: self.settings.maxsim_weight}
        out = score_labels(names, labels, document, weights, ce)
        if p.threshold is not None:
            out = [x for x in out if x.score >= p.threshold]
        return out, text

    def _read(self, image: ImageFile) -> str:
        """A page image's text by OCR (its first page); an image without text cannot be classified."""
        try:
            page = next(image_pages(image.data, image.mime_type, PageLimits(max_pixels=self.settings.max_image_pixels)))
        except StopIteration:
            raise InvalidArgument("the image has no pages") from None
        except MMSearchError as exc:
            raise type(exc)(f"image: {exc}") from None
        assert page.image is not None
        text = " ".join(w.text for w in self.catalog.ocr().words(page.image))
        if not text.strip():
            raise InvalidArgument("the image holds no readable text (OCR found none)")
        return text


def score_labels(
    names: list[str], labels: list[Encoded], document: Encoded, weights: dict[str, float],
    cross_encoder: list[float] | None = None,
) -> list[LabelScore]:  # fmt: skip
    """Each label's signals against the input and their fusion (the module's docstring), best first.
    `labels`: per label, pooled (d,) and token (n_label_tokens, d) vectors; `document` the same for the input."""
    dense = {n: float(q.pooled @ document.pooled) for n, q in zip(names, labels, strict=True)}
    # MaxSim: (n_label_tokens, d) @ (d, n_input_tokens), the best input token per label token, averaged
    maxsim = {n: float((q.tokens @ document.tokens.T).max(axis=1).mean()) for n, q in zip(names, labels, strict=True)}
    signals: dict[str, dict[str, float]] = {Signal.DENSE: dense, Signal.MAXSIM: maxsim}
    weights = dict(weights)
    if cross_encoder is not None:
        signals[Signal.CROSS_ENCODER] = dict(zip(names, cross_encoder, strict=True))
        weights[Signal.CROSS_ENCODER] = 1.0
    fused = fusion.weighted_zscore(signals, names, weights)
    scores = fusion.squash(fused, Fusion.WEIGHTED_ZSCORE, sum(abs(w) for w in weights.values()))
    out = [
        LabelScore(n, float(s), {str(k): v[n] for k, v in signals.items()})
        for n, s in zip(names, scores.tolist(), strict=True)
    ]
    out.sort(key=lambda x: -x.score)
    return out
