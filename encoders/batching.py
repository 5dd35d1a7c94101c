"""Dynamic batching of query encodes: concurrent searches share one forward pass.

A search encodes one short query. On a CPU a small model's forward pass costs almost as much for one
query as for several (per-call and per-layer overheads, cores left idle), and encoders serialise
their calls, so concurrent searches used to queue behind each other's forward passes. The batcher
hands every query waiting at that moment to the encoder in one call: a lone search goes straight
through without any added wait; concurrent searches ride together.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from .base import Encoded, Encoder


class QueryBatcher:
    """Encodes queries (`as_query=True`) for one encoder, batching those that arrive together."""

    def __init__(self, encoder: Encoder, max_batch: int = 32) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future[Encoded]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=f"queries-{encoder.kind}", daemon=True).start()

    def encode(self, text: str) -> Encoded:
        """(n_tokens, dim) token vectors and a pooled vector, as `encoder.encode_texts([text])[0]`."""
        future: Future[Encoded] = Future()
        self._queue.put((text, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._encode(batch)

    def _encode(self, batch: list[tuple[str, Future[Encoded]]]) -> None:
        try:
            encoded = self.encoder.encode_texts([text for text, _ in batch], as_query=True)
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:  # one bad query fails alone
                self._encode([one])
            return
        for (_, future), e in zip(batch, encoded, strict=True):
            future.set_result(e)
