"""The opt-out policy's one-time notice: what is collected, how to turn it off.

Under the ``opt-out`` policy nothing is sent until the notice reached a
person, once per ``notice_version``: it counts only when stderr is a
terminal, or a notebook's output (a Jupyter kernel's stream); into a pipe,
a file or ``/dev/null`` it is not printed, not recorded, and sending stays
off (fail closed). It is recorded before it is printed, so two processes
starting together show it once, and a notice that cannot be recorded keeps
sending off.

A tool may word the first part itself (``init(notice_text=...)``) and add a
link (``init(notice_url=...)``); how to turn it off is always optel's own
line, so it is never missing.
"""

from __future__ import annotations

import os
import stat
import sys

from .. import _errors, collected
from ..commands import command, plain, prefix
from ..config import Paths
from .store import note_notice

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

MAX_TEXT = 1000
MAX_LINES = 10
MAX_URL = 300


def check_text(text: Any) -> str | None:
    """A tool's own notice wording, validated (``ValueError``); ``None`` or an empty
    string stays optel's."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise ValueError(f"notice_text must be a string or None, got {text!r}")
    text = text.strip()
    if len(text) > MAX_TEXT or text.count("\n") >= MAX_LINES:
        raise ValueError(f"notice_text must be at most {MAX_TEXT} characters in {MAX_LINES} lines")
    if any(ch != "\n" and not ch.isprintable() for ch in text):
        raise ValueError("notice_text must not hold control characters (a terminal obeys them)")
    return text


def check_url(url: Any) -> str | None:
    """The notice's link, validated (``ValueError``): an http(s) URL without spaces
    (``None`` or an empty string: no link)."""
    if url is None or (isinstance(url, str) and not url.strip()):
        return None
    if (
        not isinstance(url, str)
        or not url.startswith(("https://", "http://"))
        or len(url) > MAX_URL
        or any(ch.isspace() or not ch.isprintable() for ch in url)
    ):
        raise ValueError(
            f"notice_url must be an http:// or https:// URL of at most {MAX_URL} characters"
            f" without spaces, got {url!r}"
        )
    return url


def notice_text(
    app: str, text: str | None = None, url: str | None = None, free_text: bool = False
) -> str:
    """The one-time notice of an opt-out tool: what is collected, how to turn it off.

    Optel's wording of what is collected is the generated page's summary
    (:func:`optel.collected.in_short`); ``free_text`` says whether the tool
    opted in to sending messages.
    """
    lines = [text or collected.in_short(app, free_text)]
    if url:
        lines.append(f"Details: {url}")
    # naming the tool's own commands when it offers them (optel.commands)
    describe = f" '{command('describe', app)}' lists all of it." if prefix(app) else ""
    lines.append(
        f"Turn it off with '{command('opt-out', app)}' (or for every tool:"
        f" '{command('opt-out', app, every_tool=True)}', or set DO_NOT_TRACK=1);"
        f" '{plain('show', app)}' shows what waits to be sent.{describe}"
        " This notice is shown once."
    )
    return "\n".join(lines)


def _in_notebook_output(stream: Any) -> bool:
    """``stream`` is a Jupyter kernel's output stream (shown in the notebook)."""
    from .. import system

    return system.in_notebook() and type(stream).__module__.split(".")[0] == "ipykernel"


def why_unseen(stream: Any) -> str | None:
    """Why text written to ``stream`` would reach no person now, or ``None`` when
    it would: a terminal, or a notebook's output."""
    if stream is None:
        return "there is no stderr"
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        pass
    if _in_notebook_output(stream):
        return None
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, ValueError, OSError):
        return "stderr is not a terminal"
    if stat.S_ISFIFO(mode):
        return "stderr is a pipe"
    if stat.S_ISREG(mode):
        return "stderr is a file"
    if stat.S_ISCHR(mode):
        return "stderr is /dev/null or another device, not a terminal"
    if stat.S_ISSOCK(mode):
        return "stderr is a socket"
    return "stderr is not a terminal"


def show_notice(
    app: str,
    notice_version: int,
    p: Paths,
    text: str | None = None,
    url: str | None = None,
    stream: Any = None,
    free_text: bool = False,
) -> bool:
    """Record, then print, the opt-out notice on ``stream`` (default stderr),
    which the caller found to reach a person (:func:`why_unseen`).

    ``False`` (stay off) when it cannot be recorded: a notice that cannot be
    remembered would be shown on every run, and state that cannot be written
    means off. When another process recorded it first it is not printed again.
    """
    stream = sys.stderr if stream is None else stream
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
            lines = notice_text(app, text, url, free_text).splitlines()
            stream.write("\n".join("optel: " + line for line in lines) + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not hurt the host
            pass
    return True
