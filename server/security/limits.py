"""Per-key limits: calls in flight and a token bucket of calls per second.

A refused call is told how long to wait (`retry_after_s`); the interceptor sends it as the
`retry-after-ms` trailing metadata of a RESOURCE_EXHAUSTED status. The state is per key id, so a
reloaded key file keeps the counters of keys that stay.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .principal import Principal


@dataclass
class _KeyState:
    in_flight: int = 0
    tokens: float = -1.0  # -1: not started (a new bucket starts full)
    stamp: float = field(default_factory=time.monotonic)


class Refused(Exception):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class KeyLimits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, _KeyState] = {}

    def acquire(self, p: Principal) -> None:
        """Admits one call of `p` or raises Refused; each admitted call must be `release`d."""
        if not p.max_concurrent and not p.rate:
            return
        with self._lock:
            s = self._state.setdefault(p.key_id, _KeyState())
            if p.max_concurrent and s.in_flight >= p.max_concurrent:
                raise Refused(
                    f"key {p.key_id!r} already has {s.in_flight} calls in flight (its limit is {p.max_concurrent})",
                    0.05,
                )
            if p.rate:
                burst = float(p.burst or max(1.0, p.rate))
                now = time.monotonic()
                s.tokens = burst if s.tokens < 0 else min(burst, s.tokens + (now - s.stamp) * p.rate)
                s.stamp = now
                if s.tokens < 1.0:
                    raise Refused(
                        f"key {p.key_id!r} is over its rate of {p.rate:g} calls per second", (1.0 - s.tokens) / p.rate
                    )
                s.tokens -= 1.0
            s.in_flight += 1

    def release(self, p: Principal) -> None:
        if not p.max_concurrent and not p.rate:
            return
        with self._lock:
            s = self._state.get(p.key_id)
            if s is not None and s.in_flight > 0:
                s.in_flight -= 1
