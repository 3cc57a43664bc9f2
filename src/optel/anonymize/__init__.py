"""The anonymizer: what may leave the machine, and in what form.

Runs on the worker thread on every record before it is written to the
spool, so nothing unshaped reaches the disk. What leaves is what the tool
declared, in the shape it declared (:mod:`optel.kinds`):

- :mod:`.keys`: which keys never leave (secret and identity families), and
  the reserved ``optel.`` prefix;
- :mod:`.fit`: a value made to fit its key's kind (labels, numbers, bools,
  versions, closed sets, path kinds, keyed hashes), else a typed
  placeholder, counted; names reduced to identifiers;
- :mod:`.exceptions`: failure reports (type and module-relative frames)
  and stack-trace text parsed by an allowlist of line shapes;
- :mod:`.reduce`: URLs, paths and queries reduced to what they say about
  the work (route templates, statements with literals replaced), in rules
  the gateway runs too;
- :mod:`.values`: the pattern scrubbers, the second line, for the text kind
  only (``optel.Text`` attributes, free text when the tool opted in).

(:mod:`.hashing` holds ``optel.hashed``: keyed hashes, salt kept local.)

Precedence: a denied key is dropped even when declared (a denied family's
key in the semantic-convention registry, ``url.full`` say, leaves only in the
registry's reduced form); a key without a kind (not declared, not optel's,
not a built-in or registered semantic-convention key, :mod:`optel.semconv`)
is dropped and counted on the record (``dropped_attributes``); a value that
does not fit its kind is replaced and counted per app
(:meth:`Anonymizer.take_mismatches`, shown by ``optel status``). Every
record field is handled by name (the README's field table); a field this
package does not know is dropped (fail closed). The pipeline talks to it
only through :class:`Anonymizer`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from ..kinds import (
    BUILTIN_KEYS,
    OPTEL_KEYS,
    Declarations,
    Kind,
    Number,
    OneOf,
    Version,
    check_key,
    semconv_keys,
)
from ..kinds import Label as _Label
from ..kinds import Text as _TEXT
from .fit import DROP, label_ok, name
from .fit import fit as fit_value
from .keys import SAFE_KEYS, SAFE_PREFIXES, denied
from .shapes import ON_IDENTITY_CHANGE, key_ok, mentions_identity
from .values import scrub_text, scrub_value

__all__ = [
    "Anonymizer",
    "SAFE_KEYS",
    "SAFE_PREFIXES",
    "denied",
    "scrub_text",
    "scrub_value",
]

_STATUS = OneOf("UNSET", "OK", "ERROR")
_MESSAGE = BUILTIN_KEYS["exception.message"]
_NUMBER_FIELDS = frozenset({"time", "time_ns", "start_ns", "end_ns", "links", "dropped_attributes"})
_POINT_NUMBERS = frozenset({"start_ns", "time_ns", "value", "count", "sum", "min", "max"})
_POINT_LISTS = frozenset({"bounds", "bucket_counts"})
_NO_CARD = 10**12
"""Ints below this (12 digits at most) cannot be card numbers (13 to 19 digits): kept as
labels and numbers as they are."""
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789{}/.*%^_-[]")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Count:
    """What one record's scrubbing dropped and replaced."""

    __slots__ = ("dropped", "mismatched")

    def __init__(self) -> None:
        self.dropped = 0
        self.mismatched = 0


