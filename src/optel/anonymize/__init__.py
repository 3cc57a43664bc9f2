"""The anonymizer: what may leave the machine, and in what form.

Runs on every record before it is written to the spool. The pipeline talks
to it only through :class:`Anonymizer` (``declare`` keys, ``scrub`` a
record), so the rules can grow here without touching the pipeline.
"""

from __future__ import annotations

from typing import Any, Iterable

SAFE_KEYS = frozenset(
    {
        "service.name",
        "service.version",
        "telemetry.sdk.name",
        "telemetry.sdk.language",
        "telemetry.sdk.version",
        "os.type",
        "process.runtime.name",
        "process.runtime.version",
        "process.runtime.description",
        "exception.type",
        "exception.message",
        "exception.stacktrace",
    }
)
SAFE_PREFIXES = ("optel.",)


class Anonymizer:
    """Allowlist of attribute keys; every other key is dropped and counted."""

    def __init__(self, declared: Iterable[str] = ()):
        self._declared = set(declared)

    def declare(self, keys: Iterable[str]) -> None:
        self._declared.update(keys)

    def allowed(self, key: str) -> bool:
        return key in SAFE_KEYS or key in self._declared or key.startswith(SAFE_PREFIXES)

    def _attrs(self, attrs: dict[str, Any], dropped: list[int]) -> dict[str, Any]:
        kept = {k: v for k, v in attrs.items() if self.allowed(k)}
        dropped[0] += len(attrs) - len(kept)
        return kept

    def scrub(self, record: dict[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of ``record`` (the input is left untouched)."""
        out = dict(record)
        dropped = [0]
        for field in ("attributes", "resource"):
            if field in out:
                out[field] = self._attrs(out[field], dropped)
        if "events" in out:
            out["events"] = [
                {**e, "attributes": self._attrs(e.get("attributes", {}), dropped)}
                for e in out["events"]
            ]
        if "points" in out:
            out["points"] = [
                {**p, "attributes": self._attrs(p.get("attributes", {}), dropped)}
                for p in out["points"]
            ]
        if dropped[0]:
            out["dropped_attributes"] = dropped[0]
        return out
