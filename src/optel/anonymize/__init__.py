"""The anonymizer: what may leave the machine, and in what form.

Runs on the worker thread on every record before it is written to the
spool, so nothing unscrubbed reaches the disk. Three small modules hold the
rules, none of them imports OpenTelemetry:

- :mod:`.keys`: the key policy (allowlist first, deny list always wins);
- :mod:`.values`: value scrubbers with typed placeholders;
- :mod:`.exceptions`: failure reports with module-relative frames.

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

_NAME_FIELDS = ("name", "description")


class Anonymizer:
    """Key allowlist plus value scrubbing for optel records.

    Dropped attributes are counted on the record (``dropped_attributes``),
    like the collector's redaction processor summary.
    """

    def __init__(self, declared: Iterable[str] = ()):
        self.keys = KeyPolicy(declared)
        self._resources: dict[int, tuple[dict[str, Any], dict[str, Any], int]] = {}

    def declare(self, keys: Iterable[str]) -> None:
        self.keys.declare(keys)
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

    def scrub(self, record: dict[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of ``record`` (the input is left untouched)."""
        out = dict(record)
        dropped = [0]
        for field in _NAME_FIELDS:
            if isinstance(out.get(field), str):
                out[field] = scrub_text(out[field])
        if "attributes" in out:
            out["attributes"] = self.attributes(out["attributes"], dropped)
        if "resource" in out:
            out["resource"], _ = self._resource(out["resource"])
        if "status" in out and isinstance(out["status"], dict):
            out["status"] = {**out["status"], "message": scrub_text(out["status"].get("message") or "")}
        if "scope" in out and isinstance(out["scope"], dict):
            out["scope"] = {**out["scope"], "name": scrub_text(out["scope"].get("name") or "")}
        if "events" in out:
            out["events"] = [
                {
                    **e,
                    "name": scrub_text(e.get("name", "")),
                    "attributes": self.attributes(e.get("attributes", {}), dropped),
                }
                for e in out["events"]
            ]
        if "points" in out:
            out["points"] = [
                {**p, "attributes": self.attributes(p.get("attributes", {}), dropped)}
                for p in out["points"]
            ]
        if "body" in out:
            out["body"] = scrub_value(out["body"])
        if "report" in out and isinstance(out["report"], dict):
            rep = out["report"]
            out["report"] = {**rep, "message": scrub_text(rep.get("message", ""))}
        if dropped[0]:
            out["dropped_attributes"] = dropped[0]
        return out
