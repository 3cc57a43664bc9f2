"""Put the leak corpus through every path into optel, in this process.

``python -m tests.leaks.emit`` (the leak test runs it with a state folder,
destinations and the environment of each capture). Each case's text goes
through every carrier in :data:`CARRIERS`; then the useful facts are
recorded; the process exits through optel's own shutdown.
"""

from __future__ import annotations

import builtins
import logging
import sys
import traceback
from typing import Any, Callable

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import optel
from tests.leaks.corpus import CASES, DENIED_KEYS, denied_value

Carrier = Callable[[Any, str, int], None]


def _pytest_text(text: str) -> str:
    return (
        "    def test_login():\n"
        f">       assert login({text!r})\n"
        f"E       AssertionError: assert login({text!r})\n"
        "tests/test_login.py:12: AssertionError\n"
    )


class Tool:
    """The instrumented tool: one telemetry, its tracer, logger and counter."""

    def __init__(self) -> None:
        self.t = optel.init(
            app="leaktool",
            allowed_attributes=["detail", *(k for k in DENIED_KEYS if not k.startswith("optel."))],
            attributes={
                "note": optel.Text,
                "input": optel.PathKind,
                "dataset": optel.Hashed,
                "framework": ("onnx", "tensorflow"),
                "opset": optel.Version,
                "size_mb": float,
            },
            max_events_per_minute=10_000_000,
            max_events_per_run=10_000_000,
        )
        assert self.t.recording, self.t  # sending, or an OPTEL_DEBUG preview
        self.tracer = self.t.tracer
        self.log = logging.getLogger("leaktool")
        self.log.addHandler(self.t.log_handler())
        self.log.propagate = False
        self.seen = self.t.meter.create_counter("leaks_seen")


def span_paths(tool: Tool, text: str, i: int) -> None:
    attrs = {"detail": text, "note": text, "input": text, "dataset": text}
    with tool.tracer.start_as_current_span("step " + text, attributes=attrs) as span:
        span.add_event("event " + text, {"detail": text, "note": text})
        span.add_event(
            "exception",
            {"exception.type": "AssertionError", "exception.stacktrace": _pytest_text(text)},
        )
        span.set_status(Status(StatusCode.ERROR, text))
        # a few distinct types, so failure reports are not all deduplicated away
        error = type(f"Leak{i % 16}Error", (RuntimeError,), {})
        try:
            exc = error(text)
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"note: {text}")
            raise exc
        except RuntimeError as caught:
            span.record_exception(caught)
            tool.t.error(caught)


def escaping_exceptions(tool: Tool, text: str, i: int) -> None:
    try:  # chained, recorded by the SDK on the way out, traceback and all
        with tool.tracer.start_as_current_span("chained"):
            try:
                raise KeyError(text)
            except KeyError as e:
                raise ValueError(text) from e
    except ValueError:
        pass
    group = getattr(builtins, "ExceptionGroup", None)  # Python 3.11+
    if group is not None:
        try:
            with tool.tracer.start_as_current_span("group"):
                raise group(text, [ValueError(text), TypeError(text)])
        except group:
            pass


def events(tool: Tool, text: str, i: int) -> None:
    tool.t.event("leak_event", detail=text, note=text)
    tool.t.event("key_event", **{text: 1, "optel.db_password": text})  # the datum as a key
    with tool.t.track("tracked", detail=text):
        pass


def logs(tool: Tool, text: str, i: int) -> None:
    tool.log.warning("problem: %s", text)
    tool.log.warning(f"problem: {text}")  # no arguments: free text
    try:
        raise ValueError(text)
    except ValueError:
        tool.log.error(traceback.format_exc())
        tool.log.exception("failed with %s", text)


def metrics_and_scopes(tool: Tool, text: str, i: int) -> None:
    tool.seen.add(1, {"detail": text, "note": text})
    trace.get_tracer("lib " + text).start_span("work").end()


CARRIERS: list[Carrier] = [span_paths, escaping_exceptions, events, logs, metrics_and_scopes]
PATHS = 24
"""Ways in per case: span name, 4 span attributes (label, text, path kind,
hashed), span event name and attributes (2), pytest-style stack text,
status description, exception message, note and SDK stack trace, failure
report, chained and group stack traces (2), event attributes (2), the datum
as a key, a tracked command, log template, log without arguments, a
formatted traceback in a log, log.exception, metric attributes (2), scope
name."""


def useful(tool: Tool) -> None:
    import json

    t = tool.t
    with tool.tracer.start_as_current_span(
        "convert",
        attributes={"framework": "onnx", "detail": "resnet50", "opset": "2.1.0+cu121",
                    "size_mb": 97.8, "input": "/home/someone/models/resnet50.onnx",
                    "dataset": "imagenet"},
    ):  # fmt: skip
        with tool.tracer.start_as_current_span("GET"):
            pass
        with tool.tracer.start_as_current_span("SELECT orders"):
            pass
        with tool.tracer.start_as_current_span("test_token::call"):
            pass
    try:
        json.loads("{not json")
    except ValueError as exc:
        t.error(exc)
    tool.log.warning("converted %s models", 3)
    t.meter.create_counter("models_converted").add(1, {"framework": "onnx"})


def main() -> None:
    tool = Tool()
    for i, (_, _, text) in enumerate(CASES):
        for carry in CARRIERS:
            carry(tool, text, i)
    for key in DENIED_KEYS:
        with tool.tracer.start_as_current_span("denied", attributes={key: denied_value(key)}):
            pass
        tool.t.event("denied_event", **{key: denied_value(key)})
    useful(tool)
    tool.t.shutdown()
    print("emitted", len(CASES), "cases x", PATHS, "paths", file=sys.stdout)


if __name__ == "__main__":
    main()
