"""Keyed hashes for values a tool wants to group without revealing them.

HMAC-SHA256 with a random per-install salt that never leaves the machine:
the same value gives the same hash on this install, and nobody without the
salt can test guesses against it (a plain hash of an email is reversible by
trying emails).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .. import _errors, _fs
from ..config import paths

_salt: bytes | None = None


def _load_salt() -> bytes | None:
    global _salt
    if _salt is not None:
        return _salt
    p = paths()
    file = p.salt
    try:
        data = _fs.read_json(file)
        if isinstance(data, dict) and isinstance(data.get("salt"), str):
            _salt = bytes.fromhex(data["salt"])
            return _salt
        with _fs.file_lock(p.lock):
            data = _fs.read_json(file)  # another process may have won the race
            if not (isinstance(data, dict) and isinstance(data.get("salt"), str)):
                data = {"schema": 1, "salt": secrets.token_hex(32)}
                _fs.write_json_atomic(file, data)
        _salt = bytes.fromhex(data["salt"])
    except (OSError, ValueError) as exc:
        _errors.warn_once("salt", f"cannot keep a hashing salt ({exc}); hashed values are withheld")
        return None
    return _salt


def hashed(value: object) -> str:
    """``h:`` and 16 hex digits of HMAC-SHA256(salt, value); ``<hashed>`` when no salt."""
    salt = _load_salt()
    if salt is None:
        return "<hashed>"
    digest = hmac.new(salt, str(value).encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return "h:" + digest[:16]
