"""The opt-out policy's one-time notice: what is collected, how to turn it off.

Shown on stderr, once per ``notice_version``, when :func:`.rule.notice_due`
says so; recorded before it is printed, so two processes starting together
show it once, and a notice that cannot be recorded keeps sending off.
"""

from __future__ import annotations

import sys

from .. import _errors
from ..commands import command
from ..config import Paths
from .store import note_notice


def notice_text(app: str) -> str:
    """The one-time notice of an opt-out tool: what is collected, how to turn it off
    (naming the tool's own commands when it offers them, see :mod:`optel.commands`)."""
    return (
        f"{app} sends anonymous usage telemetry (commands used, durations, errors with"
        " scrubbed stack traces, OS and Python versions; no file names, paths, user or host"
        " names) to help its authors improve it.\n"
        f"Turn it off with '{command('opt-out', app)}' (or for every tool:"
        f" '{command('opt-out', app, every_tool=True)}', or set DO_NOT_TRACK=1);"
        f" '{command('status', app)}' shows what is sent. This notice is shown once."
    )


def show_notice(app: str, notice_version: int, p: Paths) -> bool:
    """Record, then print, the opt-out notice; ``False`` (stay off) when it cannot
    be recorded: a notice that cannot be remembered would be shown on every run,
    and state that cannot be written means off (fail closed)."""
    try:
        new = note_notice(app, notice_version, p)
    except OSError as exc:
        _errors.warn_once(
            "consent-write",
            f"telemetry is off: cannot write {p.consent} ({exc.strerror or exc.__class__.__name__});"
            " set OPTEL_HOME to a writable folder",
        )
        return False
    if new:
        try:
            sys.stderr.write("\n".join("optel: " + line for line in notice_text(app).splitlines()))
            sys.stderr.write("\n")
            sys.stderr.flush()
        except Exception:  # a closed stderr must not hurt the host
            pass
    return True
