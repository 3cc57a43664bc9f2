"""Small file helpers: a state folder optel can trust, safe reads, atomic
writes, a bounded cross-process lock, one aside scheme.

The state folder is treated like ssh treats ``~/.ssh``: a folder that
another user owns, or that others can write, is not used at all
(:func:`folder_problem`; the callers turn it off with one warning), since a
file planted there could grant consent, redirect data or fix the salt.

Inside a trusted folder a state file is only ever read or written as a
regular file at its own name: never through a symbolic link (``O_NOFOLLOW``),
never a FIFO or device (opened non-blocking, then checked with ``fstat``),
never more than :data:`MAX_BYTES`, never nested deeper than
:data:`MAX_DEPTH`. Everything that goes wrong raises ``OSError`` or
``ValueError`` (never ``RecursionError``), which the callers already treat
as "cannot be used".

Every state file optel writes (consent, identity, settings, salt, usage)
goes through :func:`write_json_atomic`: a temp file in the same folder,
fsync, rename, so a reader sees the old document or the new one, never half
of one (a rename replaces a planted link, it never writes through it).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Iterator

MAX_BYTES = 1_000_000
"""Largest state file optel reads (consent, settings, salt, identity, usage
are a few KB; anything larger is not one of them)."""

MAX_DEPTH = 32
"""Deepest nesting a state document may have (consent.json needs 4)."""

LOCK_WAIT_S = 5.0
"""Longest optel waits for the state lock before giving up (a stuck holder
must never hang the host): the caller treats it like an unwritable folder."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)


class UntrustedFolder(PermissionError):
    """The state folder belongs to someone else or others can write it."""


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` must not hold optel's state, or ``None`` when it may.

    Refused, as ssh refuses such a ``~/.ssh``: a folder owned by another user
    (root excepted) or writable by group or others. A folder that does not
    exist yet is fine: optel creates it with mode 0700.
    """
    if os.name != "posix":  # pragma: no cover - POSIX permissions only
        return None
    try:
        st = os.stat(folder)
    except OSError:
        return None  # missing (made 0700 when needed) or unusable (the open says why)
    if not stat.S_ISDIR(st.st_mode):
        return None  # not a folder: every open under it fails, callers say so
    if st.st_uid not in (os.geteuid(), 0):
        return f"{folder} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return (
            f"{folder} can be written by others (mode {stat.S_IMODE(st.st_mode):o};"
            f" 'chmod go-w {folder}' fixes it)"
        )
    return None


def warn_untrusted(problem: str) -> None:
    """The one warning for a state folder optel will not use (once per process,
    whoever noticed first: the consent rule or the settings)."""
    from . import _errors

    _errors.warn_once(
        "state-folder",
        f"telemetry is off: {problem} (a file planted there could grant consent or"
        " redirect data); set OPTEL_HOME to a folder only you can write",
    )


def check_folder(folder: str) -> None:
    """Raise :class:`UntrustedFolder` when :func:`folder_problem` finds one."""
    problem = folder_problem(folder)
    if problem:
        raise UntrustedFolder(errno.EPERM, f"not using {problem}", folder)


def _open_regular(path: str, flags: int, mode: int = 0o600) -> int:
    """A descriptor for the regular file ``path`` itself: never through a link,
    never blocking on a FIFO; raises ``OSError`` for anything else."""
    check_folder(os.path.dirname(path) or ".")
    fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _NOCTTY, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of the regular file ``path``; ``None`` when it does not exist.

    Raises ``OSError`` for a link, a FIFO or device, an untrusted folder, and
    ``ValueError`` for a file larger than ``limit``.
    """
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):  # no file, or its folder cannot exist
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise OSError(errno.ELOOP, "a symbolic link (not followed)", path) from None
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data


def depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            stack.extend((v, level + 1) for v in item)
    return deepest


def read_json(path: str) -> Any:
    """Parsed JSON at ``path``; ``None`` when the file does not exist.

    Raises ``OSError`` or ``ValueError`` for unreadable, corrupt, oversized
    or too deeply nested files, for links and non-regular files, and for an
    untrusted folder: callers decide what that means (consent fails closed).
    """
    data = read_bytes(path)
    if data is None:
        return None
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:  # the C parser recurses per level: never let that escape
        raise ValueError(f"{path} is nested too deeply") from None
    if depth(value) > MAX_DEPTH:
        raise ValueError(f"{path} is nested too deeply")
    return value


def write_json_atomic(path: str, data: Any, mode: int = 0o600) -> None:
    """Write ``data`` as JSON to ``path`` atomically with file mode ``mode``."""
    import tempfile  # only when writing: keeps ``import optel`` cheap

    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    check_folder(folder)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)  # O_EXCL: never a planted name
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:  # pragma: no cover - Windows
                os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a link at ``path``; never writes through it
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove(path: str) -> bool:
    """Delete ``path`` (the name itself, a link is not followed); ``True`` if it was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


@contextmanager
def file_lock(path: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold an exclusive cross-process lock on ``path`` (created if needed).

    Waits at most ``wait_s``, then raises ``TimeoutError`` (an ``OSError``):
    a process that holds the lock forever must not hang the host.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = _open_regular(path, os.O_RDWR | os.O_CREAT)
    try:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]  # bounded: ~10 s
        else:
            import fcntl

            deadline = time.monotonic() + wait_s
            pause = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            errno.ETIMEDOUT, "another process holds the state lock", path
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock on every OS


ASIDE = ".corrupt-"
"""What optel adds to a state file's name when it moves an unreadable one aside."""


def aside_name(path: str) -> str:
    """Where an unreadable ``path`` is moved: ``<path>.corrupt-<UTC time>-<pid>``."""
    return f"{path}{ASIDE}{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}"


def move_aside(path: str, suffixes: tuple[str, ...] = ("",)) -> str:
    """Move ``path`` (and ``path + suffix`` for each suffix) aside; the new name.

    Nothing the user decided or recorded is silently overwritten: the aside
    copy stays for them to inspect or delete (``optel status`` lists it).
    """
    aside = aside_name(path)
    for suffix in suffixes:
        try:
            os.replace(path + suffix, aside + suffix)
        except FileNotFoundError:
            pass
    return aside


def kept_aside(path: str, companions: bool = False) -> list[str]:
    """Copies of ``path`` moved aside earlier (with ``companions``, their
    ``-wal``/``-shm`` files too)."""
    folder, name = os.path.split(path)
    try:
        found = os.listdir(folder or ".")
    except OSError:
        return []
    return sorted(
        os.path.join(folder, f)
        for f in found
        if f.startswith(name + ASIDE) and (companions or not f.endswith(("-wal", "-shm")))
    )
