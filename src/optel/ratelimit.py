"""Per-tool caps on how many records a run may produce.

A tool that reports an event inside a loop must not flood the spool, the
network or the analytics property. Each :class:`~optel.telemetry.Telemetry`
holds one :class:`RateLimiter` with two caps:

- *per minute*: a token bucket of ``per_minute`` tokens that refills
  continuously, so short bursts pass and a steady flood is cut to the cap;
- *per run*: a hard ceiling for the whole process.

What is refused is counted, never silently lost: the count is written to
the spool's stats at the end of the run and ``optel status`` shows it.
Metrics are not limited here: they aggregate in memory and cost the same
whatever the call rate.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

DEFAULT_PER_MINUTE = 120
DEFAULT_PER_RUN = 2_000
STAT_PREFIX = "rate_limited:"
"""Spool stats key prefix; the key is ``rate_limited:<app>``."""


def check_caps(per_minute: object, per_run: object) -> tuple[int, int]:
    """Validated caps (``None`` means the default); raises ``ValueError``."""
    out = []
    for name, value, default in (
        ("max_events_per_minute", per_minute, DEFAULT_PER_MINUTE),
        ("max_events_per_run", per_run, DEFAULT_PER_RUN),
    ):
        if value is None:
            out.append(default)
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
            raise ValueError(f"{name} must be a whole number from 1 to 10000000, got {value!r}")
        out.append(value)
    return out[0], out[1]


class RateLimiter:
    """Token bucket per minute plus a ceiling per run; thread-safe, never blocks."""

    def __init__(
        self,
        per_minute: int = DEFAULT_PER_MINUTE,
        per_run: int = DEFAULT_PER_RUN,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.per_minute = per_minute
        self.per_run = per_run
        self._clock = clock
        self._tokens = float(per_minute)
        self._last = clock()
        self._used = 0
        self.dropped = 0
        """Records refused so far in this run."""
        self._unsaved = 0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take one slot; ``False`` (and counted) when a cap is reached."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._last
            self._last = now
            if elapsed > 0:
                self._tokens = min(
                    float(self.per_minute), self._tokens + elapsed * self.per_minute / 60
                )
            if self._used >= self.per_run or self._tokens < 1:
                self.dropped += 1
                self._unsaved += 1
                return False
            self._tokens -= 1
            self._used += 1
            return True

    def take_dropped(self) -> int:
        """The drops counted since the last call (to write them to the spool once)."""
        with self._lock:
            n, self._unsaved = self._unsaved, 0
            return n
