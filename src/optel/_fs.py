"""Small file helpers: atomic JSON writes and a cross-process lock.

Every state file optel writes (consent, identity, settings) goes through
:func:`write_json_atomic`: a temp file in the same folder, fsync, rename, so
a reader sees the old document or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Iterator


def read_json(path: str) -> Any:
    """Parsed JSON at ``path``; ``None`` when the file does not exist.

    Raises ``OSError`` or ``ValueError`` for unreadable or corrupt files:
    callers decide what that means (consent fails closed).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):  # no file, or its folder cannot exist
        return None
    return json.loads(text)


def write_json_atomic(path: str, data: Any, mode: int = 0o600) -> None:
    """Write ``data`` as JSON to ``path`` atomically with file mode ``mode``."""
    import tempfile  # only when writing: keeps ``import optel`` cheap

    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive cross-process lock on ``path`` (created if needed)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock on every OS


ASIDE = ".corrupt-"
"""What optel adds to a state file's name when it moves an unreadable one aside."""


def aside_name(path: str) -> str:
    """Where an unreadable ``path`` is moved: ``<path>.corrupt-<UTC time>-<pid>``."""
    import time

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


def kept_aside(path: str) -> list[str]:
    """Copies of ``path`` moved aside earlier (not their -wal/-shm companions)."""
    folder, name = os.path.split(path)
    try:
        found = os.listdir(folder or ".")
    except OSError:
        return []
    return sorted(
        os.path.join(folder, f)
        for f in found
        if f.startswith(name + ASIDE) and not f.endswith(("-wal", "-shm"))
    )
