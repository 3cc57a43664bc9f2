"""The object a tool holds: :class:`Telemetry`, or :class:`NullTelemetry`.

Without consent the tool gets a :class:`NullTelemetry`: a real class with
the same surface whose tracer and meter are the OpenTelemetry API's no-op
objects; it imports no SDK, starts no thread and writes no file.

With consent, :func:`start` builds one :class:`Telemetry` per app and
process: it owns its pipeline (SDK wiring, spool, destinations) and its
run (:class:`optel.run.Run`: run clock, caps, failure memory); nothing
else writes their fields. ``optel.init`` and ``telemetry.ask()`` both come
here, with the same :class:`Setup`.
"""

from __future__ import annotations

import _thread

from . import _errors

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable, Iterable

    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

    from .config import Config
    from .consent import Decision
    from .kinds import Declarations
    from .pipeline import Pipeline
    from .run import Run
    from .usage import NullTracker

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


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


class Setup:
    """What the tool asked for in ``init()``, validated: kept so that
    ``telemetry.ask()`` can start the same telemetry after a "yes"."""

    __slots__ = (
        "app",
        "version",
        "policy",
        "declarations",
        "overrides",
        "capture_crashes",
        "log_level",
        "caps",
        "notice_version",
        "notice_text",
        "notice_url",
    )

    def __init__(
        self,
        app: str,
        version: str | None,
        policy: str,
        declarations: Declarations,
        overrides: dict[str, Any],
        capture_crashes: Any = False,
        capture_logs: Any = False,
        max_events_per_minute: Any = None,
        max_events_per_run: Any = None,
        notice_version: int = 1,
        notice_text: str | None = None,
        notice_url: str | None = None,
    ):
        """Raises ``ValueError`` for the crash, logging and rate-limit arguments."""
        self.app, self.version, self.policy = app, version, policy
        self.declarations = declarations
        self.overrides = overrides
        self.notice_version = notice_version
        self.notice_text = notice_text
        self.notice_url = notice_url
        if not isinstance(capture_crashes, bool):
            raise ValueError(f"capture_crashes must be True or False, got {capture_crashes!r}")
        self.capture_crashes = capture_crashes
        level: int | None
        if capture_logs is False or capture_logs is None:
            level = None
        elif capture_logs is True:
            level = _LEVELS["WARNING"]
        elif isinstance(capture_logs, int) and 0 < capture_logs <= 50:
            level = capture_logs
        elif isinstance(capture_logs, str) and capture_logs.strip().upper() in _LEVELS:
            level = _LEVELS[capture_logs.strip().upper()]
        else:
            raise ValueError(
                "capture_logs must be True, False or a logging level (e.g. 'WARNING', 40),"
                f" got {capture_logs!r}"
            )
        self.log_level = level
        self.caps: tuple[int, int] | None = None
        if max_events_per_minute is not None or max_events_per_run is not None:
            from .ratelimit import check_caps

            self.caps = check_caps(max_events_per_minute, max_events_per_run)


describing = False
"""True while ``optel describe`` imports a tool to read its declarations:
``init()`` then decides, asks, writes and records nothing (:func:`described`)."""

tools: dict[str, NullTelemetry] = {}
"""The telemetry ``init()`` last returned for each app in this process, enabled
or not: what ``mytool telemetry describe`` and ``optel describe`` read."""


def described(setup: Setup) -> NullTelemetry:
    """What ``init()`` returns while :data:`describing`: a null telemetry kept
    for the page, with no decision made."""
    from .consent import UNSET, Decision

    decision = Decision(setup.app, UNSET, False, "off: read by optel describe, never run")
    return _keep(NullTelemetry(setup, decision))


def _keep(t: NullTelemetry) -> NullTelemetry:
    if len(tools) < 64 or t.app in tools:  # one per app; a process has few
        tools[t.app] = t
    return t


