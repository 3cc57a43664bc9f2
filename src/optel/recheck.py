"""The re-check: a spooled record is checked again before it is sent.

The spool is a file in the user's state folder: what is in it when a sender
reads it may not be what optel wrote (another program, a hand edit, a
damaged disk, an older optel). So every row read back from disk passes
:func:`verify` before any destination renders it (:func:`optel.delivery.payload`
is the one place that asks): a row that is not *exactly* a record optel's
anonymizer gives is not sent at all, it is dropped and counted
(``dropped_unverified``, shown by ``optel status``). Nothing is patched up
and sent: a record optel wrote passes unchanged, so any change means the row
is not one of optel's.

What "exactly" means, field by field (the record shape is in
:mod:`optel.records`; what the anonymizer makes of each field in
:mod:`optel.anonymize`):

- the fields the anonymizer keeps, nothing else; ``signal``, ``app`` and
  ``policy`` those of the row (consent is checked against the row's);
- ids, clocks, counts and enums in their own shapes (hex ids, numbers that
  are not card numbers, the SDK's span kinds, ...);
- names (of the record, its events, scope and failure type) unchanged by the
  name rule; templates (a log's body, a metric's description) and messages
  unchanged by the pattern scrubbers;
- attributes (record, resource, events, points): every key an identifier the
  anonymizer lets leave (never a denied key, ``optel.`` only for optel's own
  keys), every value a scalar or a flat list of scalars.

A ``optel flush`` process does not know the tool's declared attribute kinds,
so a value under a key it does not know passes when it is a fixed point of a
kind it could have been sent as: a label, number or bool, a version, a keyed
hash (``h:`` and 16 hex digits), a path-kind token (``file:.onnx@home``), a
name, a placeholder, or free text the pattern scrubbers leave unchanged (the
text kind, and closed-set values). Each of these is something the anonymizer
itself sends; none can carry an e-mail address, a home path, a token or the
local user's name, since each such datum is what those rules replace. A key
optel knows (its own, the built-in and semantic-convention keys) passes when
its value is a fixed point of the key's kind, or of one of the kinds above
(a tool may declare such a key with its own kind).

Bounds: a body larger than :data:`MAX_BODY` characters is not parsed, a
nesting deeper than JSON's recursion limit is caught, and the schema walk
goes only as deep as the record shape (attribute values are scalars or flat
lists), so no row can make a sender crash or recurse.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from .anonymize.exceptions import is_traceback, scrub_stacktrace
from .anonymize.fit import DROP, PLACEHOLDER, fit, frame_location
from .anonymize.keys import SAFE_PREFIXES, denied
from .anonymize.shapes import (
    MAX_NAME_CHARS,
    ON_IDENTITY_CHANGE,
    card_int,
    key_ok,
    label_ok,
    mentions_identity,
    name,
    version_ok,
)
from .anonymize.values import MAX_TEXT_OUT, PUBLIC_HOSTS, scrub_text
from .kinds import BUILTIN_KEYS, OPTEL_KEYS, Kind, Label, Version, check_key, semconv_keys

MAX_BODY = 1_000_000
"""Largest spooled record (characters of JSON) that is parsed and sent; a
record optel writes is a few KB (a span with every event and text attribute
at its limits stays well under this)."""

UNREADABLE = "unreadable_record"
UNVERIFIED = "unverified"


class Unreadable(ValueError):
    """A spooled body that is not a record at all (not JSON, not an object)."""

    reason = UNREADABLE


class Unverified(Unreadable):
    """A spooled record that is not exactly what optel's anonymizer writes."""

    reason = UNVERIFIED


def parse(text: str) -> dict[str, Any]:
    """The record a spooled body holds; :class:`Unreadable` (or, for a body
    too large or nested too deeply, :class:`Unverified`) otherwise."""
    if len(text) > MAX_BODY:
        raise Unverified(f"larger than {MAX_BODY} characters")
    try:
        record = json.loads(text)
    except RecursionError:
        raise Unverified("nested too deeply") from None
    except ValueError:
        raise Unreadable("not JSON") from None
    if not isinstance(record, dict):
        raise Unreadable("not a record")
    return record


