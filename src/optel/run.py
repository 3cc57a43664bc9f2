"""One run of one tool: the only owner of a run's state.

A *run* is one process of one tool with consent on. :class:`Run` holds
everything that lives as long as that run and nothing else writes it:

- the run's clock, whether ``run_start`` was recorded, whether it crashed,
  whether it ended;
- the rate limiter (the tool's caps; drops are counted);
- the failure memory: each distinct failure (type and frames) is reported
  once per run and counted; ``run_end`` adds one ``exception_repeated``
  event per failure seen more than once (at most :data:`MAX_DISTINCT` are
  remembered);
- the failures counter and the command-duration histogram (one instrument
  each per tool: the SDK warns on duplicates).

Records reach the pipeline through one callable (``Pipeline.offer_record``).
:mod:`optel.usage` (tracked commands), :mod:`optel.crash` (the exception
hooks) and :mod:`optel.logbridge` (log records) know nothing of
:class:`~optel.telemetry.Telemetry`: they are handed this run's methods.

A run starts when its telemetry object is created; ``run_start`` (with the
anonymous system facts and a coarse run count) is recorded by the first
call of a tracked command (not when a command is decorated: ``mytool
--help`` records nothing), so a tool that only sends its own events gets
nothing extra; ``run_end`` is recorded once, at exit or at shutdown.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable

from . import _errors, records, usage
from .ratelimit import STAT_PREFIX, RateLimiter

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

    from .pipeline import Pipeline

MAX_DISTINCT = 64
"""Distinct failures remembered per run for deduplication (bounded)."""


def report_attributes(
    exc: BaseException, free_text: bool = False
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The failure report of ``exc`` as event attributes, its fingerprint, the report.

    A report is the type, module-relative frames and function names: what an
    author needs to group failures. The message is free text: it is added
    (scrubbed as text by the anonymizer) only when the tool opted in.
    """
    from .anonymize import exceptions

    rep = exceptions.report(exc)
    stack = exceptions.stacktrace(rep["frames"])
    fingerprint = hashlib.sha1(f"{rep['type']}\n{stack}".encode()).hexdigest()[:12]
    attrs = {
        "exception.type": rep["type"],
        "exception.stacktrace": stack,
        "optel.failure.id": fingerprint,
    }
    if free_text:
        attrs["exception.message"] = rep["message"] = str(exc)
    return attrs, fingerprint, rep


