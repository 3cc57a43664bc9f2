"""The consent record on disk: reading, migrating, caching and writing it.

The record, ``consent.json`` in the config folder (mode 0600, written
atomically under a cross-process lock)::

    {"schema": 2,
     "global": {"decision": "granted", "time": 1700000000, "source": "cli",
                "notice_version": null},
     "apps": {"mytool": {"decision": "denied", "time": ..., "source": "prompt",
                         "notice_version": 3}},
     "notices": {"othertool": {"notice_version": 1, "time": ..., "source": "notice"}},
     "asked": {"thirdtool": {"time": ...}}}

App names are stored in lower case and compare case-insensitively
(:func:`app_key`). ``notices`` are the opt-out notices that reached a person;
``asked`` the questions that got no answer (not asked again for
:data:`ASK_AGAIN_S`). A global refusal withdraws every per-tool grant (it
says "every tool"); a later per-tool grant grants that tool only; a global
grant leaves per-tool refusals standing (:func:`record`).

``source`` is one of ``cli``, ``prompt``, ``api``, ``notice``. Older or
unknown schemas (schema 1, bare ``"granted"``/``true`` values) are migrated
on read and keep the user's decisions; unknown keys are kept when writing.
A file that cannot be understood is moved aside (``consent.json.corrupt-*``)
on the next write, never silently overwritten.

The parsed record is cached and parsed again only when the file's
(mtime_ns, size, inode) changes, so the re-check before each send is cheap
and still sees ``optel opt-out`` from another process.
"""

from __future__ import annotations

import os
import time

from .. import _errors, _fs
from ..config import Paths, paths

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Callable

SCHEMA = 2
GRANTED, DENIED = "granted", "denied"
SOURCES = ("cli", "prompt", "api", "notice")
# what older files (and hand edits) may hold instead of granted/denied
_LEGACY = {
    "granted": GRANTED, "grant": GRANTED, "yes": GRANTED, "true": GRANTED, "on": GRANTED,
    "opt-in": GRANTED, "optin": GRANTED, "allow": GRANTED, "allowed": GRANTED,
    "denied": DENIED, "deny": DENIED, "no": DENIED, "false": DENIED, "off": DENIED,
    "opt-out": DENIED, "optout": DENIED, "revoked": DENIED,
}  # fmt: skip


ASK_AGAIN_S = 7 * 24 * 3600
"""A question that got no answer (timeout, Ctrl-C) is not asked again for 7 days."""


class ConsentFileError(Exception):
    """The consent record exists but cannot be used."""


class UntrustedState(ConsentFileError):
    """The state folder belongs to someone else or others can write it."""


def app_key(app: str) -> str:
    """How ``app`` is stored and compared: names are case-insensitive."""
    return app.strip().lower()


# -- reading and migrating -------------------------------------------------------


def _empty() -> dict[str, Any]:
    return {"schema": SCHEMA, "global": None, "apps": {}, "notices": {}, "asked": {}}