def checked(text: str, app: str, policy: str, signal: str) -> dict[str, Any]:
    """The record a spooled body holds, parsed and verified (:func:`parse`,
    :func:`verify`)."""
    record = parse(text)
    verify(record, app, policy, signal)
    return record


def verify(record: dict[str, Any], app: str, policy: str, signal: str) -> None:
    """Raise :class:`Unverified` unless ``record`` (spooled for ``app`` under
    ``policy`` as ``signal``) is exactly a record optel's anonymizer gives."""
    if record.get("signal") != signal or signal not in _SIGNALS:
        raise Unverified("not a record of its row's signal")
    if "app" in record and record["app"] != app:
        raise Unverified("not a record of its row's app")
    if "policy" in record and record["policy"] != policy:
        raise Unverified("not a record of its row's policy")
    passed = _passed
    for field, value in record.items():
        check = _FIELDS.get(field)
        if check is None:
            raise Unverified(f"a field optel does not write: {_short(field)}")
        if type(value) is str and field in _REPEATING:
            # the same values record after record (the app, the session, the
            # name, ...): each is checked once
            key = (field, value)
            if key in passed:
                continue
            if not check(value) or (field == "session_id" and not _session_started(record)):
                raise Unverified(f"{field} is not as optel writes it")
            if len(value) <= 1024:
                if len(passed) >= MEMO_MAX:
                    passed.clear()
                passed[key] = None
        elif not check(value):
            raise Unverified(f"{field} is not as optel writes it")


_REPEATING = frozenset(
    {"app", "policy", "version", "session_id", "name", "kind", "type", "temporality",
     "severity", "body", "description", "unit"}
)  # fmt: skip
"""String fields whose values repeat from record to record (each checked once)."""
_passed: dict[tuple[str, str], None] = {}


def _short(value: Any) -> str:
    text = str(value)
    return repr(text[:20] + "…" if len(text) > 20 else text)


# -- shapes of ids, clocks, counts and enums --------------------------------------------------

_SIGNALS = frozenset({"span", "event", "log", "metric"})
_SPAN_KINDS = frozenset({"INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"})
_METRIC_TYPES = frozenset({"sum", "gauge", "histogram"})
_TEMPORALITIES = frozenset({None, "delta", "cumulative", "unspecified"})
_STATUS_CODES = frozenset({"UNSET", "OK", "ERROR"})
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
# seconds since the epoch and 6 random digits (optel.identity.session_id; before
# those digits, the seconds alone), the seconds no later than the record
_SESSION = re.compile(r"(?P<s>[1-9]\d{9,10}?)(?:\d{6})?")


def _number(v: Any) -> bool:
    """An int or float (never a bool) that is not a card number's digits."""
    t = type(v)
    if t is float:
        return True
    # 13-19 digits can be a card number; clocks in ns (19 digits starting with 1,
    # until 2033) never are: no card number starts with a 1
    return t is int and (-_SHORT < v < _SHORT or _NS <= v < 2 * _NS or not card_int(v))


_SHORT, _NS = 10**12, 10**18


def _number_or_none(v: Any) -> bool:
    return v is None or _number(v)


def _hex(pattern: re.Pattern[str], optional: bool) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if v is None:
            return optional
        return type(v) is str and pattern.fullmatch(v) is not None

    return check


def _one_of(values: frozenset[Any]) -> Callable[[Any], bool]:
    return lambda v: (v is None or type(v) is str) and v in values


def _session(v: Any) -> bool:
    return type(v) is str and _SESSION.fullmatch(v) is not None


def _session_started(record: dict[str, Any]) -> bool:
    """The session began before the record was made (a day of clock skew allowed)."""
    m = _SESSION.fullmatch(record.get("session_id") or "")
    t: Any = record.get("time")
    return m is None or not _number(t) or int(m.group("s")) <= t + 86400


