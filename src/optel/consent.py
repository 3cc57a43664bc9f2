"""The consent rule: may anything leave this machine for ``app`` now?

One function, :func:`decide`, answers, in this order (first match wins):

1. kill switches in the environment (``OPTEL_DISABLED``, ``DO_NOT_TRACK``:
   1/true/yes/on in any case; ``OTEL_SDK_DISABLED=true``) -> off;
2. a CI run (``CI`` or a well-known CI variable) without
   ``OPTEL_ALLOW_CI=1`` -> off;
3. a consent record that cannot be read or parsed -> off (fail closed, one
   warning per process);
4. the tool's own recorded decision, else the global one -> that decision;
5. no decision: policy ``opt-out`` -> on (after a one-time notice, see
   :func:`notice_due`), ``opt-in`` -> off.

The environment is read on every call; the parsed ``consent.json`` is cached
and parsed again only when its (mtime_ns, size, inode) changes, so the
re-check before each send is cheap and still sees ``optel opt-out`` from
another process.

The record, ``consent.json`` in the config folder (mode 0600, written
atomically under a cross-process lock)::

    {"schema": 2,
     "global": {"decision": "granted", "time": 1700000000, "source": "cli",
                "notice_version": null},
     "apps": {"mytool": {"decision": "denied", "time": ..., "source": "prompt",
                         "notice_version": 3}},
     "notices": {"othertool": {"notice_version": 1, "time": ..., "source": "notice"}}}

``source`` is one of ``cli``, ``prompt``, ``api``, ``notice``. Older or
unknown schemas (schema 1, bare ``"granted"``/``true`` values) are migrated
on read and keep the user's decisions; unknown keys are kept when writing.
A file that cannot be understood is moved aside (``consent.json.corrupt-*``)
on the next write, never silently overwritten.
"""

from __future__ import annotations

import os
import time

from . import _errors, _fs, env
from .config import TRUE_WORDS, Paths, paths

TYPE_CHECKING = False  # typing and dataclasses are not imported: they cost start-up
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

