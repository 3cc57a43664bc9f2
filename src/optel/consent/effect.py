"""What a recorded decision does to the state on disk.

The one place, used by ``optel opt-in/opt-out`` and by the prompt alike.
"""

from __future__ import annotations

import os
import time

from .. import _errors, _fs
from ..config import Paths
from .store import GRANTED

WIPE_WAIT_S = 3.0
"""Longest a refusal waits, in all, for another process using the spool (a
tool writing, ``optel show`` reading) before it leaves the last copies in
SQLite's log to be cleared when that process lets go."""


def take_effect(decision: str, app: str | None, p: Paths) -> int:
    """Apply a decision already recorded for ``app`` (or, without one, for every
    tool); returns the number of waiting records deleted.

    A grant creates the random client id (at the first grant). A refusal
    forgets what could link this machine's past data to its future data:
    what waits in the spool and the log of what was sent (for ``app``, its
    name compared case-insensitively, or for every tool), with no copy left
    in the SQLite files (secure delete, the write-ahead log truncated); the
    client id and the hashing salt (so later ids and ``optel.hashed`` values
    cannot be linked to earlier ones); and the spool copies once moved aside
    as unreadable (they hold records too). Record first (a sender checking
    meanwhile then already sees a refusal), then call this. Never raises for
    a spool in use or unusable: it says so in one line, and senders drop the
    refused records anyway (they check consent before every send).
    """
    from .. import identity  # only here: a process that never decides never loads them

    if decision == GRANTED:
        identity.client_id(p)
        return 0
    removed = _forget_spooled(app, p)
    for aside in _fs.kept_aside(p.spool, companions=True):
        _fs.remove(aside)
    identity.forget(p)
    from ..anonymize import hashing

    hashing.forget(p)
    return removed


def _forget_spooled(app: str | None, p: Paths) -> int:
    # no spool yet: nothing waits, and none is created; a link is never opened
    if not os.path.isfile(p.spool) or os.path.islink(p.spool):
        return 0
    import sqlite3

    from ..spool import Spool

    end = time.monotonic() + WIPE_WAIT_S  # all of it: the prompt runs inside a host
    spool = Spool(p.spool, busy_timeout_s=WIPE_WAIT_S)
    try:
        removed = spool.purge(app)
        if not spool.wipe(max(0.0, end - time.monotonic())):
            _errors.warn_once(
                "spool-wipe",
                f"another process is reading the spool {p.spool}: the deleted records'"
                " last copies in its write-ahead log are cleared when that process lets go",
            )
        return removed
    except sqlite3.Error as exc:
        _errors.warn_once(
            "spool-purge",
            f"could not delete what waits in the spool {p.spool} now ({exc}); nothing of it"
            " is sent: every sender checks consent first and drops it",
        )
        return 0
    finally:
        spool.close()