def _policy(v: Any) -> bool:
    return type(v) is str and label_ok(v)  # (equal to the row's: checked in verify)


# -- values a kind gives ------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types (True is not 1, 1.0 is not 1), lists item by item."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _fits(kind: Kind, v: Any) -> bool:
    """Is ``v`` what the anonymizer sends for itself as ``kind`` (a fixed point)?"""
    if kind.name in ("hashed", "text", "message"):
        return _declarable(v)  # (hashing again needs the salt; text is checked by pattern)
    if kind.name == "stacktrace":
        return type(v) is str and _trace(v)
    out, _ = fit(kind, v, True)
    return out is not DROP and _same(out, v)


_PLACEHOLDERS = frozenset(PLACEHOLDER.values()) | {"<hashed>", "<user-code>"}
_HASH = re.compile(r"h:[0-9a-f]{16}")
_PLACES = "(?:home|temp|site-packages|network|relative|other)"
# optel.anonymize.shapes.path_kind: file:.onnx@home, dir@temp, path@other, url:https, url
_PATH_TOKEN = re.compile(
    rf"file:(?P<ext>[A-Za-z0-9.]{{2,18}})@{_PLACES}|(?:dir|path)@{_PLACES}"
    r"|url(?::(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]{1,15}))?"
)


def _path_token(v: str) -> bool:
    m = _PATH_TOKEN.fullmatch(v)
    if m is None:
        return False
    ext, scheme = m.group("ext"), m.group("scheme")
    return (ext is None or label_ok(ext.lower())) and (scheme is None or label_ok(scheme))


def _scalar(v: Any) -> bool:
    """A value of one of the kinds a tool can declare, as the anonymizer sends it."""
    t = type(v)
    if t is str:
        if len(v) > MAX_TEXT_OUT + 1:
            return _text(v)  # only a stack trace is longer (and the memos stay small)
        return (
            label_ok(v)
            or v in _PLACEHOLDERS
            or _HASH.fullmatch(v) is not None
            or _path_token(v)
            or version_ok(v)
            or _name(v)
            or _text(v)
        )
    if t is bool or t is float or v is None:
        return True
    return t is int and not card_int(v)


def _declarable(v: Any) -> bool:
    if type(v) is list:
        return all(_scalar(x) for x in v)
    return _scalar(v)


def _name(v: Any) -> bool:
    """Unchanged by the name rule (a name cut at its bound ends in an ellipsis)."""
    if type(v) is not str or len(v) > 2 * MAX_NAME_CHARS:
        return False  # (the name rule cuts at MAX_NAME_CHARS)
    if name(v) == v:
        return True
    return v.endswith("…") and name(v[:-1].rstrip()) == v[:-1].rstrip()


# Placeholders the pattern scrubbers write into text (optel.anonymize.values),
# as whole units: left in, the scrubbers would read them as data again
# (``<file:.pt@home>`` looks like an e-mail address to them).
_HOSTS = "|".join(re.escape(h) for h in sorted(PUBLIC_HOSTS, key=len, reverse=True))
_IN_TEXT = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{1,15}://(?:<host>|" + _HOSTS + r")(?:/<path>)?(?:\?<query>)?"
    r"|(?:<host>|" + _HOSTS + r")/<path>"
    r"|<(?:file:\.[A-Za-z0-9.]{1,17}|dir|path)@" + _PLACES + r">"
    r"|<(?:email|url|host|ip|card|iban|id|mac|number|phone|secret|ssn|user|uuid|hex|path"
    r"|query|hashed|other|not-[a-z]+)>"
)
_MARK = ","  # ends every token and value the scrubbers look for, and is none itself


def _masked(v: str) -> str:
    return _IN_TEXT.sub(_MARK, v)


