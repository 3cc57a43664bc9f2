"""The one place where optel's own failures are contained.

optel runs inside other people's programs: at run time nothing it does may
raise into the host. Every entry point from host code, and every step of the
worker thread, runs inside :func:`guard`. In production a failure is logged
once per kind and swallowed; the test suite sets :data:`RAISE` so bugs are
never hidden from tests.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Iterator

RAISE = False
"""Re-raise internal errors (set by the test suite, never in production)."""

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Print one clear line to stderr, once per process for ``key``."""
    if key in _warned:
        return
    _warned.add(key)
    try:
        sys.stderr.write(f"optel: {message}\n")
        sys.stderr.flush()
    except Exception:  # a closed stderr must not hurt the host either
        pass


def warn_invalid(var: str, why: str, using: str) -> None:
    """The one line for an environment variable whose value is not taken, once
    per process: ``VAR is not valid (WHY); using USING instead``."""
    warn_once(f"env:{var}", f"{var} is not valid ({why}); using {using} instead")


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Swallow (and log once) any exception raised in the block."""
    try:
        yield
    except Exception as exc:
        if RAISE:
            raise
        if what not in _warned:
            _warned.add(what)
            import logging  # only on failure: keeps ``import optel`` cheap

            logger = logging.getLogger("optel")
            logger.debug("optel: internal error in %s", what, exc_info=True)
            logger.warning("optel: internal error in %s: %s", what, type(exc).__name__)
        _ = exc
