"""The anonymizer: what may leave the machine, and in what form.

Runs on the worker thread on every record before it is written to the
spool, so nothing unscrubbed reaches the disk. Three small modules hold the
rules, none of them imports OpenTelemetry:

- :mod:`.keys`: the key policy (allowlist first, deny list always wins);
- :mod:`.values`: value scrubbers with typed placeholders (``RULES``, in
  order, each with a cheap hint), memoized;
- :mod:`.exceptions`: failure reports with module-relative frames.

(:mod:`.hashing` holds ``optel.hashed``: keyed hashes, salt kept local.)

Precedence: a denied key is dropped even when declared; an allowed key's
value is still scrubbed; a record field this package does not know is
scrubbed as text or as attributes, never passed through (fail closed).
The pipeline talks to it only through :class:`Anonymizer`.
"""

from __future__ import annotations

from typing import Any, Iterable

from .exceptions import is_traceback, scrub_traceback_text
from .keys import SAFE_KEYS, SAFE_PREFIXES, KeyPolicy, denied
from .values import scrub_text, scrub_value

__all__ = [
    "Anonymizer",
    "KeyPolicy",
    "SAFE_KEYS",
    "SAFE_PREFIXES",
    "denied",
    "scrub_text",
    "scrub_value",
]

# Record fields (see optel.records) that hold no free text: ids, times,
# enums, numbers, and what the tool author set in init (app, version).
_AS_IS = frozenset(
    {
        "signal", "app", "version", "policy", "session_id", "time", "time_ns", "trace_id",
        "span_id", "parent_span_id", "kind", "start_ns", "end_ns", "links", "severity",
        "type", "monotonic", "temporality", "dropped_attributes",
    }
)  # fmt: skip
_TEXT = frozenset({"name", "description", "unit", "body"})
_SMALL = frozenset({"status", "scope", "report"})
_KNOWN = _AS_IS | _TEXT | _SMALL | {"attributes", "resource", "events", "points"}


class Anonymizer:
    """Key allowlist plus value scrubbing for optel records.

    Dropped attributes are counted on the record (``dropped_attributes``),
    like the collector's redaction processor summary.
    """

    def __init__(self, declared: Iterable[str] = ()):
        self.keys = KeyPolicy(declared)
        self._resources: dict[int, tuple[dict[str, Any], dict[str, Any], int]] = {}

    def declare(self, keys: Iterable[str]) -> None:
        # telemetry.event() declares its keys on every call: rescrub the
        # resources only when the allowlist actually grew
        if self.keys.declare(keys):
            self._resources.clear()

    def allowed(self, key: str) -> bool:
        return self.keys.allowed(key)

    def attributes(self, attrs: dict[str, Any], dropped: list[int]) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        allowed = self.keys.allowed
        for key, value in attrs.items():
            if not allowed(key):
                dropped[0] += 1
                continue
            if key == "exception.stacktrace" and isinstance(value, str) and is_traceback(value):
                kept[key] = scrub_traceback_text(value)
            elif type(value) is str:
                kept[key] = scrub_text(value)
            else:
                kept[key] = scrub_value(value)
        return kept

    def _resource(self, resource: dict[str, Any]) -> tuple[dict[str, Any], int]:
        # Records of one process share one resource dict: scrub it once.
        hit = self._resources.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1], hit[2]
        dropped = [0]
        clean = self.attributes(resource, dropped)
        if len(self._resources) > 64:
            self._resources.clear()
        self._resources[id(resource)] = (resource, clean, dropped[0])
        return clean, dropped[0]

    def _event(self, event: dict[str, Any], dropped: list[int]) -> dict[str, Any]:
        out = dict(event)
        out["name"] = scrub_text(str(event.get("name", "")))
        out["attributes"] = self.attributes(event.get("attributes") or {}, dropped)
        return out

    def _point(self, point: dict[str, Any], dropped: list[int]) -> dict[str, Any]:
        out = dict(point)  # the rest is numbers: times, value, count, sum, buckets
        out["attributes"] = self.attributes(point.get("attributes") or {}, dropped)
        return out

    def scrub(self, record: dict[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of ``record`` (the input is left untouched).

        Every field is handled by name; a field this module does not know is
        treated as attributes when it is a mapping and as text otherwise, so
        a new record field can never slip through unscrubbed (fail closed).
        """
        out = dict(record)  # the _AS_IS fields stay as they are
        dropped = [0]
        for field in _TEXT.intersection(record):
            value = record[field]
            out[field] = scrub_text(value) if type(value) is str else scrub_value(value)
        if "attributes" in record:
            out["attributes"] = self.attributes(record["attributes"] or {}, dropped)
        if "resource" in record:
            out["resource"], _ = self._resource(record["resource"] or {})
        if "events" in record:
            out["events"] = [self._event(e, dropped) for e in record["events"] or ()]
        if "points" in record:
            out["points"] = [self._point(p, dropped) for p in record["points"] or ()]
        for field in _SMALL.intersection(record):
            # status {code, message}, scope {name, version}, report {type,
            # message, frames}: small structures of text
            value = record[field]
            out[field] = (
                {k: scrub_text(v) if type(v) is str else scrub_value(v) for k, v in value.items()}
                if isinstance(value, dict)
                else scrub_value(value)
            )
        unknown = () if record.keys() <= _KNOWN else record.keys() - _KNOWN
        for field in unknown:  # fail closed: a field added later is scrubbed too
            value = record[field]
            out[field] = (
                self.attributes(value, dropped) if isinstance(value, dict) else scrub_value(value)
            )
        if dropped[0]:
            out["dropped_attributes"] = out.get("dropped_attributes", 0) + dropped[0]
        return out