class Anonymizer:
    """Declared keys, kinds and names for optel records.

    ``declared`` is a :class:`~optel.kinds.Declarations` (from ``init()``) or
    a list of keys (labels, as ``OPTEL_ALLOWED_ATTRIBUTES`` gives them).
    """

    def __init__(self, declared: Declarations | Iterable[str] = ()):
        if isinstance(declared, Declarations):
            self.declarations = declared.copy()
        else:
            self.declarations = Declarations()
            self.declarations.add(declared)
        self._kinds: dict[str, Kind | None] = {}
        self._invalid: set[str] = set()  # keys that are no identifiers, or name someone
        self._resources: dict[int, tuple[dict[str, Any], dict[str, Any], int, int]] = {}
        self._mismatches: dict[str, int] = {}
        self._lock = threading.Lock()
        self._semconv = semconv_keys()

    # -- declarations -----------------------------------------------------------------

    @property
    def free_text(self) -> bool:
        """Did the tool opt in to free text (messages, status descriptions, log text)?"""
        return self.declarations.free_text

    def declare(self, keys: Declarations | Iterable[str]) -> list[Any]:
        """Add declarations (``event()`` keys: labels unless declared otherwise);
        returns the keys refused. Never raises."""
        before = (len(self.declarations), self.declarations.free_text)
        refused = self.declarations.add(keys)
        if (len(self.declarations), self.declarations.free_text) != before:
            self._kinds.clear()
            self._resources.clear()
        return refused

    def kind(self, key: str) -> Kind | None:
        """The kind ``key`` is sent as, or ``None`` when it is never sent."""
        try:
            return self._kinds[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable key from a host's SDK: never sent
            return None
        kind: Kind | None = None
        if (
            isinstance(key, str)
            and not key.startswith(SAFE_PREFIXES)
            and (check_key(key) is not None or not key_ok(key))
        ):
            self._invalid.add(key)
        if isinstance(key, str) and key not in self._invalid:
            if key.startswith(SAFE_PREFIXES):
                kind = OPTEL_KEYS.get(key)  # reserved: only optel's registered keys
            elif not denied(key):
                kind = self.declarations.get(key) or BUILTIN_KEYS.get(key) or self._semconv.get(key)
            else:
                # a key of a denied family (url.*) leaves only as the registry reduces it
                kind = self._semconv.get(key)
        if len(self._kinds) >= 10_000:  # keys are few, but stay bounded
            self._kinds.clear()
            self._invalid.clear()
        self._kinds[key] = kind
        return kind

    def allowed(self, key: str) -> bool:
        return self.kind(key) is not None

    @property
    def kinds(self) -> dict[str, Kind]:
        """Every key that can leave, with its kind: the tool's (denied ones and
        ones naming someone left out), optel's own and the built-in ones."""
        out = {k: v for k, v in self.declarations.items() if self.kind(k) is not None}
        for table in (OPTEL_KEYS, BUILTIN_KEYS, self._semconv):
            for k, v in table.items():
                out.setdefault(k, v)
        return out

    def take_mismatches(self) -> dict[str, int]:
        """Values replaced (and keys refused) per app since the last call."""
        with self._lock:
            out, self._mismatches = self._mismatches, {}
        return out

    # -- attributes -----------------------------------------------------------------------

    def attributes(self, attrs: dict[str, Any], count: _Count) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        kinds = self._kinds
        free_text = self.declarations.free_text
        for key, value in attrs.items():
            kind = kinds[key] if key in kinds else self.kind(key)
            if kind is None:
                count.dropped += 1
                if key in self._invalid:
                    count.mismatched += 1  # not an identifier, or one naming someone: counted
                continue
            if kind is _Label or kind is Number:  # the common cases, without the dispatch
                t = type(value)
                if (t is str and kind is _Label and label_ok(value)) or t is float:
                    kept[key] = value
                    continue
                if t is int and -_NO_CARD < value < _NO_CARD:  # too short for a card number
                    kept[key] = value
                    continue
            out, bad = fit_value(kind, value, free_text)
            if bad:
                count.mismatched += 1
            if out is DROP:
                count.dropped += 1
                continue
            kept[key] = out
        return kept

    def _resource(self, resource: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        # Records of one process share one resource dict: shape it once.
        hit = self._resources.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1], hit[2], 0  # its mismatches were counted the first time
        count = _Count()
        clean = self.attributes(resource, count)
        if len(self._resources) > 64:
            self._resources.clear()
        self._resources[id(resource)] = (resource, clean, count.dropped, count.mismatched)
        return clean, count.dropped, count.mismatched

    # -- records --------------------------------------------------------------------------

    def scrub(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as it may leave (the input is left untouched).

        Every field is handled by name; a field this module does not know is
        dropped, so a field added later can never slip through (fail closed).
        """
        out = dict(record)  # optel's own ids, clocks, counts and enums stay as they are
        count = _Count()
        unknown, kinded, handlers = _plan(record)
        for field in unknown:
            del out[field]  # fail closed: a field this module does not know
        for field, kind, default in kinded:
            value = record[field]
            if value is None or value == "":
                continue  # absent
            v, bad = fit_value(kind, value)
            if bad:
                count.mismatched += 1
                if default is not None:
                    v = default
            out[field] = v
        for field, handle in handlers:
            handle(self, record[field], out, count)
        if "message" in record and self.free_text and record.get("signal") == "log":
            body, _ = fit_value(_MESSAGE, record["message"], True)
            if body is not DROP:
                out["body"] = body  # free text opted in: the whole message, as text
        self._note_names(out)
        if count.dropped:
            out["dropped_attributes"] = out.get("dropped_attributes", 0) + count.dropped
        if count.mismatched:
            app = str(out.get("app") or "")
            with self._lock:
                self._mismatches[app] = self._mismatches.get(app, 0) + count.mismatched
        return out

    def _note_names(self, out: dict[str, Any]) -> None:
        """The names a record carries as sent, for ``optel describe`` (names used)."""
        use = self.declarations.use
        if out.get("name"):
            use(out.get("signal"), out["name"])
        for event in out.get("events") or ():
            use("span event", event["name"])
        scope = out.get("scope")
        if scope and scope.get("name"):
            use("scope", scope["name"])


# -- one handler per record field (the README's field table) -----------------------------------

Handler = Callable[[Anonymizer, Any, dict[str, Any], _Count], None]


def _name(field: str) -> Handler:
    def handle(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
        out[field] = name(value if isinstance(value, str) else str(value or ""))

    return handle


def _template(field: str) -> Handler:
    # text the tool's author wrote in the code (a log template, a metric's
    # description): scrubbed by the patterns as a second line
    def handle(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
        if isinstance(value, str):
            out[field], _ = fit_value(_TEXT, value, True)
        else:
            out[field] = ""

    return handle


def _unit(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    # UCUM-like: ms, By/s, {request}; not a path, nothing about who
    if (
        isinstance(value, str)
        and len(value) <= 32
        and set(value) <= _UNIT_CHARS
        and not value.startswith(("/", "~"))
        and "//" not in value
        and not mentions_identity(value)
    ):
        out["unit"] = value
    else:
        out["unit"] = ""
        count.mismatched += 1


def _attributes(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    out["attributes"] = a.attributes(value, count) if isinstance(value, dict) else {}


def _resource(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    if not isinstance(value, dict):
        out["resource"] = {}
        return
    clean, _dropped, mismatched = a._resource(value)
    count.mismatched += mismatched
    out["resource"] = clean


def _status(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    value = value if isinstance(value, dict) else {}
    raw_code = value.get("code") or "UNSET"
    message = value.get("message")
    if not (message and a.free_text) and type(raw_code) is str:
        status = _STATUS_MEMO.get(raw_code)  # no text to scrub: one dict per code, shared
        if status is None:
            code, _ = fit_value(_STATUS, raw_code)
            status = {"code": "UNSET" if code == "<other>" else code, "message": ""}
            if len(_STATUS_MEMO) >= 64:
                _STATUS_MEMO.clear()
            _STATUS_MEMO[raw_code] = status
        out["status"] = status
        return
    code, _ = fit_value(_STATUS, raw_code)
    status = {"code": "UNSET" if code == "<other>" else code, "message": ""}
    if message and a.free_text:  # free text: only when the tool opted in
        text, _ = fit_value(_MESSAGE, message, True)
        if text is not DROP and text:
            status["message"] = text
    out["status"] = status


def _scope(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    value = value if isinstance(value, dict) else {}
    scope_name = value.get("name")
    scope_version = value.get("version") or None  # the SDK's "" means none
    key = None
    if type(scope_name) is str and (scope_version is None or type(scope_version) is str):
        key = (scope_name, scope_version)
        hit = _SCOPE_MEMO.get(key)
        if hit is not None:  # records of one scope: shaped once, one dict shared
            out["scope"] = hit[0]
            count.mismatched += hit[1]
            return
    bad = False
    if scope_version is not None:
        scope_version, bad = fit_value(Version, scope_version)
        if bad:
            scope_version = None
            count.mismatched += 1
    scope = {
        "name": name(scope_name if type(scope_name) is str else str(scope_name or "")),
        "version": scope_version,
    }
    if key is not None:
        if len(_SCOPE_MEMO) >= 256:
            _SCOPE_MEMO.clear()
        _SCOPE_MEMO[key] = (scope, int(bad))
    out["scope"] = scope


_STATUS_MEMO: dict[str, dict[str, str]] = {}
_SCOPE_MEMO: dict[tuple[str, str | None], tuple[dict[str, Any], int]] = {}
"""Shaped statuses (without text) and scopes, shared by the records that carry them
(never changed after: the renderers only read them); dropped when the local names
looked for change (a scope's name is shaped against them)."""
ON_IDENTITY_CHANGE.append(_SCOPE_MEMO.clear)


def _events(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    events = []
    for e in value if isinstance(value, list) else ():
        if not isinstance(e, dict):
            continue
        events.append(
            {
                "name": name(str(e.get("name") or "")),
                "time_ns": e.get("time_ns") if _number(e.get("time_ns")) else None,
                "attributes": a.attributes(e.get("attributes") or {}, count),
            }
        )
    out["events"] = events


def _points(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    points = []
    for p in value if isinstance(value, list) else ():
        if not isinstance(p, dict):
            continue
        point: dict[str, Any] = {"attributes": a.attributes(p.get("attributes") or {}, count)}
        for k, v in p.items():
            if k in _POINT_NUMBERS and (v is None or _number(v)):
                point[k] = v
            elif k in _POINT_LISTS and isinstance(v, (list, tuple)):
                point[k] = [x for x in v if _number(x)]
        points.append(point)
    out["points"] = points


def _report(a: Anonymizer, value: Any, out: dict[str, Any], count: _Count) -> None:
    from .exceptions import _frame_location

    value = value if isinstance(value, dict) else {}
    rep: dict[str, Any] = {"type": name(str(value.get("type") or "")), "frames": []}
    message, _ = fit_value(_MESSAGE, value.get("message") or "", a.free_text)
    if message is not DROP and message:
        rep["message"] = message
    for f in value.get("frames") or ():
        if not isinstance(f, dict):
            continue
        loc = _frame_location(str(f.get("file") or ""))
        rep["frames"].append(
            {
                "file": loc or "<unknown>",
                "function": name(str(f.get("function") or "?")),
                "line": f.get("line") if _number(f.get("line")) else 0,
            }
        )
    out["report"] = rep


_AS_IS = frozenset(
    {"signal", "policy", "session_id", "trace_id", "span_id", "parent_span_id", "kind", "type",
     "monotonic", "temporality", "links", *_NUMBER_FIELDS}
)  # fmt: skip
"""Set by optel or the SDK, never by the tool's data: ids, clocks, counts, enums."""

_KINDED_FIELDS: dict[str, tuple[Kind, Any]] = {
    # what the tool set in init (or a host's resource, for the GA4 SDK exporter)
    "app": (_Label, None),
    "version": (Version, None),
    # a logging level name: custom levels are any string
    "severity": (_Label, "INFO"),
}
"""Fields of one kind each: (kind, what replaces a value that does not fit, or
None for the kind's own placeholder)."""

_FIELDS: dict[str, Handler] = {
    # names are identifiers
    "name": _name("name"),
    "scope": _scope,
    # text the tool's author wrote in the code: pattern-scrubbed
    "body": _template("body"),
    "description": _template("description"),
    "unit": _unit,
    # free text: off unless the tool opted in
    "status": _status,
    "report": _report,
    # declared keys with kinds
    "attributes": _attributes,
    "resource": _resource,
    "events": _events,
    "points": _points,
}
"""Record field -> how it is made safe, with :data:`_AS_IS` and
:data:`_KINDED_FIELDS`; ``message`` (a log's free text) is used only as the
body when the tool opted in (and never left in the record); any other field
is dropped."""

_KNOWN = _AS_IS | _KINDED_FIELDS.keys() | _FIELDS.keys()


_Plan = tuple[tuple[Any, ...], tuple[tuple[str, Kind, Any], ...], tuple[tuple[str, Handler], ...]]
_plans: dict[tuple[Any, ...], _Plan] = {}


def _plan(record: dict[str, Any]) -> _Plan:
    """What :meth:`Anonymizer.scrub` does with a record's fields: (unknown ones,
    kinded ones, handled ones), worked out once per set of fields in order (a
    process makes records of a few shapes)."""
    fields = tuple(record)
    try:
        return _plans[fields]
    except KeyError:
        pass
    plan: _Plan = (
        tuple(f for f in fields if f not in _KNOWN),
        tuple((f, *_KINDED_FIELDS[f]) for f in fields if f in _KINDED_FIELDS),
        tuple((f, _FIELDS[f]) for f in fields if f in _FIELDS),
    )
    if len(_plans) >= 256:  # shapes are few: stay bounded
        _plans.clear()
    _plans[fields] = plan
    return plan
