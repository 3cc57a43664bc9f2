"""Anonymous identity: a random client id per install, a session id per process.

The client id is a uuid4 (122 random bits) created at the first grant, never
derived from hardware (no MAC address, no host name, no uuid1), and deleted
by ``optel opt-out`` so a later opt-in starts over with a new one. A stored
id that is not a uuid4 (hand-made, or written by a tool that derived it from
hardware) is replaced rather than sent.

The session id is per process (a forked child gets its own): a number-like
string, as GA4 expects, made of the start time and random digits so two
processes started in the same second do not share one.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid

from . import _fs
from .config import Paths


def _new_session_id() -> str:
    # seconds since the epoch, then 6 random digits: unique per process, sortable
    return f"{int(time.time())}{secrets.randbelow(10**6):06d}"


_SESSION_ID = _new_session_id()
_PID = os.getpid()


def session_id() -> str:
    """Id of this process's session (new in a forked child)."""
    global _SESSION_ID, _PID
    if os.getpid() != _PID:
        _PID = os.getpid()
        _SESSION_ID = _new_session_id()
    return _SESSION_ID


def is_random_id(value: object) -> bool:
    """True for a canonical uuid4 string: the only kind of client id optel sends."""
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value


def _stored(p: Paths) -> str | None:
    try:
        data = _fs.read_json(p.identity)
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and is_random_id(data.get("client_id")):
        return str(data["client_id"])
    return None


def client_id(p: Paths, create: bool = True) -> str | None:
    """The install's random client id; created (under the lock) when missing."""
    found = _stored(p)
    if found or not create:
        return found
    with _fs.file_lock(p.lock):
        found = _stored(p)  # another process may have just made one
        if found:
            return found
        new = str(uuid.uuid4())
        _fs.write_json_atomic(
            p.identity, {"schema": 1, "client_id": new, "created": int(time.time())}
        )
        return new


def forget(p: Paths) -> None:
    """Delete the client id (opt-out); the next grant creates a new one."""
    if not os.path.lexists(p.identity):
        return
    with _fs.file_lock(p.lock):  # not while another process is creating one
        _fs.remove(p.identity)
