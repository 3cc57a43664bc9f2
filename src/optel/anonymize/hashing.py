"""Keyed hashes for values a tool wants to group without revealing them.

HMAC-SHA256 with a random per-install salt that never leaves the machine:
the same value gives the same hash on this install, and nobody without the
salt can test guesses against it (a plain hash of an email is reversible by
trying emails).

The salt lives in ``salt.json`` (32 random bytes as hex). ``optel opt-out``
deletes it (:func:`forget`), so values hashed afterwards cannot be linked to
earlier ones; a process that already loaded it notices the change (the
file's identity is checked on each use). A salt file that is not exactly
what optel writes (planted, truncated, nested, a link) is never used: a new
salt replaces it, and when none can be kept, hashed values are withheld.
Nothing here raises into the host.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets

from .. import _errors, _fs
from ..config import Paths, paths

_HEX64 = re.compile(r"[0-9a-f]{64}")

# (path, the file's (mtime_ns, size, inode)) -> salt: a salt replaced or
# deleted by another process is read again, never kept from memory
_cache: tuple[str, tuple[int, int, int], bytes] | None = None
# a preview (OPTEL_DEBUG) writes nothing: without a salt file, this one, in memory
_preview_salt: bytes | None = None


def preview() -> None:
    """From now on this process writes no salt: it uses the one on disk, else a
    random one kept in memory (an OPTEL_DEBUG preview sends and keeps nothing)."""
    global _preview_salt
    if _preview_salt is None:
        _preview_salt = secrets.token_bytes(32)


def _valid(data: object) -> bytes | None:
    if isinstance(data, dict):
        value = data.get("salt")
        if isinstance(value, str) and _HEX64.fullmatch(value):
            return bytes.fromhex(value)
    return None


def _key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read(path: str) -> bytes | None:
    try:
        return _valid(_fs.read_json(path))
    except (OSError, ValueError):
        return None


def _load_salt(p: Paths | None = None) -> bytes | None:
    global _cache
    p = p or paths()
    path = p.salt
    key = _key(path)
    if _cache is not None and key is not None and _cache[:2] == (path, key):
        return _cache[2]
    if _preview_salt is not None:
        return _read(path) or _preview_salt
    try:
        salt = _read(path)
        if salt is None:
            with _fs.file_lock(p.lock):
                salt = _read(path)  # another process may have won the race
                if salt is None:  # missing, or not one optel wrote: a new one
                    salt = secrets.token_bytes(32)
                    _fs.write_json_atomic(path, {"schema": 1, "salt": salt.hex()})
        key = _key(path)
    except (OSError, ValueError) as exc:
        _errors.warn_once(
            "salt",
            f"cannot keep a hashing salt ({exc.__class__.__name__}); hashed values are withheld",
        )
        return None
    if key is not None:
        _cache = (path, key, salt)
    return salt


def forget(p: Paths) -> None:
    """Delete the salt (opt-out): values hashed later cannot be linked to earlier ones."""
    global _cache
    _cache = None
    if not os.path.lexists(p.salt):
        return
    with _fs.file_lock(p.lock):
        _fs.remove(p.salt)


def hashed(value: object) -> str:
    """``h:`` and 16 hex digits of HMAC-SHA256(salt, value); ``<hashed>`` when no salt."""
    try:
        salt = _load_salt()
    except Exception:  # e.g. an unusable OPTEL_HOME: never into the host
        salt = None
    if salt is None:
        return "<hashed>"
    digest = hmac.new(salt, str(value).encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return "h:" + digest[:16]
