"""What a recorded decision does to the state on disk.

The one place, used by ``optel opt-in/opt-out`` and by the prompt alike.
"""

from __future__ import annotations

import os

from .. import _fs
from ..config import Paths
from .store import GRANTED


def take_effect(decision: str, app: str | None, p: Paths) -> int:
    """Apply a decision already recorded for ``app`` (or, without one, for every
    tool); returns the number of waiting records deleted.

    A grant creates the random client id (at the first grant). A refusal
    forgets what could link this machine's past data to its future data:
    what waits in the spool (for ``app``, or for every tool), the client id
    and the hashing salt (so later ids and ``optel.hashed`` values cannot be
    linked to earlier ones), and the spool copies once moved aside as
    unreadable (they hold records too). Record first (a sender checking
    meanwhile then already sees a refusal), then call this.
    """
    from .. import identity  # only here: a process that never decides never loads them

    if decision == GRANTED:
        identity.client_id(p)
        return 0
    removed = 0
    # no spool yet: nothing waits, and none is created; a link is never opened
    if os.path.isfile(p.spool) and not os.path.islink(p.spool):
        from ..spool import Spool

        spool = Spool(p.spool)
        try:
            removed = spool.purge(app)
        finally:
            spool.close()
    for aside in _fs.kept_aside(p.spool, companions=True):
        _fs.remove(aside)
    identity.forget(p)
    from ..anonymize import hashing

    hashing.forget(p)
    return removed
