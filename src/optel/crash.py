"""Failure reports and crash capture.

Failure reports (``telemetry.error(exc)``): the anonymizer's scrubbed
report (type, module-relative frames, scrubbed message) becomes one
``exception`` event, an ``exception`` span event on the current span, and
a count on the ``optel.failures`` counter. Identical failures (same type,
same frames; the message may differ) are reported once per run and
counted; ``run_end`` then adds one ``exception_repeated`` event per repeated
failure with its total count.

Crash capture (``optel.init(..., capture_crashes=True)``, per tool):
:func:`install` chains ``sys.excepthook`` and ``threading.excepthook`` to
whatever was installed before. The previous hook runs first and unchanged,
so the user sees exactly the traceback they would see without optel; then
the report (``optel.crash=true`` plus the system facts) is written to the
spool at once, and the exit hook delivers it within the exit budget (or a
later run / ``optel flush`` does). ``KeyboardInterrupt`` and ``SystemExit``
are not crashes. Without consent no hook is installed.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import _errors

if TYPE_CHECKING:
    from .telemetry import Telemetry

MAX_DISTINCT = 64
"""Distinct failures remembered per run for deduplication (bounded)."""

_lock = threading.Lock()
_watched: list[Telemetry] = []
_prev_sys: Any = None
_prev_thread: Any = None


# -- failure reports --------------------------------------------------------------


def report_attributes(exc: BaseException) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The scrubbed report of ``exc`` as event attributes, its fingerprint, the report."""
    from .anonymize import exceptions

    rep = exceptions.report(exc)
    stack = exceptions.stacktrace(rep["frames"])
    fingerprint = hashlib.sha1(f"{rep['type']}\n{stack}".encode()).hexdigest()[:12]
    attrs = {
        "exception.type": rep["type"],
        "exception.message": rep["message"],
        "exception.stacktrace": stack,
        "optel.failure.id": fingerprint,
    }
    return attrs, fingerprint, rep


class _Failures:
    """Per-run memory of failures: fingerprint -> [count, exception type]."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self.counter: Any = None


def _failures(telemetry: Telemetry) -> _Failures:
    f = telemetry.__dict__.get("_failures")
    if f is None:
        f = telemetry.__dict__.setdefault("_failures", _Failures())
    return f  # type: ignore[no-any-return]


def note(telemetry: Telemetry, exc: BaseException) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Count a failure; the first time in this run, its attributes and report.

    Also adds the failure counter and a span event on the current span.
    Returns ``None`` for a repeat (counted only), and for an exception object
    already reported on its way up (``track`` reports, then the caller does).
    """
    if getattr(exc, "_optel_reported", False):
        return None
    try:
        exc._optel_reported = True  # type: ignore[attr-defined]
    except AttributeError:  # exceptions with __slots__: dedup by fingerprint only
        pass
    attrs, fingerprint, rep = report_attributes(exc)
    f = _failures(telemetry)
    with f.lock:
        entry = f.seen.get(fingerprint)
        first = entry is None
        if entry is not None:
            entry[0] += 1
        elif len(f.seen) < MAX_DISTINCT:
            f.seen[fingerprint] = [1, attrs["exception.type"]]
        if f.counter is None:
            f.counter = telemetry.meter.create_counter(
                "optel.failures", unit="1", description="failures reported by the tool"
            )
    f.counter.add(1, {"exception.type": attrs["exception.type"]})
    if not first:
        return None
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("exception", {k: v for k, v in attrs.items() if k != "optel.failure.id"})
    return attrs, rep


def failure_counts(telemetry: Telemetry) -> dict[str, int]:
    """fingerprint -> how many times it failed in this run."""
    f = _failures(telemetry)
    with f.lock:
        return {k: v[0] for k, v in f.seen.items()}


def repeated_failures(telemetry: Telemetry) -> list[dict[str, Any]]:
    """Attributes of one ``exception_repeated`` event per failure seen more than once."""
    f = _failures(telemetry)
    with f.lock:
        return [
            {"optel.failure.id": k, "optel.failure.type": v[1], "optel.failure.count": v[0]}
            for k, v in f.seen.items()
            if v[0] > 1
        ]


# -- crash capture ------------------------------------------------------------------


def install(telemetry: Telemetry) -> None:
    """Report unhandled exceptions of ``telemetry``'s process (idempotent)."""
    global _prev_sys, _prev_thread
    with _lock:
        if telemetry not in _watched:
            _watched.append(telemetry)
        if _prev_sys is None:
            _prev_sys = sys.excepthook
            sys.excepthook = _sys_hook
        if _prev_thread is None:
            _prev_thread = threading.excepthook
            threading.excepthook = _thread_hook


def uninstall() -> None:
    """Put the previous hooks back (where nobody chained on top of optel's)."""
    global _prev_sys, _prev_thread
    with _lock:
        if _prev_sys is not None and sys.excepthook is _sys_hook:
            sys.excepthook = _prev_sys
            _prev_sys = None
        if _prev_thread is not None and threading.excepthook is _thread_hook:
            threading.excepthook = _prev_thread
            _prev_thread = None
        _watched.clear()


def installed() -> bool:
    return sys.excepthook is _sys_hook or threading.excepthook is _thread_hook


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    try:
        (_prev_sys or sys.__excepthook__)(exc_type, exc, tb)
    finally:
        _crashed(exc, tb, in_thread=False)


def _thread_hook(args: Any) -> None:
    try:
        (_prev_thread or threading.__excepthook__)(args)
    finally:
        _crashed(args.exc_value, args.exc_traceback, in_thread=True)


def _crashed(exc: BaseException | None, tb: Any, in_thread: bool) -> None:
    if exc is None or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return
    try:
        if exc.__traceback__ is None and tb is not None:
            exc = exc.with_traceback(tb)
        for telemetry in list(_watched):
            with _errors.guard("crash"):
                record_crash(telemetry, exc, in_thread)
    except BaseException:  # nothing may change what the host's crash looks like
        if _errors.RAISE:
            raise


def record_crash(telemetry: Telemetry, exc: BaseException, in_thread: bool = False) -> None:
    """Record a crash report for ``telemetry`` and write it to the spool now."""
    from . import system, usage

    if not telemetry.enabled:
        return
    if not in_thread:
        usage.state(telemetry).crashed = True
    noted = note(telemetry, exc)
    if noted is None:  # already reported in this run: the crash is still one fact
        attrs, _, rep = report_attributes(exc)
    else:
        attrs, rep = noted
    attrs.update(system.facts(telemetry.version))
    attrs["optel.crash"] = True
    attrs["optel.crash.thread"] = "thread" if in_thread else "main"
    telemetry._emit("exception", attrs, report=rep)
    telemetry._pipeline.drain()  # on disk now: a hard exit later cannot lose it