class NullTelemetry:
    """Consent is off: every call is accepted and nothing is recorded."""

    enabled = False
    recording = False
    preview = False

    def __init__(self, setup: Setup, decision: Decision):
        self.app = setup.app
        self.version = setup.version
        self.decision = decision
        self._setup = setup

    @property
    def reason(self) -> str:
        return self.decision.reason

    @property
    def declarations(self) -> Declarations:
        """The keys this tool declared, each with its kind (:class:`optel.Declarations`):
        what can leave, readable with or without consent."""
        return self._setup.declarations

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

        tracker = NullTracker(name, params, attributes)
        self._declare_command(tracker)
        return tracker

    def _declare_command(self, tracker: NullTracker) -> None:
        """A tracked command names itself and its parameters: declared, for the
        page (with or without consent, so both describe the same tool). Never raises."""
        self.declarations.declare_name("command", tracker.name)
        if tracker.params or tracker.attributes:
            self.declarations.add([*tracker.params, *tracker.attributes])

    def describe(self) -> str:
        """This tool's "what we collect" page, in Markdown (see :func:`optel.describe`):
        its declarations, the ``track()`` commands and the names used so far."""
        from .page import render

        return render(self._setup, self.declarations)

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
        if describing:
            return self  # `optel describe` reads the tool: it asks nobody
        with _errors.guard("ask"):
            from . import config, consent

            setup = self._setup
            cfg = config.resolve(setup.overrides)
            d = consent.decide(self.app, setup.policy, p=cfg.paths)
            if not consent.should_ask(d, setup.notice_version):
                return self
            answer = consent.ask(
                self.app, cfg.paths, setup.notice_version, setup.policy,
                timeout_s,  # None: the prompt_timeout_s setting
                free_text=self.declarations.free_text,
            )  # fmt: skip
            if answer is None:
                return self
            self._consent_changed()
            result = start(setup, cfg, consent.decide(self.app, setup.policy, p=cfg.paths))
        return result

    def _consent_changed(self) -> None:
        """The user answered: nothing runs without consent, so nothing to stop."""

    def shutdown(self) -> None:
        """Deliver within the exit budget (nothing to do without consent)."""

    def __repr__(self) -> str:
        return f"<optel telemetry {self.app!r} off: {self.reason}>"


