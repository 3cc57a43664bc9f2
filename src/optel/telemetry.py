"""The object a tool holds: :class:`Telemetry`, or :class:`NullTelemetry`.

Without consent the tool gets a :class:`NullTelemetry`: a real class with
the same surface whose tracer and meter are the OpenTelemetry API's no-op
objects; it imports no SDK, starts no thread and writes no file.
"""

from __future__ import annotations

from . import _errors

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable, Iterable

    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

    from .consent import Decision
    from .pipeline import Pipeline
    from .usage import NullTracker


class cached_property:  # noqa: N801 - reads like functools.cached_property, minus its import
    """Computed on first access, then a plain attribute of the instance."""

    def __init__(self, func: Callable[[Any], Any]):
        self.func = func
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class NullTelemetry:
    """Consent is off: every call is accepted and nothing is recorded."""

    enabled = False
    _init_args: dict[str, Any] | None = None  # what init() was called with (for ask())

    def __init__(self, app: str, version: str | None, decision: Decision):
        self.app = app
        self.version = version
        self.decision = decision

    @property
    def reason(self) -> str:
        return self.decision.reason

    # cached_property: after the first call the object sits in the instance
    # dict, so ``telemetry.tracer`` costs a plain attribute lookup
    @cached_property
    def tracer(self) -> Tracer:
        from opentelemetry.trace import NoOpTracer  # first use only: keeps init cheap

        return NoOpTracer()

    @cached_property
    def meter(self) -> Meter:
        from opentelemetry.metrics import NoOpMeter

        return NoOpMeter(self.app, self.version)

    def event(self, name: str, **attributes: Any) -> None:
        """Record a named usage event (nothing happens without consent)."""

    def error(self, exc: BaseException) -> None:
        """Record a scrubbed failure report (nothing happens without consent)."""

    def log_handler(self, level: int = 30) -> logging.Handler:
        """A ``logging.Handler`` for warnings and errors (a no-op one when off)."""
        import logging

        return logging.NullHandler(level)

    def track(self, name: str, params: Iterable[str] = (), **attributes: Any) -> NullTracker:
        """Decorator and context manager recording duration, outcome and declared
        parameters of a command (see :mod:`optel.usage`); unchanged calls when off."""
        from .usage import NullTracker

        return NullTracker(name, params, attributes)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def ask(self, timeout_s: float | None = None) -> NullTelemetry:
        """Ask the user for consent now, on an interactive terminal only (never in
        CI, notebooks or child processes; ``timeout_s``, default 10 s; no answer
        records nothing). Asks only when no decision is recorded (or the tool's
        notice is newer than the one answered). Returns the telemetry to use from
        now on: after a "yes" an enabled one, in this very run.
        """
        result: NullTelemetry = self
        with _errors.guard("ask"):
            import optel

            from . import config, consent, prompt

            args = dict(self._init_args or {"app": self.app, "version": self.version})
            policy, notice_version = args.get("policy", "opt-in"), args.get("notice_version", 1)
            p = config.paths()
            d = consent.decide(self.app, policy, p=p)
            if not prompt.should_ask(d, notice_version):
                return self
            answer = prompt.ask(
                self.app, p, notice_version, policy,
                timeout_s,  # None: OPTEL_PROMPT_TIMEOUT_S or the default
            )  # fmt: skip
            if answer is None:
                return self
            pipeline = getattr(self, "_pipeline", None)
            if pipeline is not None:
                pipeline._recheck_consent()  # a "no" stops this run's sending now
            args["prompt"] = False
            result = optel.init(**args)
        return result

    def shutdown(self) -> None:
        """Deliver within the exit budget (nothing to do without consent)."""

    def __repr__(self) -> str:
        return f"<optel telemetry {self.app!r} off: {self.reason}>"


class Telemetry(NullTelemetry):
    """Consent is on: spans, metrics, events and errors go through optel."""

    def __init__(self, app: str, version: str | None, decision: Decision, pipeline: Pipeline):
        super().__init__(app, version, decision)
        self._pipeline = pipeline
        from .ratelimit import RateLimiter

        self._limiter = RateLimiter()  # init() sets the tool's caps

    @property
    def enabled(self) -> bool:  # type: ignore[override]
        return self._pipeline.enabled and not self._pipeline._closed

    @cached_property
    def tracer(self) -> Tracer:
        return self._pipeline.tracer_provider.get_tracer("optel." + self.app, self.version)

    @cached_property
    def meter(self) -> Meter:
        return self._pipeline.meter_provider.get_meter("optel." + self.app, self.version)

    def event(self, name: str, **attributes: Any) -> None:
        with _errors.guard("event"):
            if not self._limiter.allow():
                return  # over the tool's cap: counted, shown by 'optel status'
            self._pipeline.anonymizer.declare(attributes)  # keys passed here count as declared
            self._emit(str(name), attributes)

    def _emit(self, name: str, attributes: dict[str, Any], **fields: Any) -> None:
        """Queue one event record (no rate limit, no key declaration)."""
        from . import records

        rec = records.event(name, attributes, self._pipeline._resource_attrs)
        rec.update(fields)
        self._pipeline.offer_record(rec)

    def _offer_limited(self, rec: dict[str, Any]) -> None:
        if self._limiter.allow():
            self._pipeline.offer_record(rec)

    def error(self, exc: BaseException) -> None:
        with _errors.guard("error"):
            from . import crash

            # built now, while the traceback exists; it reads no locals.
            # A repeat of a failure already reported in this run is only counted.
            noted = crash.note(self, exc)
            if noted is not None and self._limiter.allow():
                self._emit("exception", noted[0], report=noted[1])

    def log_handler(self, level: int = 30) -> logging.Handler:
        """A ``logging.Handler`` sending records at ``level`` and above through optel."""
        from .logbridge import Handler

        return Handler(self._offer_limited, self._pipeline._resource_attrs, level)

    def track(self, name: str, params: Iterable[str] = (), **attributes: Any) -> NullTracker:
        """Decorator and context manager: one usage event per call with its duration,
        success or failure and the declared ``params`` (see :mod:`optel.usage`)."""
        from .usage import Tracker

        return Tracker(self, name, params, attributes)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Write what was recorded to the spool and send until ``timeout_s``."""
        return self._pipeline.flush(timeout_s)

    def shutdown(self) -> None:
        """Spool everything, deliver within the exit budget; also runs at exit."""
        with _errors.guard("shutdown"):
            from .usage import end_run

            end_run(self)  # run_end, repeated failures, rate-limit drops
            self._pipeline.shutdown()  # a host's own provider is the host's to shut down

    def __repr__(self) -> str:
        return f"<optel telemetry {self.app!r} on>"