def _newer(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """``b`` was written after ``a`` (entries without a time count as oldest)."""
    return a is None or (b.get("time") or 0) >= (a.get("time") or 0)


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
    apps, notices, asked = (
        {} if data.get(k) is None else data[k] for k in ("apps", "notices", "asked")
    )
    if not all(isinstance(section, dict) for section in (apps, notices, asked)):
        raise ConsentFileError(f"{where} is not a consent record")
    out = dict(data)  # unknown keys are kept
    out["schema"] = SCHEMA
    out["global"] = _entry(data.get("global"), f"{where} (global)")
    out["apps"] = {}
    for app, raw in apps.items():
        entry = _entry(raw, f"{where} (app {app})")
        key = app_key(str(app))
        if entry is not None and _newer(out["apps"].get(key), entry):
            out["apps"][key] = entry  # names differing only in case: the newest decision
    out["notices"] = {}
    for app, raw in notices.items():
        version = _int_or_none(raw.get("notice_version")) if isinstance(raw, dict) else None
        key = app_key(str(app))
        seen = out["notices"].get(key)
        if version is not None and (seen is None or version > seen["notice_version"]):
            out["notices"][key] = {
                "notice_version": version,
                "time": _int_or_none(raw.get("time")),
                "source": "notice",
            }
    out["asked"] = {}
    for app, raw in asked.items():
        when = _int_or_none(raw.get("time")) if isinstance(raw, dict) else None
        if when is not None:
            out["asked"][app_key(str(app))] = {"time": when}
    return out


def read_records(p: Paths) -> dict[str, Any]:
    """The consent document (migrated); raises :class:`ConsentFileError` when unusable."""
    try:
        data = _fs.read_json(p.consent)
    except _fs.UntrustedFolder as exc:
        raise UntrustedState(str(exc.strerror)) from exc
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise ConsentFileError(f"{p.consent} cannot be read ({why})") from exc
    return migrate(data, p.consent)


# Parsed records per file, keyed by the file's (mtime_ns, size, inode): a
# write (always a rename of a new file) changes the key.
_cache: dict[str, tuple[tuple[int, int, int] | None, Any]] = {}


def cached_records(p: Paths) -> dict[str, Any]:
    """:func:`read_records`, parsed again only when the file changed (no file:
    the empty record). Raises :class:`ConsentFileError` when unusable."""
    path = p.consent
    for folder in dict.fromkeys((p.config_dir, p.data_dir)):
        problem = _fs.folder_problem(folder)
        if problem:  # a planted file there could grant consent: nothing in it is used
            raise UntrustedState(f"not using {problem}")
    try:
        st = os.lstat(path)  # the link itself, if one was planted: reading refuses it
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


# -- writing -------------------------------------------------------------------------


def _update(p: Paths, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change(records)`` and write, atomically, under the lock.

    A record that cannot be understood is moved aside first, so nothing the
    user decided is silently lost. An untrusted folder raises
    :class:`optel._fs.UntrustedFolder` (an ``OSError``): nothing is written.
    """
    with _fs.file_lock(p.lock):
        try:
            records = read_records(p)
        except UntrustedState as exc:  # the lock checked the folder; the data folder may differ
            raise _fs.UntrustedFolder(1, str(exc), p.config_dir) from None
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


def record(
    decision: str,
    app: str | None = None,
    source: str = "cli",
    p: Paths | None = None,
    notice_version: int | None = None,
) -> list[str]:
    """Store ``decision`` (granted/denied) for ``app`` or, without one, globally.

    A global refusal also withdraws every per-tool grant (a refusal for
    "every tool" must be true for every tool); per-tool refusals stand
    whatever the global decision. Returns the tools whose own grant was
    withdrawn (for the message). Only the record: what the decision does to
    the data already on disk is :func:`optel.consent.take_effect`. Raises
    ``OSError`` when the state folder cannot be written or is not trusted
    (the caller says so; the previous decision stays in force).
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
    withdrawn: list[str] = []

    def change(records: dict[str, Any]) -> None:
        if app:
            records["apps"][app_key(app)] = entry
            records["asked"].pop(app_key(app), None)
            return
        records["global"] = entry
        if decision == DENIED:
            for name, own in list(records["apps"].items()):
                if own["decision"] == GRANTED:
                    withdrawn.append(name)
                    del records["apps"][name]
            records["asked"].clear()

    _update(p or paths(), change)
    return sorted(withdrawn)


def note_notice(app: str, notice_version: int, p: Paths | None = None) -> bool:
    """Record that ``app``'s notice ``notice_version`` reached a person; ``False``
    when another process recorded it (or a newer one) first, so it is not shown
    twice. Raises ``OSError`` when the record cannot be written."""
    noted = []
    key = app_key(app)

    def change(records: dict[str, Any]) -> None:
        seen = records["notices"].get(key)
        if seen and seen["notice_version"] >= notice_version:
            return
        records["notices"][key] = {
            "notice_version": notice_version,
            "time": int(time.time()),
            "source": "notice",
        }
        noted.append(True)

    _update(p or paths(), change)
    return bool(noted)


def note_asked(app: str, p: Paths | None = None) -> None:
    """Remember that ``app``'s question got no answer now (not asked again for
    :data:`ASK_AGAIN_S`); records no decision. Raises ``OSError`` when it cannot
    be written."""

    def change(records: dict[str, Any]) -> None:
        records["asked"][app_key(app)] = {"time": int(time.time())}

    _update(p or paths(), change)


def asked_recently(records: dict[str, Any], app: str, now: float | None = None) -> bool:
    """Was ``app`` asked without an answer less than :data:`ASK_AGAIN_S` ago?"""
    seen = records.get("asked", {}).get(app_key(app))
    if not seen:
        return False
    now = time.time() if now is None else now
    return 0 <= now - seen["time"] < ASK_AGAIN_S
