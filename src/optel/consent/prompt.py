"""Asking the user for consent, only when a person can answer now.

A tool may ask for consent (``optel.init(prompt=True)`` or
``telemetry.ask()``). optel asks only when a person can answer right now:

- stdin and stderr are a terminal and this process is the terminal's
  foreground job (a background job reading would be stopped by the shell);
- not in CI (even with ``OPTEL_ALLOW_CI=1``), not in a notebook kernel, not
  in a child process (``multiprocessing`` workers, or a process started by
  a process that already initialised optel: ``OPTEL_PARENT_PID``);
- not when the same question went unanswered less than 7 days ago.

The answers:

- ``y``/``yes`` grants, ``n``/``no`` refuses; Enter takes the shown default,
  which is always No (``[y/N]``), and records a refusal;
- an unclear answer (``yes please``) is asked once more; unclear again counts
  as no answer;
- no answer within the timeout (default 10 s, ``OPTEL_PROMPT_TIMEOUT_S``), end
  of input, or Ctrl-C records no decision (the policy applies; ``opt-in``:
  off) and the question waits 7 days (``asked`` in ``consent.json``);
- Ctrl-C ends the program quietly (exit status 130, as a shell reports an
  interrupted command), never with a traceback from inside optel.

It never blocks a non-interactive run: every check above is made before
anything is read, and reading waits on ``select`` with the timeout, so no
thread is left behind holding the host's stdin.
"""

from __future__ import annotations

import os
import sys
import time

from .. import _errors, env
from ..commands import command
from ..config import Paths
from .effect import take_effect
from .rule import UNSET, Decision, kill_switch
from .store import (
    DENIED,
    GRANTED,
    ConsentFileError,
    asked_recently,
    cached_records,
    note_asked,
    record,
)

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Mapping, TextIO

PARENT_ENV = env.OPTEL_PARENT_PID


def default_timeout(environ: Mapping[str, str] | None = None) -> float:
    """The prompt's timeout: the ``prompt_timeout_s`` setting (``OPTEL_PROMPT_TIMEOUT_S``)."""
    from ..config import resolve

    return float(resolve(environ=environ)["prompt_timeout_s"])


def _collected(app: str, free_text: bool = False) -> str:
    from .. import collected  # the same words as the notice and the generated page

    return collected.in_short(app, free_text, asking=True)


def question_text(app: str, policy: str, timeout_s: float, free_text: bool = False) -> str:
    return (
        f"{_collected(app, free_text)}\n"
        f"You can change your answer at any time with '{command('opt-in', app)}'"
        f" / '{command('opt-out', app)}'.\n"
        f"Share anonymous usage statistics for {app}? [y/N]"
        f" (Enter means no; no answer in {int(timeout_s)} s asks again in 7 days) "
    )


AGAIN = "Please answer y or n: "


def is_child(environ: Mapping[str, str] | None = None) -> bool:
    """True in a child of a process that uses optel, or a multiprocessing worker."""
    environ = os.environ if environ is None else environ
    parent = environ.get(PARENT_ENV, "").strip()
    if parent and parent != str(os.getpid()):
        return True
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        try:
            return mp.parent_process() is not None  # type: ignore[attr-defined]
        except Exception:
            return False
    return False


def mark_parent() -> None:
    """Let child processes know that this process owns the conversation."""
    os.environ.setdefault(PARENT_ENV, str(os.getpid()))


def why_not(
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
    free_text: bool = False,
) -> str | None:
    """Why optel must not ask now, or ``None`` when it may."""
    from .. import system  # only when asking: it imports platform and threading

    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    if env.ci_variable(environ):
        return "a CI run"
    if system.in_notebook():
        return "a notebook"
    if is_child(environ):
        return "a child process"
    try:
        if stdin is None or stderr is None or not stdin.isatty() or not stderr.isatty():
            return "not an interactive terminal"
        fd = stdin.fileno()
        if hasattr(os, "tcgetpgrp") and os.tcgetpgrp(fd) != os.getpgrp():
            return "a background job"
    except (OSError, ValueError, AttributeError):
        return "not an interactive terminal"
    return None