class Telemetry(NullTelemetry):
    """Consent is on: spans, metrics, events and errors go through optel."""

    def __init__(self, setup: Setup, decision: Decision, pipeline: Pipeline):
        super().__init__(setup, decision)
        self._pipeline = pipeline
        from .ratelimit import RateLimiter
        from .run import Run

        limiter = RateLimiter(*setup.caps) if setup.caps is not None else RateLimiter()
        self.run: Run = Run(self.app, self.version, pipeline, self.meter, limiter)
        """This run's state: counts, failures, caps (read-only for the tool)."""
        import atexit

        # registered after the pipeline's own exit hook, so it runs first (LIFO)
        atexit.register(self.run.end_at_exit)

    def configure(self, setup: Setup) -> None:
        """Apply a (later) ``init()`` of the same app: declared keys, crash
        capture and log capture are added; caps stay those of the first."""
        self._pipeline.anonymizer.declare(setup.declarations)
        if setup.capture_crashes:
            from . import crash

            crash.install(self.run.crash)
        if setup.log_level is not None and self.run.log_capture is None:
            from . import logbridge

            handler = self.log_handler(setup.log_level)
            self.run.log_capture = handler
            logbridge.capture(handler)  # the host's own logging set-up stays as it was

    @property
    def enabled(self) -> bool:  # type: ignore[override]
        """May anything leave this machine now (never in a preview)."""
        return self.recording and not self._pipeline.preview

    @property
    def recording(self) -> bool:  # type: ignore[override]
        """Records go through this telemetry now (to be sent, or shown by a preview)."""
        return self._pipeline.enabled and not self._pipeline.closed

    @property
    def preview(self) -> bool:  # type: ignore[override]
        """``OPTEL_DEBUG``: records are printed, not sent or kept (see :func:`start`)."""
        return self._pipeline.preview

    @property
    def declarations(self) -> Declarations:
        """The keys this tool declared so far (``init`` and ``event()``), with their kinds."""
        return self._pipeline.anonymizer.declarations

    @cached_property
    def tracer(self) -> Tracer:
        return self._pipeline.tracer_provider.get_tracer("optel." + self.app, self.version)

    @cached_property
    def meter(self) -> Meter:
        return self._pipeline.meter_provider.get_meter("optel." + self.app, self.version)

    def event(self, name: str, **attributes: Any) -> None:
        with _errors.guard("event"):
            self.run.event(str(name), attributes)

    def error(self, exc: BaseException) -> None:
        with _errors.guard("error"):
            # built now, while the traceback exists; it reads no locals.
            # A repeat of a failure already reported in this run is only counted.
            self.run.error(exc)

    def log_handler(self, level: int = 30) -> logging.Handler:
        """A ``logging.Handler`` sending records at ``level`` and above through optel."""
        from .logbridge import Handler

        return Handler(self.run.offer_limited, self._pipeline.resource_attributes, level)

    def track(self, name: str, params: Iterable[str] = (), **attributes: Any) -> NullTracker:
        """Decorator and context manager: one usage event per call with its duration,
        success or failure and the declared ``params`` (see :mod:`optel.usage`)."""
        from .usage import Tracker

        tracker = Tracker(self.run, name, params, attributes)  # declares its keys to the run
        self.declarations.declare_name("command", tracker.name)
        return tracker

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Write what was recorded to the spool and send until ``timeout_s``."""
        return self._pipeline.flush(timeout_s)

    def _consent_changed(self) -> None:
        self._pipeline.recheck_consent()  # a "no" stops this run's sending now

    def describe(self) -> str:
        with _errors.guard("describe"):  # the names used so far, through the anonymizer
            self._pipeline.collect_metrics()
            self._pipeline.drain()
        return super().describe()

    def ask(self, timeout_s: float | None = None) -> NullTelemetry:
        if self.preview:
            return self  # a preview asks nothing and records no answer
        return super().ask(timeout_s)

    def shutdown(self) -> None:
        """Spool everything, deliver within the exit budget; also runs at exit."""
        with _errors.guard("shutdown"):
            self.run.end()  # run_end, repeated failures, rate-limit drops
            self._pipeline.shutdown()  # a host's own provider is the host's to shut down

    def __repr__(self) -> str:
        state = "preview (OPTEL_DEBUG): printed, not sent" if self.preview else "on"
        return f"<optel telemetry {self.app!r} {state}>"


def prepare(
    app: Any,
    version: Any = None,
    policy: Any = "opt-in",
    allowed_attributes: Any = (),
    attributes: Any = None,
    free_text: Any = False,
    ga4_measurement_id: Any = None,
    ga4_api_secret: Any = None,
    otlp_endpoint: Any = None,
    destinations: Any = None,
    exit_budget_ms: Any = None,
    capture_crashes: Any = False,
    capture_logs: Any = False,
    max_events_per_minute: Any = None,
    max_events_per_run: Any = None,
    prompt: Any = False,
    notice_version: Any = 1,
    telemetry_command: Any = None,
    notice_text: Any = None,
    notice_url: Any = None,
    events: Any = None,
    spans: Any = None,
    metrics: Any = None,
    **unknown: Any,
) -> tuple[Setup, Config]:
    """``init()``'s arguments checked (``ValueError`` naming the one at fault) and
    kept as a :class:`~optel.telemetry.Setup`, with the configuration they give."""
    if unknown:
        raise TypeError(f"unexpected argument {next(iter(unknown))!r} (see optel.init)")
    from .consent.rule import check_app  # the one rule, shared with `optel ... --app`
    from .kinds import Declarations

    check_app(app)
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValueError(f"version must be a non-empty string or None, got {version!r}")
    if policy not in ("opt-in", "opt-out"):
        raise ValueError(f"policy must be 'opt-in' or 'opt-out', got {policy!r}")
    declarations = Declarations(
        attributes, allowed_attributes, free_text, events=events, spans=spans, metrics=metrics
    )
    if not isinstance(prompt, bool):
        raise ValueError(f"prompt must be True or False, got {prompt!r}")
    if (
        isinstance(notice_version, bool)
        or not isinstance(notice_version, int)
        or notice_version < 1
    ):
        raise ValueError(f"notice_version must be a whole number >= 1, got {notice_version!r}")
    if telemetry_command is not None and not isinstance(telemetry_command, str):
        raise ValueError(f"telemetry_command: expected a string, got {telemetry_command!r}")
    from . import commands, config, consent

    if telemetry_command and telemetry_command.strip():
        commands.register(app, telemetry_command)
    if notice_text is not None or notice_url is not None:  # the notice module loads only then
        notice_text = consent.check_text(notice_text)
        notice_url = consent.check_url(notice_url)
    overrides = {
        "ga4_measurement_id": ga4_measurement_id,
        "ga4_api_secret": ga4_api_secret,
        "otlp_endpoint": otlp_endpoint,
        "destinations": destinations,
        "exit_budget_ms": exit_budget_ms,
    }
    setup = Setup(
        app, version, policy, declarations, overrides,
        capture_crashes, capture_logs, max_events_per_minute, max_events_per_run,
        notice_version, notice_text, notice_url,
    )  # fmt: skip
    cfg = config.resolve(overrides)  # may raise ValueError: the author's mistake
    return setup, cfg


_lock = _thread.allocate_lock()
active: dict[str, Telemetry] = {}
"""The enabled telemetry of each app in this process (one pipeline per app)."""


def start(setup: Setup, cfg: Config, decision: Decision) -> NullTelemetry:
    """The telemetry for ``setup`` under ``decision``: a null one when sending is
    off; otherwise the app's one :class:`Telemetry` (created now, or the
    existing one with ``setup`` applied). Never raises (internal errors give
    a null telemetry).

    With ``OPTEL_DEBUG`` (``cfg["debug"]``) it is a *preview* whatever the
    decision: a :class:`Telemetry` that records, prints each record to stderr
    as it would be sent, and sends, keeps and writes nothing
    (``telemetry.enabled`` is false: nothing may leave).
    """
    if not decision.enabled and not cfg["debug"]:
        return _keep(NullTelemetry(setup, decision))
    with _lock:
        existing = active.get(setup.app)
        if existing is not None and existing.recording:
            with _errors.guard("init-configure"):
                existing.configure(setup)
            return _keep(existing)
        import sys

        from . import sdkenv

        unloadable = None if "opentelemetry.sdk.trace" in sys.modules else sdkenv.sdk_unloadable()
        if unloadable is not None:  # (the decision says so too; a preview gets here regardless)
            from .consent import Decision

            off = Decision(setup.app, decision.consent, False, f"off: {unloadable}")
            return _keep(NullTelemetry(setup, off))
        result: NullTelemetry = NullTelemetry(setup, decision)
        with _errors.guard("init"):
            from .anonymize import Anonymizer
            from .pipeline import Pipeline

            pipeline = Pipeline(
                cfg, setup.app, setup.version, setup.policy, Anonymizer(setup.declarations)
            )
            result = active[setup.app] = Telemetry(setup, decision, pipeline)
        if isinstance(result, Telemetry):
            with _errors.guard("init-configure"):
                result.configure(setup)  # crash hook, log capture
        return _keep(result)


_announced: set[str] = set()


def announce_preview(app: str, decision: Decision) -> None:
    """One line on stderr, once per app and process: this run is an OPTEL_DEBUG preview."""
    if app in _announced:
        return
    _announced.add(app)
    with _errors.guard("preview"):
        import sys

        now = decision.reason.partition(": ")[2] or decision.reason
        sys.stderr.write(
            f"optel debug: a preview of what {app} would send (OPTEL_DEBUG): each record is"
            f" printed below as 'optel debug [destination] ...'; nothing is sent or written."
            f" Without OPTEL_DEBUG it would {'' if decision.enabled else 'not '}be sent: {now}\n"
        )


def any_enabled() -> bool:
    """Is telemetry on (or previewed, ``OPTEL_DEBUG``) for any app in this process?"""
    return any(t.recording for t in active.values())
