"""The consent record on disk: reading, migrating, caching and writing it.

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


def cached_records(p: Paths) -> dict[str, Any]:
    """:func:`read_records`, parsed again only when the file changed (no file:
    the empty record). Raises :class:`ConsentFileError` when unusable."""
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


def record(
    decision: str,
    app: str | None = None,
    source: str = "cli",
    p: Paths | None = None,
    notice_version: int | None = None,
) -> None:
    """Store ``decision`` (granted/denied) for ``app`` or, without one, globally.

    Only the record: what the decision does to the data already on disk is
    :func:`optel.consent.take_effect`. Raises ``OSError`` when the state
    folder cannot be written (the caller says so; the previous decision
    stays in force).
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
