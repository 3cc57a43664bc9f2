"""The consent rule: may anything leave this machine for ``app`` now?

:func:`decide` answers in the order written in :mod:`optel.consent`; it
reads the record (:mod:`.store`) and the environment, and writes nothing.
:func:`disposition` says what a decision means for records already waiting,
:func:`notice_due` whether the opt-out notice must be shown first.
"""

from __future__ import annotations

import os

from .. import _errors, _fs, commands, env, sdkenv
from ..config import TRUE_WORDS, Paths, paths
from .store import DENIED, GRANTED, ConsentFileError, UntrustedState, app_key, cached_records

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Mapping

POLICIES = ("opt-in", "opt-out")
UNSET = "unset"
SEND, HOLD, PURGE = "send", "hold", "purge"

_FIELDS = (
    "app",
    "consent",
    "enabled",
    "reason",
    "scope",
    "source",
    "notice_version",
    "time",
    "problem",
)


class Decision:
    """Whether sending is on for one app, and the one reason why (immutable).

    - ``consent``: ``granted``, ``denied`` or ``unset``;
    - ``scope``: ``app``, ``global``, or ``""`` when no decision applies;
    - ``source``: where the applying record came from (cli, prompt, api, notice);
    - ``notice_version``: the notice version recorded with it (or the notice shown);
    - ``time``: when the applying record was written (unix seconds);
    - ``problem``: why the consent record cannot be used (``""`` when it can);
      ``broken`` is ``bool(problem)``.
    """

    __slots__ = _FIELDS
    app: str
    consent: str
    enabled: bool
    reason: str
    scope: str
    source: str
    notice_version: int | None
    time: int | None
    problem: str

    def __init__(
        self,
        app: str,
        consent: str,
        enabled: bool,
        reason: str,
        scope: str = "",
        source: str = "",
        notice_version: int | None = None,
        time: int | None = None,
        problem: str = "",
    ):
        values = (app, consent, enabled, reason, scope, source, notice_version, time, problem)
        for name, value in zip(_FIELDS, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Decision is immutable")

    @property
    def broken(self) -> bool:
        """The consent record could not be read or parsed (sending is off)."""
        return bool(self.problem)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Decision(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _FIELDS) + ")"


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_WORDS


def kill_switch(environ: Mapping[str, str]) -> str | None:
    """The reason sending is switched off by the environment, or ``None``."""
    for name in (env.OPTEL_DISABLED, env.DO_NOT_TRACK):
        if _true(environ.get(name)):
            return f"{name} is set"
    if sdkenv.sdk_disabled(environ):
        return "OTEL_SDK_DISABLED is true"
    unloadable = sdkenv.sdk_unloadable(environ)
    if unloadable is not None:
        return unloadable
    if not _true(environ.get(env.OPTEL_ALLOW_CI)):
        ci = env.ci_variable(environ)
        if ci:
            return f"a CI run ({ci} is set; OPTEL_ALLOW_CI=1 allows it)"
    return None


_APP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def app_problem(app: object) -> str | None:
    """Why ``app`` is not a tool name, or ``None``: the one rule for ``init(app=)``
    and ``optel ... --app``. Names compare case-insensitively."""
    if (
        not isinstance(app, str)
        or not 1 <= len(app) <= 64
        or not app[0].isalnum()
        or not set(app) <= _APP_CHARS
    ):
        return (
            "app must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit,"
            f" got {app!r}"
        )
    return None


def check_app(app: object) -> str:
    """``app`` when it is a tool name (:func:`app_problem`); ``ValueError`` otherwise."""
    problem = app_problem(app)
    if problem:
        raise ValueError(problem)
    return app  # type: ignore[return-value]


def _cmd(action: str, app: str) -> str:
    # the tool's own command when it offers optel's under its name (optel.commands)
    return commands.command(action, app or None, every_tool=not app)


def _applying(records: dict[str, Any], app: str) -> tuple[str, dict[str, Any] | None]:
    """The decision that applies to ``app``: its own, else the global one.

    A per-tool grant older than a global refusal does not apply (the refusal
    said "every tool"; :func:`.store.record` removes such grants, this also
    covers a record written by an older optel).
    """
    own = records["apps"].get(app_key(app)) if app else None
    every = records["global"]
    if own and not (
        own["decision"] == GRANTED
        and every
        and every["decision"] == DENIED
        and (every.get("time") or 0) > (own.get("time") or 0)
    ):
        return "app", own
    if every:
        return "global", every
    return "", None


def decide(
    app: str,
    policy: str = "opt-in",
    environ: Mapping[str, str] | None = None,
    p: Paths | None = None,
    notice_version: int = 1,
) -> Decision:
    """Decide for ``app`` under ``policy``. Never raises for state on disk.

    Under the ``opt-out`` policy with no decision, sending is on only once the
    tool's notice (``notice_version`` or newer) reached a person.
    """
    environ = os.environ if environ is None else environ
    switch = kill_switch(environ)
    p = p or paths(environ)
    try:
        records = cached_records(p)
    except ConsentFileError as exc:
        if switch:
            return Decision(app, UNSET, False, f"off: {switch}", problem=str(exc))
        if isinstance(exc, UntrustedState):
            _fs.warn_untrusted(str(exc).removeprefix("not using "))
            return Decision(
                app, UNSET, False, f"off: {exc}; set OPTEL_HOME to a folder only you can write",
                problem=str(exc),
            )  # fmt: skip
        fix = f"run '{_cmd('opt-in', app)}' or '{_cmd('opt-out', app)}' to record a new decision"
        _errors.warn_once(
            "consent-file",
            f"telemetry is off: {exc}; {fix} (the broken file is kept aside)",
        )
        return Decision(
            app,
            UNSET,
            False,
            f"off: the consent record {exc}; {fix} (the broken file is kept aside)",
            problem=str(exc),
        )
    scope, entry = _applying(records, app)
    consent = entry["decision"] if entry else UNSET
    extra: dict[str, Any] = {}
    seen = records["notices"].get(app_key(app)) if app else None
    if entry:
        extra = {"source": entry["source"], "notice_version": entry["notice_version"],
                 "time": entry["time"]}  # fmt: skip
    elif seen:
        extra = {"source": "notice", "notice_version": seen["notice_version"], "time": seen["time"]}
    if switch:
        return Decision(app, consent, False, f"off: {switch}", scope, **extra)
    where = f"for {app}" if scope == "app" else "for every optel tool"
    if consent == GRANTED:
        return Decision(app, consent, True, f"on: consent granted {where}", scope, **extra)
    if consent == DENIED:
        return Decision(app, consent, False, f"off: consent denied {where}", scope, **extra)
    if policy == "opt-out":
        if seen and seen["notice_version"] >= notice_version:
            return Decision(
                app, consent, True, "on: opt-out policy, no decision recorded, notice shown"
                f" ('{_cmd('opt-out', app)}' turns it off)", **extra,
            )  # fmt: skip
        return Decision(
            app, consent, False, "off: opt-out policy, but its notice has not reached a person"
            " yet (it is shown on a terminal or in a notebook, then sending starts;"
            f" '{_cmd('opt-in', app)}' or '{_cmd('opt-out', app)}' decides now)", **extra,
        )  # fmt: skip
    return Decision(
        app, consent, False, f"off: no decision recorded (run '{_cmd('opt-in', app)}')", **extra
    )


def disposition(d: Decision) -> str:
    """What ``d`` means for records recorded under it, wherever they wait:
    ``send`` them, ``purge`` them (consent denied: keep nothing), or ``hold``
    them (a kill switch, or no decision yet: they may go later). The one place
    the rule "denied means purge, otherwise hold" is written."""
    if d.enabled:
        return SEND
    return PURGE if d.consent == DENIED else HOLD


def notice_due(d: Decision, policy: str, notice_version: int = 1) -> bool:
    """Must the opt-out notice reach a person before anything is sent under ``d``?

    Only under the ``opt-out`` policy with no decision and nothing in the way
    (a kill switch or an unusable record: showing it could not turn sending on).
    """
    return (
        policy == "opt-out"
        and d.consent == UNSET
        and not d.broken
        and kill_switch(os.environ) is None
        and (d.source != "notice" or (d.notice_version or 0) < notice_version)
    )


def notice_unrecorded(d: Decision, p: Paths) -> Decision:
    """``d`` when its due notice could not be recorded: off (fail closed), since
    a notice that cannot be remembered would be shown on every run."""
    return Decision(
        d.app,
        d.consent,
        False,
        f"off: cannot write {p.consent} (set OPTEL_HOME to a writable folder)",
    )


def notice_unseen(d: Decision, why: str) -> Decision:
    """``d`` when its due notice could not reach a person (``why``): off until it does."""
    return Decision(
        d.app,
        d.consent,
        False,
        f"off: opt-out policy, but its notice could not reach a person ({why}); nothing is"
        " sent until it is shown on a terminal or in a notebook"
        f" ('{_cmd('opt-in', d.app)}' or '{_cmd('opt-out', d.app)}' decides now)",
        source=d.source,
        notice_version=d.notice_version,
        time=d.time,
    )
