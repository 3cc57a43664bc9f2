"""optel's own ``local`` destination as a report source.

Records routed to ``local`` never leave the machine: they wait in the spool
of a state folder (``OPTEL_HOME``), where ``optel show`` lists them. The
report reads the event and log records there and has the ``otlp``
destination render them: the OTLP JSON the gateway would have stored, so
one reading path serves both sources. They are one install: they get
the install id :data:`INSTALL`, not the machine's real one (a report page
may be shared).
"""

from __future__ import annotations

import json
import os
from typing import Any

INSTALL = "local"
LIMIT = 1_000_000  # far above the spool's own bound


def _record(payload: str) -> dict[str, Any] | None:
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def lines(home: str | os.PathLike[str]) -> list[str]:
    """OTLP JSON log lines (one export request each) of the ``local`` records
    waiting in the state folder ``home``; [] when there is no spool."""
    from ..config import paths, resolve
    from ..exporters import otlp
    from ..spool import Spool

    path = paths({"OPTEL_HOME": os.fspath(home)}).spool
    if not os.path.exists(path):
        return []
    spool = Spool(path)
    try:
        rows = spool.pending("local", limit=LIMIT)
    finally:
        spool.close()
    # the otlp destination's own rendering: what it would have sent
    render = otlp.Destination(resolve(environ={"OPTEL_HOME": os.fspath(home)})).render
    out = []
    for row in rows:
        rec = _record(row.payload)
        if rec is None or rec.get("signal") not in ("event", "log"):
            continue  # spans and metrics answer none of the report's questions
        rec = {**rec, "resource": {**(rec.get("resource") or {}), otlp.INSTALL_ID: INSTALL}}
        line = render(rec)
        if line is not None:  # one line: JSON escapes the newlines inside strings
            out.append(line)
    return out
