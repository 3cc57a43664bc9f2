"""The consent rule: may anything leave this machine for ``app`` now?

One function, :func:`decide`, answers, in this order (first match wins):

1. kill switches in the environment (``OPTEL_DISABLED``, ``DO_NOT_TRACK``,
   ``OTEL_SDK_DISABLED=true``) -> off;
2. a CI run (``CI`` or a well-known CI variable) without
   ``OPTEL_ALLOW_CI=1`` -> off;
3. a consent record that cannot be read or parsed -> off (fail closed);
4. the tool's own recorded decision, else the global one -> that decision;
5. no decision: policy ``opt-out`` -> on, ``opt-in`` -> off.

Decisions are stored in ``consent.json`` in the config folder, written
atomically under a cross-process lock.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

from . import _errors, _fs, env
from .config import Paths, paths

SCHEMA = 1
POLICIES = ("opt-in", "opt-out")
GRANTED, DENIED, UNSET = "granted", "denied", "unset"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Decision:
    """Whether sending is on for one app, and the one reason why."""

    app: str
    consent: str  # granted | denied | unset
    enabled: bool
    reason: str
    scope: str = ""  # "app", "global" or "" when no decision applies


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def kill_switch(environ: Mapping[str, str]) -> str | None:
    """The reason sending is switched off by the environment, or ``None``."""
    for name in (env.OPTEL_DISABLED, env.DO_NOT_TRACK):
        if _true(environ.get(name)):
            return f"{name} is set"
    if environ.get(env.OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED is true"
    if not _true(environ.get(env.OPTEL_ALLOW_CI)):
        for name in env.CI_VARIABLES:
            value = environ.get(name)
            if value is not None and value.strip().lower() not in ("", "0", "false", "no", "off"):
                return f"a CI run ({name} is set; OPTEL_ALLOW_CI=1 allows it)"
    return None


class ConsentFileError(Exception):
    """The consent record exists but cannot be used."""


def read_records(p: Paths) -> dict[str, Any]:
    """The consent document; raises :class:`ConsentFileError` when unusable."""
    try:
        data = _fs.read_json(p.consent)
    except (OSError, ValueError) as exc:
        raise ConsentFileError(f"{p.consent} cannot be read ({exc.__class__.__name__})") from exc
    if data is None:
        return {"schema": SCHEMA, "global": None, "apps": {}}
    if not isinstance(data, dict) or not isinstance(data.get("apps", {}), dict):
        raise ConsentFileError(f"{p.consent} is not a consent record")
    data.setdefault("global", None)
    data.setdefault("apps", {})
    return data


def _decision_of(entry: Any) -> str | None:
    if isinstance(entry, dict) and entry.get("decision") in (GRANTED, DENIED):
        return str(entry["decision"])
    return None


def decide(
    app: str,
    policy: str = "opt-in",
    environ: Mapping[str, str] | None = None,
    p: Paths | None = None,
) -> Decision:
    """Decide for ``app`` under ``policy``. Never raises for state on disk."""
    environ = os.environ if environ is None else environ
    try:
        records = read_records(p or paths(environ))
    except ConsentFileError as exc:
        _errors.warn_once("consent-file", f"telemetry is off: {exc}; run 'optel opt-in' or 'optel opt-out' to fix it")
        return Decision(app, UNSET, False, f"off: consent record unusable: {exc}")
    scope, consent = "", UNSET
    app_decision = _decision_of(records["apps"].get(app))
    global_decision = _decision_of(records["global"])
    if app_decision:
        scope, consent = "app", app_decision
    elif global_decision:
        scope, consent = "global", global_decision
    switch = kill_switch(environ)
    if switch:
        return Decision(app, consent, False, f"off: {switch}", scope)
    if consent == GRANTED:
        where = f"for {app}" if scope == "app" else "for every optel tool"
        return Decision(app, consent, True, f"on: consent granted {where}", scope)
    if consent == DENIED:
        where = f"for {app}" if scope == "app" else "for every optel tool"
        return Decision(app, consent, False, f"off: consent denied {where}", scope)
    if policy == "opt-out":
        return Decision(app, consent, True, "on: opt-out policy and no decision recorded")
    return Decision(app, consent, False, "off: no decision recorded (run 'optel opt-in')")


def record(decision: str, app: str | None = None, source: str = "cli", p: Paths | None = None) -> None:
    """Store ``decision`` (granted/denied) for ``app`` or, without one, globally.

    A corrupt record is moved aside (``consent.json.corrupt-<time>``) rather
    than overwritten, so nothing the user decided is silently lost.
    """
    if decision not in (GRANTED, DENIED):
        raise ValueError(f"decision must be {GRANTED!r} or {DENIED!r}")
    p = p or paths()
    with _fs.file_lock(p.lock):
        try:
            records = read_records(p)
        except ConsentFileError:
            aside = f"{p.consent}.corrupt-{int(time.time())}"
            os.replace(p.consent, aside)
            _errors.warn_once("consent-aside", f"moved the unreadable consent record to {aside}")
            records = {"schema": SCHEMA, "global": None, "apps": {}}
        entry = {"decision": decision, "time": int(time.time()), "source": source}
        if app:
            records["apps"][app] = entry
        else:
            records["global"] = entry
        records["schema"] = SCHEMA
        _fs.write_json_atomic(p.consent, records)