def _text(v: Any) -> bool:
    """Free text the pattern scrubbers leave as it is (what the text kind sends)."""
    if type(v) is not str:
        return False
    if is_traceback(v):
        return _trace(v)  # (reduced to frames, not cut: its length is the trace's)
    if len(v) > MAX_TEXT_OUT + 1:
        return False
    body = v[:-1] if v.endswith("…") else v  # cut at the text bound by optel
    masked = _masked(body)
    if _masked(scrub_text(masked)) == masked:
        return True
    return _trace(v)  # a stack trace's frames, without its header line


# A line stack-trace reduction writes that it would not read back as it is: a
# frame under an exception group's bars, a test runner's location line.
_WRITTEN_FRAME = re.compile(
    r"[\s|+\-]*(?P<loc><[^<>\n]{1,60}>|(?:site-packages|<stdlib>)/[\w./\-]+)"
    r":\d+(?: in (?P<func>\S+)|: (?P<type>[A-Za-z_][\w.]*))"
)


def _trace(v: str) -> bool:
    """Stack-trace text as optel reduces it: only lines of the shapes it writes."""
    for line in v.split("\n"):
        m = _WRITTEN_FRAME.fullmatch(line)
        if m is not None:
            func, typ = m.group("func"), m.group("type")
            if _location(m.group("loc")) and (
                _name(func) if func is not None else scrub_stacktrace(typ) == typ
            ):
                continue
            return False
        masked = _masked(line)
        if scrub_stacktrace(masked, free_text=True) != masked:
            return False
    return True


_UNIT = re.compile(r"[A-Za-z0-9{}/.*%^_\-\[\]]{1,32}")


def _unit(v: Any) -> bool:
    # optel.anonymize's unit rule: UCUM-like, not a path, nothing about who
    return type(v) is str and (
        v == ""
        or (
            _UNIT.fullmatch(v) is not None
            and not v.startswith(("/", "~"))
            and "//" not in v
            and not mentions_identity(v)
        )
    )


def _version(v: Any) -> bool:
    return v is None or _fits(Version, v)


def _label(v: Any) -> bool:
    return type(v) is str and _fits(Label, v)


# -- attributes ----------------------------------------------------------------------------------


def _key_kind(key: str) -> tuple[bool, Kind | None]:
    """(may ``key`` leave, the kind optel knows for it or ``None``)."""
    if key.startswith(SAFE_PREFIXES):
        kind = OPTEL_KEYS.get(key)
        return kind is not None, kind
    if denied(key):
        kind = semconv_keys().get(key)  # a denied family's key: only as the registry reduces it
        return kind is not None, kind
    if check_key(key) is not None or not key_ok(key):
        return False, None
    return True, BUILTIN_KEYS.get(key) or semconv_keys().get(key)


_keys: dict[str, tuple[bool, Kind | None]] = {}
_pairs: dict[tuple[str, str], bool] = {}  # (key, string value) -> passes: values repeat
MEMO_MAX = 8192


def _pair(key: Any, value: Any) -> bool:
    """May ``key`` leave with ``value``?"""
    found = _keys.get(key) if type(key) is str else (False, None)
    if found is None:
        found = _key_kind(key)
        if len(_keys) >= MEMO_MAX:
            _keys.clear()
        _keys[key] = found
    allowed, kind = found
    if not allowed:
        return False
    if kind is not None and _fits(kind, value):
        return True
    if kind is not None and (key.startswith(SAFE_PREFIXES) or denied(key)):
        return False  # optel's own and denied families' keys: only their own kind
    return _declarable(value)


def _attributes(v: Any) -> bool:
    if type(v) is not dict:
        return False
    pairs = _pairs
    for item in v.items():
        value = item[1]
        t = type(value)
        if t is str and len(value) <= 256:
            ok = pairs.get(item)
            if ok is None:
                ok = _pair(*item)
                if len(pairs) >= MEMO_MAX:
                    pairs.clear()
                pairs[item] = ok
        elif (t is int or t is float) and _keys.get(item[0]) == (True, None):
            ok = _number(value)  # a number under a declared key: the common case, directly
        else:
            ok = _pair(*item)
        if not ok:
            return False
    return True


_MEMOS: list[Any] = [_pairs, _keys, _passed]


