"""Crash capture: unhandled exceptions of the host, reported to each watching run.

``optel.init(..., capture_crashes=True)`` (per tool): :func:`install`
chains ``sys.excepthook`` and ``threading.excepthook`` to whatever was
installed before. The previous hook runs first and unchanged, so the user
sees exactly the traceback they would see without optel; then each watcher
(a run's ``crash`` method, :class:`optel.run.Run`) records the report and
writes it to the spool at once, and the exit hook delivers it within the
exit budget (or a later run / ``optel flush`` does). ``KeyboardInterrupt``
and ``SystemExit`` are not crashes. Without consent no hook is installed.

Failure reports themselves (deduplication, the counter, the span event)
belong to the run (:mod:`optel.run`); this module only owns the hooks.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

from . import _errors

Watcher = Callable[[BaseException, bool], None]
"""Called with (exception, in_thread) for each unhandled exception."""

_lock = threading.Lock()
_watchers: list[Watcher] = []
_prev_sys: Any = None
_prev_thread: Any = None


def install(watcher: Watcher) -> None:
    """Call ``watcher`` for every unhandled exception of this process (idempotent)."""
    global _prev_sys, _prev_thread
    with _lock:
        if watcher not in _watchers:
            _watchers.append(watcher)
        if _prev_sys is None:
            _prev_sys = sys.excepthook
            sys.excepthook = _sys_hook
        if _prev_thread is None:
            _prev_thread = threading.excepthook
            threading.excepthook = _thread_hook


def uninstall() -> None:
    """Put the previous hooks back (where nobody chained on top of optel's)."""
    global _prev_sys, _prev_thread
    with _lock:
        if _prev_sys is not None and sys.excepthook is _sys_hook:
            sys.excepthook = _prev_sys
            _prev_sys = None
        if _prev_thread is not None and threading.excepthook is _thread_hook:
            threading.excepthook = _prev_thread
            _prev_thread = None
        _watchers.clear()


def installed() -> bool:
    return sys.excepthook is _sys_hook or threading.excepthook is _thread_hook


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    try:
        (_prev_sys or sys.__excepthook__)(exc_type, exc, tb)
    finally:
        _crashed(exc, tb, in_thread=False)


def _thread_hook(args: Any) -> None:
    try:
        (_prev_thread or threading.__excepthook__)(args)
    finally:
        _crashed(args.exc_value, args.exc_traceback, in_thread=True)


def _crashed(exc: BaseException | None, tb: Any, in_thread: bool) -> None:
    if exc is None or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return
    try:
        if exc.__traceback__ is None and tb is not None:
            exc = exc.with_traceback(tb)
        for watcher in list(_watchers):
            with _errors.guard("crash"):
                watcher(exc, in_thread)
    except BaseException:  # nothing may change what the host's crash looks like
        if _errors.RAISE:
            raise
