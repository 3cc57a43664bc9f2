"""What a recorded decision does to the state on disk.

The one place, used by ``optel opt-in/opt-out`` and by the prompt alike.
"""

from __future__ import annotations

import os

from ..config import Paths
from .store import GRANTED


def take_effect(decision: str, app: str | None, p: Paths) -> int:
    """Apply a decision already recorded for ``app`` (or, without one, for every
    tool); returns the number of waiting records deleted.

    A grant creates the random client id (at the first grant). A refusal
    deletes what waits in the spool (for ``app``, or for every tool) and the
    client id, so a later grant starts with a new one. Record first (a sender
    checking meanwhile then already sees a refusal), then call this.
    """
    from .. import identity  # only here: a process that never decides never loads them

    if decision == GRANTED:
        identity.client_id(p)
        return 0
    removed = 0
    if os.path.exists(p.spool):  # no spool yet: nothing waits, and none is created
        from ..spool import Spool

        spool = Spool(p.spool)
        try:
            removed = spool.purge(app)
        finally:
            spool.close()
    identity.forget(p)
    return removed
