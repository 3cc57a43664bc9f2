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
A normal exit (``SystemExit(0)``, Click's or Typer's ``Exit`` with code 0)
is a success, not a failure.
Durations also go to the histogram ``optel.command.duration`` (ms), which
is not rate limited, so performance figures stay exact when events are
capped.

The tracker hands each call to the run (:class:`optel.run.Run`), which
owns the counting, the caps and the records. A run is one process. The
first tracked *call* records ``run_start`` (a tool that only sends its own
events gets no extra records, and neither does ``mytool --help`` or
``mytool telemetry status``, where decorated commands are defined but not
called): it carries the anonymous system facts
(:mod:`optel.system`) and how many times this tool has run on this
machine, as a bucket (``first``, ``<=10``, ``<=100``, ``<=1000``,
``>1000``), never the exact count; ``run_end`` carries the run's duration,
outcome and failure and drop counts. The count lives in ``usage.json``
(``Paths.usage``).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, TypeVar

from . import _errors, _fs

if TYPE_CHECKING:
    from .config import Paths


class RunLike(Protocol):
    """What a tracker needs of the run it reports to (:class:`optel.run.Run`)."""

    def declare(self, keys: Iterable[str]) -> None: ...

    def start(self) -> None: ...

    def command_done(
        self, name: str, ms: float, exc: BaseException | None, attributes: dict[str, Any]
    ) -> None: ...


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


def runs(p: Paths, app: str) -> int:
    """Runs of ``app`` counted so far (0 when none or unreadable); writes nothing."""
    try:
        data = _fs.read_json(p.usage)
    except (OSError, ValueError):
        return 0
    apps = data.get("apps") if isinstance(data, dict) else None
    old = apps.get(app) if isinstance(apps, dict) else None
    return old if isinstance(old, int) and not isinstance(old, bool) and old > 0 else 0


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


def type_name(exc: BaseException) -> str:
    """The exception's class as a tool author reads it (``module.Class``)."""
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


_EXIT_MODULES = ("click.exceptions", "typer.exceptions")


def normal_exit(exc: BaseException | None) -> bool:
    """``exc`` ends a command normally: ``SystemExit`` with status 0 (or none),
    or Click's and Typer's ``Exit`` with code 0 (``ctx.exit()``, ``--help``).
    Matched by name: optel imports neither."""
    if isinstance(exc, SystemExit):
        return exc.code in (0, None)
    return (
        exc is not None
        and getattr(exc, "exit_code", None) == 0
        and any(c.__name__ == "Exit" and c.__module__ in _EXIT_MODULES for c in type(exc).__mro__)
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
    """``track`` with consent: times each call and hands it to the run.

    As a context manager one instance may be entered by one thread at a
    time; ``with telemetry.track(...)`` makes a new one each time anyway.
    """

    def __init__(
        self,
        run: RunLike,
        name: str,
        params: Iterable[str] = (),
        attributes: dict[str, Any] | None = None,
    ):
        super().__init__(name, params, attributes)
        self._run = run
        self._started = False  # the run starts at the first call, not at decoration
        self._starts: list[float] = []
        if self.params or self.attributes:
            run.declare([*self.params, *self.attributes])

    def _begin(self) -> float:
        """A call begins: the first one starts the run (``run_start``); its clock."""
        if not self._started:
            self._started = True
            with _errors.guard("track.start"):
                self._run.start()
        return time.perf_counter()

    def __call__(self, fn: F) -> F:
        import inspect

        spec = param_spec(fn, self.params)
        done = self._done
        clock = self._begin

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
        self._starts.append(self._begin())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._starts:
            self._done(self._starts.pop(), exc, (), (), {})

    def set(self, **attributes: Any) -> None:
        """Add attributes to the call being tracked (they count as declared)."""
        with _errors.guard("track.set"):
            self._run.declare(attributes)
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
        if normal_exit(exc):
            exc = None  # a command that exits with status 0 succeeded
        with _errors.guard("track"):
            attrs = dict(self.attributes)
            if spec:
                attrs.update(_values(spec, args, kwargs))
            self._run.command_done(self.name, ms, exc, attrs)
