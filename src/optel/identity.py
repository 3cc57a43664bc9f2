"""Anonymous identity: a random client id per install, a session id per process.

The client id is a uuid4 created at the first grant, never derived from
hardware, and deleted by ``optel opt-out`` so a later opt-in starts over.
"""

from __future__ import annotations

import os
import time
import uuid

from . import _fs
from .config import Paths

_SESSION_ID = str(int(time.time()))  # per process; GA4 wants a number-like id
_PID = os.getpid()


def session_id() -> str:
    """Id of this process's session (new in a forked child)."""
    global _SESSION_ID, _PID
    if os.getpid() != _PID:
        _PID = os.getpid()
        _SESSION_ID = str(int(time.time() * 1000) % 10**12)
    return _SESSION_ID


def client_id(p: Paths, create: bool = True) -> str | None:
    """The install's random client id; created (under the lock) when missing."""
    try:
        data = _fs.read_json(p.identity)
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("client_id"), str):
        return data["client_id"]
    if not create:
        return None
    with _fs.file_lock(p.lock):
        try:
            data = _fs.read_json(p.identity)
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("client_id"), str):
            return data["client_id"]
        new = str(uuid.uuid4())
        _fs.write_json_atomic(p.identity, {"schema": 1, "client_id": new, "created": int(time.time())})
        return new


def forget(p: Paths) -> None:
    """Delete the client id (opt-out); the next grant creates a new one."""
    try:
        os.unlink(p.identity)
    except FileNotFoundError:
        pass
