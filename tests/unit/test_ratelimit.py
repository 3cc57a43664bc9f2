"""Rate limits: per-minute token bucket, per-run ceiling, counted drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optel
from optel import cli, consent, testing
from optel.config import paths
from optel.ratelimit import RateLimiter, check_caps


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_up_to_the_minute_cap_then_refill() -> None:
    clock = Clock()
    rl = RateLimiter(per_minute=60, per_run=1000, clock=clock)
    assert [rl.allow() for _ in range(62)].count(True) == 60
    assert rl.dropped == 2
    clock.now += 1.0  # 60 per minute refills one token per second
    assert rl.allow() is True
    assert rl.allow() is False
    clock.now += 120  # never more than a full bucket
    assert [rl.allow() for _ in range(100)].count(True) == 60


def test_per_run_ceiling_holds_whatever_the_time() -> None:
    clock = Clock()
    rl = RateLimiter(per_minute=10, per_run=25, clock=clock)
    allowed = 0
    for _ in range(10):
        allowed += [rl.allow() for _ in range(10)].count(True)
        clock.now += 60
    assert allowed == 25
    assert rl.dropped == 75


def test_take_dropped_hands_each_drop_over_once() -> None:
    rl = RateLimiter(per_minute=1, per_run=1, clock=Clock())
    for _ in range(4):
        rl.allow()
    assert rl.take_dropped() == 3
    assert rl.take_dropped() == 0
    assert rl.dropped == 3  # the run's total stays


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True, 10**9])
def test_wrong_caps_raise(bad: object) -> None:
    with pytest.raises(ValueError):
        check_caps(bad, None)
    with pytest.raises(ValueError):
        optel.init(app="mytool", max_events_per_run=bad)  # type: ignore[arg-type]


def test_defaults() -> None:
    assert check_caps(None, None) == (120, 2000)
    assert check_caps(5, 7) == (5, 7)


def test_events_over_the_cap_are_dropped_counted_and_shown_by_status(home: Path) -> None:
    consent.record(consent.GRANTED, "mytool", p=paths())
    t = optel.init(app="mytool", max_events_per_minute=1000, max_events_per_run=5)
    for i in range(8):
        t.event("used", i=i)
    for _ in range(2):
        try:
            raise ValueError(f"distinct {_}")
        except ValueError as exc:
            t.error(exc)  # one report (same frames), over the cap anyway
    t.flush(0)
    names = [json.loads(r.payload)["name"] for r in testing.pending()]
    assert names.count("used") == 5
    t.shutdown()
    data = cli.status_data("mytool")
    assert data["rate_limited"] == 4  # 3 events + 1 failure report
    assert cli.status_data("othertool")["rate_limited"] == 0
    assert cli.status_data(None)["rate_limited"] == 4
    assert "rate limited: 4" in _status_text("mytool")


def _status_text(app: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["status", "--app", app]) == 0
    return out.getvalue()
