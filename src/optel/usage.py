"""Usage facts: tracked commands, runs, and a coarse per-tool usage count.

``telemetry.track(name)`` works as a decorator and as a context manager::

    @telemetry.track("convert", params=["framework"])
    def convert(path, framework="onnx"): ...

    with telemetry.track("export", target="tflite"):
        ...

Each call records one event named ``name`` with its duration
(``optel.duration_ms``), ``optel.success``, the exception type on failure
(``optel.error.type``: not ``exception.type``, which would make destinations
treat the usage event as a failure report),
and the *declared* parameters only: the values of the arguments named in
``params`` plus the fixed attributes given to ``track``. Those keys count as
declared for the anonymizer; their values are still scrubbed. A failure is
also reported through ``telemetry.error`` (deduplicated within the run).
Durations also go to the histogram ``optel.command.duration`` (ms), which
is not rate limited, so performance figures stay exact when events are
capped.

A run is one process. The first ``track()`` records ``run_start`` (a tool
that only sends its own events gets no extra records): it carries the
anonymous system facts (:mod:`optel.system`) and
how many times this tool has run on this machine, as a bucket (``first``,
``<=10``, ``<=100``, ``<=1000``, ``>1000``), never the exact count;
``run_end`` carries the run's duration, outcome and failure and drop
counts. The count lives in ``usage.json`` in the config folder.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

from . import _errors, _fs

if TYPE_CHECKING:
    from .config import Paths
    from .telemetry import Telemetry

F = TypeVar("F", bound=Callable[..., Any])

BUCKETS = ((1, "first"), (10, "<=10"), (100, "<=100"), (1000, "<=1000"))
MAX_NAME = 40  # GA4 event names: at most 40 characters
# https://support.google.com/analytics/answer/13316687


def bucket(runs: int) -> str:
    """The coarse label of a run count: first, <=10, <=100, <=1000, >1000."""
    for limit, label in BUCKETS:
        if runs <= limit:
            return label
    return ">1000"


def count_run(p: Paths, app: str) -> int:
    """Add one run of ``app`` to the stored count; returns the new count.

    An unreadable file counts from zero again (the count is only a hint).
    """
    path = p.usage
    with _fs.file_lock(p.lock):
        try:
            data = _fs.read_json(path)
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("apps"), dict):
            data = {"schema": 1, "apps": {}}
        old = data["apps"].get(app)
        runs = (old if isinstance(old, int) and not isinstance(old, bool) and old > 0 else 0) + 1
        data["apps"][app] = runs
        _fs.write_json_atomic(path, data)
    return runs


# -- argument checks (the tool author's mistakes raise at once) -------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME or not name[0].isalpha():
        raise ValueError(
            f"track name must be 1-{MAX_NAME} characters starting with a letter, got {name!r}"
        )
    return name


def check_params(params: Any) -> tuple[str, ...]:
    if isinstance(params, str):
        raise ValueError("params must be a list of parameter names, not one string")
    out = tuple(params or ())
    for p in out:
        if not isinstance(p, str) or not p:
            raise ValueError(f"params must hold parameter names, got {p!r}")
    return out


Spec = tuple[tuple[str, int, Any], ...]  # (name, position or -1, default)


def param_spec(fn: Callable[..., Any], params: Sequence[str]) -> Spec:
    """Where each declared parameter sits in a call of ``fn``; ``ValueError`` if absent."""
    if not params:
        return ()
    import inspect  # only here: it costs import time

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the parameters of {fn!r} to track {list(params)}") from None
    names = list(sig.parameters)
    out = []
    for p in params:
        param = sig.parameters.get(p)
        if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ValueError(f"{getattr(fn, '__qualname__', fn)!r} has no parameter {p!r} to track")
        positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
        default = None if param.default is param.empty else param.default
        out.append((p, names.index(p) if positional else -1, default))
    return tuple(out)


def _values(spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, pos, default in spec:
        if 0 <= pos < len(args):
            out[name] = args[pos]
        else:
            out[name] = kwargs.get(name, default)
    return out


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


# -- trackers ---------------------------------------------------------------------


class NullTracker:
    """``track`` without consent: the decorator returns the function unchanged."""

    def __init__(
        self, name: str, params: Iterable[str] = (), attributes: dict[str, Any] | None = None
    ):
        self.name = check_name(name)
        self.params = check_params(params)
        self.attributes = dict(attributes or {})

    def __call__(self, fn: F) -> F:
        param_spec(fn, self.params)  # the same mistakes raise with or without consent
        return fn

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def set(self, **attributes: Any) -> None:
        """Add attributes to the call being tracked (context manager form)."""


class Tracker(NullTracker):
    """``track`` with consent: times each call and records one usage event.

    As a context manager one instance may be entered by one thread at a
    time; ``with telemetry.track(...)`` makes a new one each time anyway.
    """

    def __init__(
        self,
        telemetry: Telemetry,
        name: str,
        params: Iterable[str] = (),
        attributes: dict[str, Any] | None = None,
    ):
        super().__init__(name, params, attributes)
        self._t = telemetry
        self._starts: list[float] = []
        if self.params or self.attributes:
            telemetry._pipeline.anonymizer.declare([*self.params, *self.attributes])
        if not state(telemetry).run_started:
            with _errors.guard("run_start"):
                start_run(telemetry)

    def __call__(self, fn: F) -> F:
        import inspect

        spec = param_spec(fn, self.params)
        done = self._done
        clock = time.perf_counter

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = clock()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    done(t0, exc, spec, args, kwargs)
                    raise
                done(t0, None, spec, args, kwargs)
                return result

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                done(t0, exc, spec, args, kwargs)
                raise
            done(t0, None, spec, args, kwargs)
            return result

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> Tracker:
        self._starts.append(time.perf_counter())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._starts:
            self._done(self._starts.pop(), exc, (), (), {})

    def set(self, **attributes: Any) -> None:
        """Add attributes to the call being tracked (they count as declared)."""
        with _errors.guard("track.set"):
            self._t._pipeline.anonymizer.declare(attributes)
            self.attributes.update(attributes)

    def _done(
        self,
        t0: float,
        exc: BaseException | None,
        spec: Spec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        ms = (time.perf_counter() - t0) * 1000
        with _errors.guard("track"):
            t = self._t
            ok = exc is None
            state(t).duration.record(ms, {"optel.command": self.name, "optel.success": ok})
            if isinstance(exc, Exception):
                t.error(exc)
            if not t._limiter.allow():
                return
            attrs = dict(self.attributes)
            if spec:
                attrs.update(_values(spec, args, kwargs))
            attrs["optel.duration_ms"] = round(ms, 3)
            attrs["optel.success"] = ok
            if exc is not None:
                attrs["optel.error.type"] = _type_name(exc)
            t._emit(self.name, attrs)


# -- runs -------------------------------------------------------------------------


class RunState:
    """What one run of one tool keeps in memory."""

    def __init__(self, telemetry: Telemetry):
        self.started = time.monotonic()
        self.run_started = False
        self.ended = False
        self.crashed = False
        self.lock = threading.Lock()
        self._duration: Any = None
        self._t = telemetry

    @property
    def duration(self) -> Any:
        if self._duration is None:
            with self.lock:  # one instrument per tool (the SDK warns on duplicates)
                if self._duration is None:
                    self._duration = self._t.meter.create_histogram(
                        "optel.command.duration",
                        unit="ms",
                        description="duration of tracked commands",
                    )
        return self._duration


def state(telemetry: Telemetry) -> RunState:
    st = telemetry.__dict__.get("_run_state")
    if st is None:
        st = telemetry.__dict__.setdefault("_run_state", RunState(telemetry))
    return st  # type: ignore[no-any-return]


def start_run(telemetry: Telemetry) -> None:
    """Once per run: count it and record ``run_start`` with the system facts.

    Called by the first ``track()``: a tool that tracks its commands gets
    runs too; a tool that only sends its own events gets nothing extra.
    """
    from . import system

    st = state(telemetry)
    with st.lock:
        if st.run_started:
            return
        st.run_started = True
    runs = count_run(telemetry._pipeline.cfg.paths, telemetry.app)
    attrs = system.facts(telemetry.version)
    attrs["optel.runs"] = bucket(runs)
    telemetry._emit("run_start", attrs)


def end_run(telemetry: Telemetry) -> None:
    """At the end of the run, once: repeated failures, ``run_end`` (when the run
    started) and the rate-limit drops into the spool's stats."""
    from . import crash, ratelimit

    st = state(telemetry)
    with st.lock:
        if st.ended:
            return
        st.ended = True
    with _errors.guard("run_end"):
        if telemetry._pipeline._closed:
            return
        failures = crash.failure_counts(telemetry)
        for rec in crash.repeated_failures(telemetry):
            telemetry._emit("exception_repeated", rec)
        if st.run_started:
            telemetry._emit(
                "run_end",
                {
                    "optel.run.duration_s": round(time.monotonic() - st.started, 1),
                    "optel.run.outcome": "crash" if st.crashed else "ok",
                    "optel.failures": sum(failures.values()),
                    "optel.failures.distinct": len(failures),
                    "optel.rate_limited": telemetry._limiter.dropped,
                },
            )
        dropped = telemetry._limiter.take_dropped()
        if dropped:
            telemetry._pipeline.spool().count_drop(ratelimit.STAT_PREFIX + telemetry.app, dropped)