def _forget() -> None:
    for memo in _MEMOS:
        memo.clear()


ON_IDENTITY_CHANGE.append(_forget)  # a memo's answer may name the old user or host


# -- the fields ---------------------------------------------------------------------------------


def _dict_of(allowed: dict[str, Callable[[Any], bool]]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if type(v) is not dict:
            return False
        for k, x in v.items():
            ok = allowed.get(k)
            if ok is None or not ok(x):
                return False
        return True

    return check


def _list_of(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is list and all(map(item, v))

    return check


def _message(v: Any) -> bool:
    return v == "" or _text(v)  # free text: present only when the tool opted in


def _template(v: Any) -> bool:
    return v == "" or _text(v)  # text the tool's author wrote in the code


def _numbers(v: Any) -> bool:
    return type(v) is list and all(_number(x) for x in v)


def _location(v: Any) -> bool:
    """A frame's file as optel writes it (``<user-code>``, ``<frozen os>``,
    ``site-packages/torch/x.py``); a ``<word>`` must pass the label rules too
    (the location rule alone would let ``<ghp_...>`` or ``<the user's name>`` by)."""
    if type(v) is not str or frame_location(v) != v:
        return False
    if v.startswith("<") and v.endswith(">"):
        return all(label_ok(word) for word in v[1:-1].split(" "))
    return True


def _remembered(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``check`` for an object whose values repeat (a resource, a scope, a
    status): the last few that passed are remembered and compared with (equal
    values count as one: ``True == 1.0 == 1``, the same fact whichever)."""
    passed: list[dict[str, Any]] = []
    _MEMOS.append(passed)

    def remembered(v: Any) -> bool:
        if type(v) is not dict:
            return False
        for known in passed:
            if v == known:
                return True
        if not check(v):
            return False
        if len(passed) >= 8:
            del passed[0]
        passed.append(v)
        return True

    return remembered


_STATUS = _remembered(_dict_of({"code": _one_of(_STATUS_CODES), "message": _message}))
_SCOPE = _remembered(_dict_of({"name": _name, "version": _version}))
_EVENT = _dict_of({"name": _name, "time_ns": _number_or_none, "attributes": _attributes})
_FRAME = _dict_of({"file": _location, "function": _name, "line": _number})
_REPORT = _dict_of({"type": _name, "frames": _list_of(_FRAME), "message": _message})
_POINT = _dict_of(
    {
        "attributes": _attributes,
        **dict.fromkeys(("start_ns", "time_ns", "value", "count", "sum", "min", "max"),
                        _number_or_none),
        "bounds": _numbers,
        "bucket_counts": _numbers,
    }
)  # fmt: skip

_FIELDS: dict[str, Callable[[Any], bool]] = {
    "signal": _one_of(_SIGNALS),
    "app": _label,
    "policy": _policy,
    "version": _version,
    "session_id": _session,
    "trace_id": _hex(_HEX32, optional=True),
    "span_id": _hex(_HEX16, optional=True),
    "parent_span_id": _hex(_HEX16, optional=True),
    "kind": _one_of(_SPAN_KINDS),
    "type": _one_of(_METRIC_TYPES),
    "monotonic": lambda v: type(v) is bool,
    "temporality": _one_of(_TEMPORALITIES),
    **dict.fromkeys(("time", "time_ns", "start_ns", "end_ns", "links", "dropped_attributes"),
                    _number_or_none),
    "severity": _label,
    "name": _name,
    "scope": _SCOPE,
    "body": _template,
    "description": _template,
    "unit": _unit,
    "status": _STATUS,
    "report": _REPORT,
    "attributes": _attributes,
    "resource": _remembered(_attributes),  # a process's records share one
    "events": _list_of(_EVENT),
    "points": _list_of(_POINT),
}  # fmt: skip
"""Every field a record optel spools may have, with the check of its value
(the anonymizer's field table, :mod:`optel.anonymize`, read the other way)."""

__all__ = ["MAX_BODY", "Unreadable", "Unverified", "checked", "parse", "verify"]