class _Lines:
    """Lines typed on ``stdin``, each waited for at most a timeout.

    Reads the descriptor itself (``os.read``), so a line already typed is
    never stuck in a Python buffer that ``select`` cannot see; whatever
    follows the answer stays unread by the host only on a terminal, where
    each read returns one line anyway.
    """

    def __init__(self, stdin: TextIO):
        self.stdin = stdin
        self.pending = b""
        try:
            self.fd: int | None = stdin.fileno()
        except (AttributeError, ValueError, OSError):
            self.fd = None

    def read(self, timeout_s: float) -> str | None:
        """One line within ``timeout_s``; ``None`` on timeout or end of input."""
        deadline = time.monotonic() + timeout_s
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import msvcrt

            chars: list[str] = []
            while time.monotonic() < deadline:
                if msvcrt.kbhit():  # type: ignore[attr-defined]
                    ch = msvcrt.getwche()  # type: ignore[attr-defined]
                    if ch in "\r\n":
                        return "".join(chars)
                    chars.append(ch)
                else:
                    time.sleep(0.05)
            return None
        import select

        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select(
                [self.fd if self.fd is not None else self.stdin], [], [], left
            )
            if not ready:
                continue
            if self.fd is None:
                text = self.stdin.readline()
                return text if text else None  # "" is end of input
            chunk = os.read(self.fd, 1024)
            if not chunk:  # end of input
                return None
            self.pending += chunk
        typed, _, self.pending = self.pending.partition(b"\n")
        return typed.decode("utf-8", "replace")


UNCLEAR = "unclear"


def parse_answer(text: str | None) -> str | None:
    """``granted``, ``denied``, :data:`UNCLEAR`, or ``None`` (no answer: timeout
    or end of input) for what was typed. Enter alone takes the shown default, No."""
    if text is None:
        return None
    word = text.strip().lower()
    if word in ("y", "yes"):
        return GRANTED
    if word in ("n", "no", ""):
        return DENIED
    return UNCLEAR


def _snooze(app: str, p: Paths) -> None:
    """No answer: remember it, so the question waits 7 days (best effort)."""
    try:
        note_asked(app, p)
    except OSError:
        pass  # not remembered: asked again next run, still nothing recorded


def _say(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except Exception:  # a closed terminal must not hurt the host
        pass


def ask(
    app: str,
    p: Paths,
    notice_version: int | None = None,
    policy: str = "opt-in",
    timeout_s: float | None = None,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
    free_text: bool = False,
) -> str | None:
    """Ask, record the answer for ``app`` (source ``prompt``) and return it
    (``granted`` or ``denied``).

    Returns ``None`` without asking when :func:`why_not` says no, and when no
    clear answer came (see the module docstring: the question then waits 7
    days). Ctrl-C raises ``SystemExit(130)`` after saying that nothing was
    recorded. The answer takes effect like ``optel opt-in/opt-out``
    (:func:`.effect.take_effect`): a "no" deletes what waits in the spool for
    ``app``, the client id and the hashing salt.
    """
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    timeout_s = default_timeout() if timeout_s is None else timeout_s
    if timeout_s <= 0 or why_not(None, stdin, stderr) is not None:
        return None
    mark_parent()  # children of this process never ask again
    try:  # from the first character shown: Ctrl-C may come at any moment
        _say(stderr, question_text(app, policy, timeout_s, free_text))
        lines = _Lines(stdin)
        answer = parse_answer(lines.read(timeout_s))
        if answer == UNCLEAR:
            _say(stderr, AGAIN)
            answer = parse_answer(lines.read(timeout_s))
    except KeyboardInterrupt:
        try:
            _say(stderr, "\n(no decision recorded; Ctrl-C)\n")
            _snooze(app, p)
        except KeyboardInterrupt:  # pressed again: just go
            pass
        raise SystemExit(130) from None  # quiet, as an interrupted command; no traceback
    if answer not in (GRANTED, DENIED):
        _say(stderr, "\n(no decision recorded; not asked again for 7 days)\n")
        _snooze(app, p)
        return None
    try:
        record(answer, app, "prompt", p, notice_version)
        take_effect(answer, app, p)
    except OSError as exc:
        _errors.warn_once(
            "consent-write",
            f"telemetry is off: could not record your answer ({exc.__class__.__name__})",
        )
        return None
    if answer == DENIED:
        _say(stderr, f"(no: nothing is sent for {app}; '{command('opt-in', app)}' changes it)\n")
    return answer


def should_ask(d: Decision, notice_version: int, p: Paths | None = None) -> bool:
    """No decision yet (and not asked in the last 7 days), or a grant made at a
    prompt for an older notice of this tool.

    A refusal is never asked again (that would be nagging); a broken record
    or a kill switch means asking could not turn anything on.
    """
    if d.broken or kill_switch(os.environ):
        return False
    if d.consent == UNSET:
        from ..config import paths

        try:
            return not asked_recently(cached_records(p or paths()), d.app)
        except ConsentFileError:
            return False
    return (
        d.consent == GRANTED
        and d.source == "prompt"
        and d.notice_version is not None
        and d.notice_version < notice_version
    )