SCHEMA = 2
POLICIES = ("opt-in", "opt-out")
GRANTED, DENIED, UNSET = "granted", "denied", "unset"
SOURCES = ("cli", "prompt", "api", "notice")
# what older files (and hand edits) may hold instead of granted/denied
_LEGACY = {
    "granted": GRANTED, "grant": GRANTED, "yes": GRANTED, "true": GRANTED, "on": GRANTED,
    "opt-in": GRANTED, "optin": GRANTED, "allow": GRANTED, "allowed": GRANTED,
    "denied": DENIED, "deny": DENIED, "no": DENIED, "false": DENIED, "off": DENIED,
    "opt-out": DENIED, "optout": DENIED, "revoked": DENIED,
}  # fmt: skip


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
    if environ.get(env.OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED is true"
    if not _true(environ.get(env.OPTEL_ALLOW_CI)):
        ci = env.ci_variable(environ)
        if ci:
            return f"a CI run ({ci} is set; OPTEL_ALLOW_CI=1 allows it)"
    return None


class ConsentFileError(Exception):
    """The consent record exists but cannot be used."""


# -- reading and migrating -------------------------------------------------------


def _empty() -> dict[str, Any]:
    return {"schema": SCHEMA, "global": None, "apps": {}, "notices": {}}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entry(raw: Any, where: str) -> dict[str, Any] | None:
    """One decision in the current shape; ``None`` for no decision."""
    if raw is None:
        return None
    if isinstance(raw, bool):  # schema 0: "global": true
        raw = {"decision": GRANTED if raw else DENIED}
    elif isinstance(raw, str):  # schema 0: "global": "granted"
        raw = {"decision": raw}
    if not isinstance(raw, dict):
        raise ConsentFileError(f"{where} is not a decision")
    value = raw.get("decision", raw.get("consent"))
    if isinstance(value, bool):
        value = GRANTED if value else DENIED
    decision = _LEGACY.get(str(value).strip().lower()) if value is not None else None
    if decision is None:
        if value is None or str(value).strip().lower() in ("", "unset", "none"):
            return None
        raise ConsentFileError(f"{where} holds an unknown decision {value!r}")
    entry = dict(raw)  # keep keys a newer optel wrote
    entry.pop("consent", None)
    entry.update(
        decision=decision,
        time=_int_or_none(raw.get("time")),
        source=str(raw["source"]) if raw.get("source") in SOURCES else "cli",
        notice_version=_int_or_none(raw.get("notice_version")),
    )
    return entry


def migrate(data: Any, where: str = "consent.json") -> dict[str, Any]:
    """Any known shape of the record -> the current one, keeping the user's values.

    Raises :class:`ConsentFileError` for something that is not a consent record.
    """
    if data is None:
        return _empty()
    if not isinstance(data, dict):
        raise ConsentFileError(f"{where} is not a consent record")
    apps, notices = data.get("apps", {}), data.get("notices", {})
    if not isinstance(apps, dict) or not isinstance(notices, dict):
        raise ConsentFileError(f"{where} is not a consent record")
    out = dict(data)  # unknown keys are kept
    out["schema"] = SCHEMA
    out["global"] = _entry(data.get("global"), f"{where} (global)")
    out["apps"] = {}
    for app, raw in apps.items():
        entry = _entry(raw, f"{where} (app {app})")
        if entry is not None:
            out["apps"][str(app)] = entry
    out["notices"] = {}
    for app, raw in notices.items():
        version = _int_or_none(raw.get("notice_version")) if isinstance(raw, dict) else None
        if version is not None:
            out["notices"][str(app)] = {
                "notice_version": version,
                "time": _int_or_none(raw.get("time")),
                "source": "notice",
            }
    return out


def read_records(p: Paths) -> dict[str, Any]:
    """The consent document (migrated); raises :class:`ConsentFileError` when unusable."""
    try:
        data = _fs.read_json(p.consent)
    except (OSError, ValueError) as exc:
        raise ConsentFileError(f"{p.consent} cannot be read ({exc.__class__.__name__})") from exc
    return migrate(data, p.consent)


# Parsed records per file, keyed by the file's (mtime_ns, size, inode): a
# write (always a rename of a new file) changes the key.
_cache: dict[str, tuple[tuple[int, int, int] | None, Any]] = {}


def _cached_records(p: Paths) -> dict[str, Any]:
    path = p.consent
    try:
        st = os.stat(path)
        key: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
    except (FileNotFoundError, NotADirectoryError):
        key = None
    except OSError as exc:
        raise ConsentFileError(f"{path} cannot be read ({exc.__class__.__name__})") from exc
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        value = hit[1]
    else:
        try:
            value = _empty() if key is None else read_records(p)
        except ConsentFileError as exc:
            value = exc.args[0]  # the message: a cached exception would grow its traceback
        _cache[path] = (key, value)
    if isinstance(value, str):
        raise ConsentFileError(value)
    return value  # type: ignore[no-any-return]


# -- the decision ------------------------------------------------------------------


def decide(
    app: str,
    policy: str = "opt-in",
    environ: Mapping[str, str] | None = None,
    p: Paths | None = None,
) -> Decision:
    """Decide for ``app`` under ``policy``. Never raises for state on disk."""
    environ = os.environ if environ is None else environ
    switch = kill_switch(environ)
    p = p or paths(environ)
    try:
        records = _cached_records(p)
    except ConsentFileError as exc:
        if switch:
            return Decision(app, UNSET, False, f"off: {switch}", problem=str(exc))
        _errors.warn_once(
            "consent-file",
            f"telemetry is off: {exc}; run 'optel opt-in' or 'optel opt-out' to record"
            " a new decision (the broken file is kept aside)",
        )
        return Decision(
            app,
            UNSET,
            False,
            f"off: the consent record {exc}; run 'optel opt-in' or 'optel opt-out' to"
            " record a new decision (the broken file is kept aside)",
            problem=str(exc),
        )
    scope, entry = "", None
    if app and records["apps"].get(app):
        scope, entry = "app", records["apps"][app]
    elif records["global"]:
        scope, entry = "global", records["global"]
    consent = entry["decision"] if entry else UNSET
    extra: dict[str, Any] = {}
    if entry:
        extra = {"source": entry["source"], "notice_version": entry["notice_version"],
                 "time": entry["time"]}  # fmt: skip
    elif app in records["notices"]:
        seen = records["notices"][app]
        extra = {"source": "notice", "notice_version": seen["notice_version"], "time": seen["time"]}
    if switch:
        return Decision(app, consent, False, f"off: {switch}", scope, **extra)
    where = f"for {app}" if scope == "app" else "for every optel tool"
    if consent == GRANTED:
        return Decision(app, consent, True, f"on: consent granted {where}", scope, **extra)
    if consent == DENIED:
        return Decision(app, consent, False, f"off: consent denied {where}", scope, **extra)
    if policy == "opt-out":
        return Decision(
            app, consent, True, "on: opt-out policy and no decision recorded"
            " ('optel opt-out' turns it off)", **extra,
        )  # fmt: skip
    return Decision(app, consent, False, "off: no decision recorded (run 'optel opt-in')", **extra)


SEND, HOLD, PURGE = "send", "hold", "purge"


def disposition(d: Decision) -> str:
    """What ``d`` means for records recorded under it, wherever they wait:
    ``send`` them, ``purge`` them (consent denied: keep nothing), or ``hold``
    them (a kill switch, or no decision yet: they may go later). The one place
    the rule "denied means purge, otherwise hold" is written."""
    if d.enabled:
        return SEND
    return PURGE if d.consent == DENIED else HOLD


# -- writing -------------------------------------------------------------------------


def _update(p: Paths, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change(records)`` and write, atomically, under the lock.

    A record that cannot be understood is moved aside first, so nothing the
    user decided is silently lost.
    """
    with _fs.file_lock(p.lock):
        try:
            records = read_records(p)
        except ConsentFileError:
            aside = _fs.move_aside(p.consent)
            _errors.warn_once(
                "consent-aside", f"moved the unreadable consent record aside to {aside}"
            )
            records = _empty()
        change(records)
        records["schema"] = SCHEMA
        _fs.write_json_atomic(p.consent, records)
    _cache.pop(p.consent, None)


def take_effect(decision: str, app: str | None, p: Paths) -> int:
    """What a recorded decision means for the state on disk; returns the number
    of waiting records deleted.

    A grant creates the random client id (at the first grant). A refusal
    deletes what waits in the spool (for ``app``, or for every tool) and the
    client id, so a later grant starts with a new one. Used by ``optel
    opt-in/opt-out`` and the prompt alike.
    """
    from . import identity

    if decision == GRANTED:
        identity.client_id(p)
        return 0
    removed = 0
    if os.path.exists(p.spool):  # no spool yet: nothing waits, and none is created
        from .spool import Spool

        spool = Spool(p.spool)
        try:
            removed = spool.purge(app)
        finally:
            spool.close()
    identity.forget(p)
    return removed


def record(
    decision: str,
    app: str | None = None,
    source: str = "cli",
    p: Paths | None = None,
    notice_version: int | None = None,
) -> None:
    """Store ``decision`` (granted/denied) for ``app`` or, without one, globally.

    Raises ``OSError`` when the state folder cannot be written (the caller
    says so; the previous decision stays in force).
    """
    if decision not in (GRANTED, DENIED):
        raise ValueError(f"decision must be {GRANTED!r} or {DENIED!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    entry = {
        "decision": decision,
        "time": int(time.time()),
        "source": source,
        "notice_version": notice_version,
    }

    def change(records: dict[str, Any]) -> None:
        if app:
            records["apps"][app] = entry
        else:
            records["global"] = entry

    _update(p or paths(), change)


def notice_due(d: Decision, policy: str, notice_version: int = 1) -> bool:
    """Must the opt-out notice be shown before anything is sent under ``d``?"""
    return (
        policy == "opt-out"
        and d.enabled
        and d.consent == UNSET
        and (d.notice_version or 0) < notice_version
    )


def notice_text(app: str) -> str:
    """The one-time notice of an opt-out tool: what is collected, how to turn it off."""
    return (
        f"{app} sends anonymous usage telemetry (commands used, durations, errors with"
        " scrubbed stack traces, OS and Python versions; no file names, paths, user or host"
        " names) to help its authors improve it.\n"
        f"Turn it off with 'optel opt-out --app {app}' (or for every tool: 'optel opt-out',"
        " or set DO_NOT_TRACK=1); 'optel status' shows what is sent. This notice is shown once."
    )


def note_notice(app: str, notice_version: int, p: Paths | None = None) -> bool:
    """Record that ``app``'s notice ``notice_version`` was shown; ``False`` when
    another process recorded it (or a newer one) first, so it is not shown twice.
    Raises ``OSError`` when the record cannot be written."""
    noted = []

    def change(records: dict[str, Any]) -> None:
        seen = records["notices"].get(app)
        if seen and seen["notice_version"] >= notice_version:
            return
        records["notices"][app] = {
            "notice_version": notice_version,
            "time": int(time.time()),
            "source": "notice",
        }
        noted.append(True)

    _update(p or paths(), change)
    return bool(noted)


def show_notice(app: str, notice_version: int, p: Paths) -> bool:
    """Record, then print, the opt-out notice; ``False`` (stay off) when it cannot
    be recorded: a notice that cannot be remembered would be shown on every run,
    and state that cannot be written means off (fail closed)."""
    import sys

    try:
        new = note_notice(app, notice_version, p)
    except OSError as exc:
        _errors.warn_once(
            "consent-write",
            f"telemetry is off: cannot write {p.consent} ({exc.strerror or exc.__class__.__name__});"
            " set OPTEL_HOME to a writable folder",
        )
        return False
    if new:
        try:
            sys.stderr.write("\n".join("optel: " + line for line in notice_text(app).splitlines()))
            sys.stderr.write("\n")
            sys.stderr.flush()
        except Exception:  # a closed stderr must not hurt the host
            pass
    return True