class Run:
    """The state of one run of ``app``; every method is safe to call from any thread."""

    def __init__(
        self,
        app: str,
        version: str | None,
        pipeline: Pipeline,
        meter: Meter,
        limiter: RateLimiter | None = None,
    ):
        self.app = app
        self.version = version
        self._pipeline = pipeline
        self._meter = meter
        self.limiter = limiter or RateLimiter()
        self.started = time.monotonic()
        self.run_started = False
        self.ended = False
        self.crashed = False
        self._lock = threading.Lock()
        self._failures: dict[str, list[Any]] = {}  # fingerprint -> [count, type]
        self._failure_counter: Any = None
        self._duration: Any = None
        self.log_capture: Any = None
        """The handler capturing the host's log records, once ``capture_logs`` set one up."""

    # -- records ----------------------------------------------------------------------

    def emit(self, name: str, attributes: dict[str, Any], **fields: Any) -> None:
        """Queue one event record (no rate limit, no key declaration)."""
        rec = records.event(name, attributes, self._pipeline.resource_attributes)
        rec.update(fields)
        self._pipeline.offer_record(rec)

    def offer_limited(self, rec: dict[str, Any]) -> None:
        """Queue a ready record (a log record) within the tool's caps."""
        if self.limiter.allow():
            self._pipeline.offer_record(rec)

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        """``telemetry.event``: keys passed here count as declared; rate limited."""
        if not self.limiter.allow():
            return  # over the tool's cap: counted, shown by 'optel status'
        self.declare(attributes)
        self.emit(name, attributes)

    def declare(self, keys: Iterable[str]) -> None:
        self._pipeline.anonymizer.declare(keys)

    # -- failures -------------------------------------------------------------------------

    def error(self, exc: BaseException) -> None:
        """A failure report, once per distinct failure in this run (repeats are counted)."""
        noted = self._note(exc)
        if noted is not None and self.limiter.allow():
            self.emit("exception", noted[0], report=noted[1])

    def _note(self, exc: BaseException) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Count a failure; the first time in this run, its attributes and report.

        Also adds to the failures counter and puts a span event on the current
        span. ``None`` for a repeat (counted only), and for an exception object
        already reported on its way up (``track`` reports, then the caller does).
        """
        if getattr(exc, "_optel_reported", False):
            return None
        try:
            exc._optel_reported = True  # type: ignore[attr-defined]
        except AttributeError:  # exceptions with __slots__: dedup by fingerprint only
            pass
        attrs, fingerprint, rep = report_attributes(exc, self._pipeline.anonymizer.free_text)
        with self._lock:
            entry = self._failures.get(fingerprint)
            first = entry is None
            if entry is not None:
                entry[0] += 1
            elif len(self._failures) < MAX_DISTINCT:
                self._failures[fingerprint] = [1, attrs["exception.type"]]
            if self._failure_counter is None:
                self._failure_counter = self._meter.create_counter(
                    "optel.failures", unit="1", description="failures reported by the tool"
                )
        self._failure_counter.add(1, {"exception.type": attrs["exception.type"]})
        if not first:
            return None
        from opentelemetry import trace

        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("exception", {k: v for k, v in attrs.items() if k != "optel.failure.id"})
        return attrs, rep

    def failure_counts(self) -> dict[str, int]:
        """fingerprint -> how many times that failure happened in this run."""
        with self._lock:
            return {k: v[0] for k, v in self._failures.items()}

    def _repeated_failures(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"optel.failure.id": k, "optel.failure.type": v[1], "optel.failure.count": v[0]}
                for k, v in self._failures.items()
                if v[0] > 1
            ]

    def crash(self, exc: BaseException, in_thread: bool) -> None:
        """An unhandled exception (from :mod:`optel.crash`): report it and write it to
        the spool now, so a hard exit afterwards cannot lose it."""
        if self._pipeline.closed or not self._pipeline.enabled:
            return
        if not in_thread:
            self.crashed = True
        noted = self._note(exc)
        if noted is None:  # already reported in this run: the crash is still one fact
            attrs, _, rep = report_attributes(exc, self._pipeline.anonymizer.free_text)
        else:
            attrs, rep = noted
        from . import system  # on first need: the facts cost start-up

        attrs.update(system.facts(self.version))
        attrs["optel.crash"] = True
        attrs["optel.crash.thread"] = "thread" if in_thread else "main"
        self.emit("exception", attrs, report=rep)
        self._pipeline.drain()

    # -- commands and the run ------------------------------------------------------------

    def command_done(
        self, name: str, ms: float, exc: BaseException | None, attributes: dict[str, Any]
    ) -> None:
        """One tracked command ended (from :class:`optel.usage.Tracker`)."""
        ok = exc is None
        self._duration_histogram().record(ms, {"optel.command": name, "optel.success": ok})
        if isinstance(exc, Exception):
            self.error(exc)
        if not self.limiter.allow():
            return
        attrs = dict(attributes)
        attrs["optel.duration_ms"] = round(ms, 3)
        attrs["optel.success"] = ok
        if exc is not None:
            attrs["optel.error.type"] = usage.type_name(exc)
        self.emit(name, attrs)

    def _duration_histogram(self) -> Any:
        if self._duration is None:
            with self._lock:
                if self._duration is None:
                    self._duration = self._meter.create_histogram(
                        "optel.command.duration",
                        unit="ms",
                        description="duration of tracked commands",
                    )
        return self._duration

    def start(self) -> None:
        """Once per run: count it and record ``run_start`` with the system facts
        (not in a process working for a parent's run: the parent records it)."""
        with self._lock:
            if self.run_started or self._pipeline.joined_run:
                return
            self.run_started = True
        with _errors.guard("run_start"):
            from . import system  # on first need: the facts cost start-up

            p = self._pipeline.cfg.paths
            # a preview (OPTEL_DEBUG) shows the count this run would have, writing nothing
            preview = getattr(self._pipeline, "preview", False)
            runs = usage.runs(p, self.app) + 1 if preview else usage.count_run(p, self.app)
            attrs = system.facts(self.version)
            attrs["optel.runs"] = usage.bucket(runs)
            self.emit("run_start", attrs)

    def end_at_exit(self) -> None:
        """:meth:`end` as the interpreter's exit hook: a Ctrl-C in its moment ends
        it without a traceback from inside optel (the pipeline's hook does the same)."""
        try:
            self.end()
        except KeyboardInterrupt:
            pass

    def end(self) -> None:
        """At the end of the run, once: repeated failures, ``run_end`` (when the run
        started) and the rate-limit drops into the spool's stats."""
        with self._lock:
            if self.ended:
                return
            self.ended = True
        with _errors.guard("run_end"):
            if self._pipeline.closed:
                return
            failures = self.failure_counts()
            for attrs in self._repeated_failures():
                self.emit("exception_repeated", attrs)
            if self.run_started and not self._pipeline.joined_run:  # a fork: the parent's
                self.emit(
                    "run_end",
                    {
                        "optel.run.duration_s": round(time.monotonic() - self.started, 1),
                        "optel.run.outcome": "crash" if self.crashed else "ok",
                        "optel.failures": sum(failures.values()),
                        "optel.failures.distinct": len(failures),
                        "optel.rate_limited": self.limiter.dropped,
                    },
                )
            dropped = self.limiter.take_dropped()
            if dropped:
                self._pipeline.count_drop(STAT_PREFIX + self.app, dropped)
