"""telemetry.track, runs and the coarse usage count."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import optel
from optel import testing, usage
from optel.config import paths
from tests.conftest import Granted


def _events(t: optel.Telemetry) -> list[dict[str, Any]]:
    t.flush(0)
    rows = testing.pending()
    return [json.loads(r.payload) for r in rows if r.signal == "event"]


def _named(t: optel.Telemetry, name: str) -> list[dict[str, Any]]:
    return [e["attributes"] for e in _events(t) if e["name"] == name]


@pytest.mark.parametrize(
    ("runs", "label"),
    [(1, "first"), (2, "<=10"), (10, "<=10"), (11, "<=100"), (1000, "<=1000"), (1001, ">1000")],
)
def test_run_count_buckets(runs: int, label: str) -> None:
    assert usage.bucket(runs) == label


def test_decorator_records_duration_outcome_and_declared_params_only(granted: Granted) -> None:
    t = granted()

    @t.track("convert", params=["framework", "quantize"], stage="cli")
    def convert(path: str, framework: str = "onnx", *, quantize: bool = False) -> str:
        if path == "bad":
            raise ValueError("cannot read /home/alice/bad.onnx")
        return path.upper()

    assert convert("/home/alice/m.onnx") == "/HOME/ALICE/M.ONNX"
    assert convert("m", "tflite", quantize=True) == "M"
    with pytest.raises(ValueError):
        convert("bad", framework="torch")
    assert convert.__name__ == "convert"  # functools.wraps
    calls = _named(t, "convert")
    assert [c["framework"] for c in calls] == ["onnx", "tflite", "torch"]
    assert [c["quantize"] for c in calls] == [False, True, False]
    assert [c["optel.success"] for c in calls] == [True, True, False]
    assert all(c["stage"] == "cli" for c in calls)
    assert all(isinstance(c["optel.duration_ms"], float) for c in calls)
    assert "path" not in calls[0]  # not declared: never recorded
    assert calls[2]["optel.error.type"] == "ValueError"
    reports = _named(t, "exception")
    assert len(reports) == 1 and reports[0]["exception.type"] == "ValueError"
    assert "exception.message" not in reports[0]  # free text: off by default


def test_context_manager_and_set(granted: Granted) -> None:
    t = granted()
    with t.track("export", target="tflite") as run:
        run.set(quantize="int8")
    with pytest.raises(KeyError), t.track("export", target="coreml"):
        raise KeyError("x")
    calls = _named(t, "export")
    assert [(c["target"], c["optel.success"]) for c in calls] == [
        ("tflite", True),
        ("coreml", False),
    ]
    assert calls[0]["quantize"] == "int8"


def test_async_functions_are_timed_when_awaited(granted: Granted) -> None:
    t = granted()

    @t.track("fetch", params=["n"])
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    assert asyncio.run(fetch(21)) == 42
    assert _named(t, "fetch")[0]["n"] == 21


def test_interrupt_is_not_a_failure_report(granted: Granted) -> None:
    t = granted()

    @t.track("wait")
    def wait() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait()
    assert _named(t, "wait")[0]["optel.error.type"] == "KeyboardInterrupt"
    assert _named(t, "exception") == []


def _exits() -> list[tuple[BaseException, bool]]:
    """Each way a command can end by raising, and whether it succeeded."""
    import click
    import typer

    found: list[tuple[BaseException, bool]] = [
        (SystemExit(0), True),
        (SystemExit(None), True),
        (SystemExit(2), False),
        (SystemExit("cannot read the model"), False),  # printed, status 1
        (click.exceptions.Exit(0), True),
        (click.exceptions.Exit(3), False),
    ]
    if typer.Exit is not click.exceptions.Exit:  # newer Typer has its own
        found += [(typer.Exit(0), True), (typer.Exit(1), False)]
    return found


def test_normal_exits_are_success_and_other_exits_failures(granted: Granted) -> None:
    t = granted()
    cases = _exits()

    @t.track("run")
    def run(exc: BaseException) -> None:
        raise exc

    for exc, _ in cases:
        with pytest.raises(type(exc)):
            run(exc)
    with pytest.raises(SystemExit), t.track("run"):
        raise SystemExit(0)
    calls = _named(t, "run")
    assert [c["optel.success"] for c in calls] == [ok for _, ok in cases] + [True]
    assert all("optel.error.type" not in c for c, (_, ok) in zip(calls, cases) if ok)
    reported = [r["exception.type"] for r in _named(t, "exception")]
    # Click's Exit is a RuntimeError: only its failing form is a failure report
    assert reported == ["click.exceptions.Exit"] + (
        ["typer.exceptions.Exit"] if len(cases) > 6 else []
    )


def test_duration_histogram_counts_every_call_even_when_events_are_capped(granted: Granted) -> None:
    t = granted(max_events_per_run=3)

    @t.track("step")
    def step() -> None:
        pass

    for _ in range(10):
        step()
    t.flush(0)
    rows = [json.loads(r.payload) for r in testing.pending() if r.signal == "metric"]
    hist = [m for m in rows if m["name"] == "optel.command.duration"]
    assert sum(p["count"] for m in hist for p in m["points"]) == 10
    assert len(_named(t, "step")) == 3
    assert len(_named(t, "run_start")) == 1  # optel's own run events are not capped


@pytest.mark.parametrize(
    ("name", "params"),
    [("", ()), ("9lives", ()), ("x" * 41, ()), (42, ()), ("ok", "framework"), ("ok", ["nope"])],
)
def test_author_mistakes_raise_with_or_without_consent(
    granted: Granted, name: Any, params: Any
) -> None:
    def convert(framework: str = "onnx") -> None:
        pass

    off = optel.init(app="mytool")
    on = granted()
    for t in (off, on):
        with pytest.raises(ValueError):
            t.track(name, params=params)(convert)


def test_without_consent_the_function_is_returned_unchanged(home: Path) -> None:
    t = optel.init(app="mytool")

    def convert() -> int:
        return 1

    assert t.track("convert")(convert) is convert
    with t.track("export") as run:
        run.set(x=1)
    assert not home.exists()


def test_first_tracked_call_starts_the_run_and_shutdown_ends_it(granted: Granted) -> None:
    t = granted()
    t.event("plain")
    assert [e["name"] for e in _events(t)] == ["plain"]  # no track: no run events

    @t.track("convert")
    def convert() -> None:
        pass

    export = t.track("export")
    # decorated or made, never called (`mytool --help`): the run has not started
    assert [e["name"] for e in _events(t)] == ["plain"]
    convert()
    with export:
        pass
    convert()
    starts = _named(t, "run_start")
    assert len(starts) == 1
    assert starts[0]["optel.runs"] == "first"
    assert starts[0]["optel.tool.version"] == "1.0"
    assert "optel.os.type" in starts[0] and "optel.memory" in starts[0]
    t.shutdown()
    rows = [json.loads(r.payload) for r in testing.pending()]
    ends = [r["attributes"] for r in rows if r.get("name") == "run_end"]
    assert len(ends) == 1
    assert ends[0]["optel.run.outcome"] == "ok"
    assert [r["name"] for r in rows if r.get("signal") == "event"][:2] == ["plain", "run_start"]
    assert ends[0]["optel.failures"] == 0


def test_usage_count_persists_across_runs(home: Path) -> None:
    p = paths()
    for expected in range(1, 13):
        assert usage.count_run(p, "mytool") == expected
    assert usage.count_run(p, "othertool") == 1
    Path(p.usage).write_text("{broken")
    assert usage.count_run(p, "mytool") == 1  # a hint only: a broken file starts over


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capture_crashes": "yes"},
        {"capture_logs": "LOUD"},
        {"capture_logs": 0},
        {"capture_logs": 3.5},
        {"max_events_per_minute": 0},
    ],
)
def test_init_extras_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        optel.init(app="mytool", **kwargs)


def test_without_consent_no_extra_imports_threads_files_or_hooks(home: Path) -> None:
    from tests.conftest import run_python

    r = run_python(
        """
        import logging, sys, threading
        hooks = (sys.excepthook, threading.excepthook, logging.getLogRecordFactory())
        import optel
        t = optel.init(app="mytool", capture_crashes=True, capture_logs=True,
                       max_events_per_minute=10)

        @t.track("convert", params=["framework"])
        def convert(framework="onnx"):
            return framework

        convert()
        with t.track("export", target="tflite") as run:
            run.set(x=1)
        try:
            raise ValueError("x")
        except ValueError as exc:
            t.error(exc)
        logging.getLogger("tool").error("e")
        t.log_handler()
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")
                        or m in ("optel.usage", "optel.crash", "optel.system", "optel.pipeline"))
        same = hooks == (sys.excepthook, threading.excepthook, logging.getLogRecordFactory())
        print(t.enabled, loaded, threading.active_count(), same)
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "['optel.usage']", "1", "True"]
    assert not home.exists()


def test_a_ctrl_c_in_the_run_end_exit_hook_ends_it_quietly(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook registered at exit is end_at_exit: a KeyboardInterrupt inside it
    (a person pressing Ctrl-C while the tool exits) never leaves it."""
    import atexit

    hooks: list[Any] = []
    monkeypatch.setattr(atexit, "register", lambda f, *a, **k: hooks.append(f) or f)
    t = granted()
    run = t.run  # type: ignore[attr-defined]
    (hook,) = [h for h in hooks if getattr(h, "__self__", None) is run]
    assert hook.__func__ is type(run).end_at_exit

    def interrupted() -> None:
        raise KeyboardInterrupt

    run.end = interrupted  # type: ignore[method-assign]
    try:
        hook()  # no KeyboardInterrupt out of it
    finally:
        del run.end  # the test's own shutdown ends the run as usual
