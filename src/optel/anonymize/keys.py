"""Key policy: allowlist first, with a deny list that even a tool cannot override.

A key survives when it is built in (:data:`SAFE_KEYS`, :data:`SAFE_PREFIXES`)
or declared by the tool, and never when its name signals a secret or an
identity (:data:`DENY_WORDS`, :data:`DENY_KEYS`, :data:`DENY_PREFIXES`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

SAFE_KEYS = frozenset(
    {
        "service.name",
        "service.version",
        "service.namespace",
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
        "exception.escaped",
        "event.name",
        "code.function",
        "code.lineno",
    }
)
"""Keys safe by construction: what the tool is, not who runs it."""

SAFE_PREFIXES = ("optel.",)
"""optel's own facts (``optel.version``, ``optel.dropped_attributes``, ...)."""

SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "access-key",
    "auth",
    "cookie",
    "session",
    "credential",
    "private_key",
    "privatekey",
)
"""The one list of words that name a secret. A key holding one is dropped even
when declared; in free text, ``<word>=<value>`` has its value scrubbed
(:mod:`.values`)."""

DENY_WORDS = SECRET_WORDS
"""Substrings of a key name that signal a secret: dropped even when declared."""

DENY_KEYS = frozenset(
    {
        "client.address",
        "host.name",
        "host.ip",
        "host.mac",
        "host.id",
        "process.owner",
        "process.executable.path",
        "process.pid",
        "service.instance.id",
    }
)
"""Identity keys: dropped even when declared."""

DENY_PREFIXES = (
    "user.",
    "enduser.",
    "process.command",
    "net.peer.",
    "network.peer.",
    "client.",
)
"""Identity key families: dropped even when declared."""


@lru_cache(maxsize=4096)
def denied(key: str) -> bool:
    """True when ``key`` names a secret or an identity."""
    low = key.lower()
    if low in DENY_KEYS or low.startswith(DENY_PREFIXES):
        return True
    # optel's own counters may say "session" in their name; they are ours
    if low.startswith(SAFE_PREFIXES):
        return False
    return any(word in low for word in DENY_WORDS)


class KeyPolicy:
    """Which attribute keys may be kept: built-in safe keys plus declared ones."""

    def __init__(self, declared: Iterable[str] = ()):
        self._declared: set[str] = set()
        self._cache: dict[str, bool] = {}
        self.declare(declared)

    @property
    def declared(self) -> frozenset[str]:
        return frozenset(self._declared)

    def declare(self, keys: Iterable[str]) -> bool:
        """Add keys to the allowlist; True when any of them was new."""
        new = set(keys) - self._declared
        if new:
            self._declared |= new
            self._cache.clear()
        return bool(new)

    def allowed(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is None:
            hit = not denied(key) and (
                key in SAFE_KEYS or key in self._declared or key.startswith(SAFE_PREFIXES)
            )
            if len(self._cache) < 10_000:  # bounded: keys are few, but be safe
                self._cache[key] = hit
        return hit
