"""``@telemetry.track`` overhead per call, against the undecorated function.

Both run in this one process, alternating in rounds so machine noise hits
both alike; each figure is the median of the rounds. Caps are raised so
every call does the full work (event record, histogram, rate limiter); the
spool is written between rounds, off the clock, as the worker would.
Run by ``make bench`` (bench/run.py), or alone: ``python bench/track_overhead.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

ROUNDS = 7
CALLS = 3_000  # per round: well under the in-memory queue bound


def trivial(x: int, framework: str = "onnx") -> int:
    return x + 1


def busy(x: int, framework: str = "onnx") -> int:
    return sum(range(3_000)) + x  # a small but real piece of work (tens of us)


def _per_call(fn: Callable[..., Any]) -> float:
    t0 = time.perf_counter()
    for i in range(CALLS):
        fn(i, framework="onnx")
    return (time.perf_counter() - t0) / CALLS * 1e6


def _measure(
    bare: Callable[..., Any], tracked: Callable[..., Any], flush: Callable[[], Any]
) -> tuple[float, float]:
    b, t = [], []
    _per_call(bare), _per_call(tracked), flush()  # warm-up
    for _ in range(ROUNDS):
        b.append(_per_call(bare))
        t.append(_per_call(tracked))
        flush()
    return statistics.median(b), statistics.median(t)


def main() -> None:
    os.environ.setdefault("OPTEL_HOME", tempfile.mkdtemp(prefix="optel-bench-"))
    for key in ("OPTEL_DISABLED", "DO_NOT_TRACK", "CI"):
        os.environ.pop(key, None)
    import optel
    from optel import consent
    from optel.config import paths

    off = optel.init(app="benchoff")
    consent.record(consent.GRANTED, "bench", p=paths())
    t = optel.init(app="bench", max_events_per_minute=10_000_000, max_events_per_run=10_000_000)
    assert t.enabled, t

    def flush() -> None:
        t.flush(0)

    lines = []
    for label, fn in (("trivial function", trivial), ("busy function", busy)):
        tracked = t.track("convert", params=["framework"])(fn)
        b, d = _measure(fn, tracked, flush)
        lines.append(
            f"track, consent on, {label:16}: bare {b:7.2f} us  tracked {d:7.2f} us"
            f"  overhead {d - b:5.2f} us/call  ratio {d / b:6.2f}x"
        )

    def with_block(x: int, framework: str = "onnx") -> int:
        with t.track("convert", framework=framework):
            return trivial(x)

    b, d = _measure(trivial, with_block, flush)
    lines.append(
        f"track, consent on, with-block      : bare {b:7.2f} us  tracked {d:7.2f} us"
        f"  overhead {d - b:5.2f} us/call  ratio {d / b:6.2f}x"
    )
    tracked_off = off.track("convert", params=["framework"])(trivial)
    b, d = _measure(trivial, tracked_off, lambda: None)
    lines.append(
        f"track, consent off, trivial        : bare {b:7.2f} us  tracked {d:7.2f} us"
        f"  ratio {d / b:6.2f}x  (the function itself is returned: {tracked_off is trivial})"
    )
    t.shutdown()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
