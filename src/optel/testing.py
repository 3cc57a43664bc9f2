"""Helpers for testing code that uses optel (optel's own tests use them too).

They read what optel keeps instead of reaching into its objects::

    import optel, optel.testing

    t = optel.init(app="mytool")   # with consent, and OPTEL_HOME set to a temporary folder
    t.event("used", framework="onnx")
    t.flush(0)                     # writes what was recorded to the spool; sends nothing
    rows = optel.testing.pending() # what waits to be sent, exactly as it would be sent
    assert [r.signal for r in rows] == ["event"]

Without a destination configured records stay local (``local``), so nothing
leaves the machine during a test.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import config, env

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .spool import Row

__all__ = ["pending", "stats", "pipeline"]


def _spool_path(home: str | os.PathLike[str] | None) -> str:
    environ = None if home is None else {**os.environ, env.OPTEL_HOME: os.fspath(home)}
    return config.paths(environ).spool


def pending(
    home: str | os.PathLike[str] | None = None, destination: str | None = None, limit: int = 1000
) -> list[Row]:
    """Records waiting in the spool of ``home`` (default: ``OPTEL_HOME`` or the
    per-user folder), for ``destination`` or all, oldest first. Creates nothing."""
    path = _spool_path(home)
    if not os.path.exists(path):
        return []

    from . import delivery, exporters
    from .spool import Spool

    spool = Spool(path)
    try:
        rows = spool.pending(destination, limit)
    finally:
        spool.close()
    # the spool keeps records; each destination renders them, as optel show does
    environ = None if home is None else {**os.environ, env.OPTEL_HOME: os.fspath(home)}
    with exporters.Destinations(config.resolve(environ=environ)) as dests:
        return [
            r._replace(payload=delivery.shown(r, dests.get(r.destination)) or "", rendered=True)
            for r in rows
        ]


def stats(home: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """The spool's counters (``sent``, ``dropped_<reason>``, ...) in ``home``."""
    path = _spool_path(home)
    if not os.path.exists(path):
        return {}
    from .spool import Spool

    spool = Spool(path)
    try:
        return spool.stats()
    finally:
        spool.close()


def pipeline(telemetry: Any) -> Pipeline | None:
    """The pipeline behind an enabled telemetry object (``None`` when off), for
    tests that drive it: ``flush``, ``drain``, ``stop_worker``, ``queued``."""
    return getattr(telemetry, "_pipeline", None)
