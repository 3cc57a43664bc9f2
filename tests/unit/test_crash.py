"""Failure reports (dedup, counter, span event) and the crash hooks' chaining."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import optel
from optel import crash, run, testing
from tests.conftest import Granted


@pytest.fixture(autouse=True)
def _restore_hooks() -> Iterator[None]:
    before = (sys.excepthook, threading.excepthook)
    yield
    crash.uninstall()
    sys.excepthook, threading.excepthook = before


def _records(t: optel.Telemetry) -> list[dict[str, Any]]:
    t.flush(0)
    return [json.loads(r.payload) for r in testing.pending()]


def _fail(path: str) -> None:
    raise FileNotFoundError(f"no such file: {path}")


def test_identical_failures_are_reported_once_and_counted(granted: Granted) -> None:
    t = granted()
    for i in range(5):
        try:
            _fail(f"/home/alice/model{i}.onnx")  # messages differ, frames do not
        except OSError as exc:
            t.error(exc)
    try:
        raise KeyError("other")
    except KeyError as exc:
        t.error(exc)
    reports = [r for r in _records(t) if r.get("name") == "exception"]
    assert len(reports) == 2
    first = reports[0]
    assert first["attributes"]["exception.type"] == "FileNotFoundError"
    assert "alice" not in json.dumps(first)
    assert first["report"]["type"] == "FileNotFoundError"  # the structured report rides along
    assert t.run.failure_counts() == {
        first["attributes"]["optel.failure.id"]: 5,
        reports[1]["attributes"]["optel.failure.id"]: 1,
    }
    t.shutdown()
    rows = [json.loads(r.payload) for r in testing.pending()]
    repeated = [r["attributes"] for r in rows if r.get("name") == "exception_repeated"]
    assert repeated == [
        {
            "optel.failure.type": "FileNotFoundError",
            "optel.failure.count": 5,
            "optel.failure.id": first["attributes"]["optel.failure.id"],
        }
    ]
    counter = [r for r in rows if r.get("name") == "optel.failures"]
    assert sum(p["value"] for m in counter for p in m["points"]) == 6


def test_failure_is_a_span_event_on_the_current_span(granted: Granted) -> None:
    t = granted()
    with t.tracer.start_as_current_span("convert"):
        try:
            _fail("/home/alice/x")
        except OSError as exc:
            t.error(exc)
    span = next(r for r in _records(t) if r["signal"] == "span")
    (event,) = span["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "FileNotFoundError"
    assert "exception.message" not in event["attributes"]  # free text: off by default
    assert event["attributes"]["exception.stacktrace"].startswith("<user-code>:")


def test_distinct_failures_memory_is_bounded(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "MAX_DISTINCT", 3)
    t = granted()
    for i in range(6):
        try:
            raise type(f"Error{i}", (ValueError,), {})("x")  # six distinct types
        except ValueError as exc:
            t.error(exc)
    assert len(t.run.failure_counts()) == 3
    assert len([r for r in _records(t) if r.get("name") == "exception"]) == 6


def test_hooks_chain_to_the_previous_ones(granted: Granted) -> None:
    seen: list[str] = []
    sys.excepthook = lambda *a: seen.append("sys")
    threading.excepthook = lambda args: seen.append("thread")
    t = granted(capture_crashes=True)
    assert crash.installed()
    try:
        _fail("/home/alice/crash.onnx")
    except OSError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    th = threading.Thread(target=_fail, args=("/home/alice/thread.onnx",))
    th.start()
    th.join()
    assert seen == ["sys", "thread"]
    crashes = [r["attributes"] for r in _records(t) if r.get("name") == "exception"]
    assert [c["optel.crash.thread"] for c in crashes] == ["main", "thread"]
    assert all(c["optel.crash"] is True and "optel.os.type" in c for c in crashes)
    crash.uninstall()
    assert not crash.installed()
    sys.excepthook(ValueError, ValueError("x"), None)
    assert seen[-1] == "sys"


def test_installing_twice_chains_once(granted: Granted) -> None:
    seen: list[str] = []
    sys.excepthook = lambda *a: seen.append("sys")
    granted(capture_crashes=True)
    optel.init(app="mytool", capture_crashes=True)
    sys.excepthook(ValueError, ValueError("x"), None)
    assert seen == ["sys"]


def test_interrupts_and_exits_are_not_crashes(granted: Granted) -> None:
    sys.excepthook = lambda *a: None
    t = granted(capture_crashes=True)
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    sys.excepthook(SystemExit, SystemExit(3), None)
    assert [r for r in _records(t) if r.get("name") == "exception"] == []


def test_without_consent_no_hook_is_installed(home: Path) -> None:
    before = sys.excepthook, threading.excepthook
    t = optel.init(app="mytool", capture_crashes=True)
    assert not t.enabled
    assert (sys.excepthook, threading.excepthook) == before
    assert not home.exists()


def test_one_exception_reported_on_its_way_up_counts_once(granted: Granted) -> None:
    t = granted()

    @t.track("convert")
    def convert() -> None:
        _fail("/home/alice/x")

    try:
        convert()  # track reports it ...
    except OSError as exc:
        t.error(exc)  # ... and the caller again, with one more frame
    reports = [r for r in _records(t) if r.get("name") == "exception"]
    assert len(reports) == 1
    assert sum(t.run.failure_counts().values()) == 1
