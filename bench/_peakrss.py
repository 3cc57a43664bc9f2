"""A child process's own peak RSS, for the benches that report peak memory.

``os.wait4``'s ``ru_maxrss`` cannot give it: Linux hands the high-water mark
of the memory a child is spawned from to the child at ``exec``
(``exec_mmap`` in fs/exec.c), and ``subprocess`` spawns through ``vfork``,
from the bench's own memory. Every child then read at least the bench's
RSS: a child whose own peak was 8.8 MB read 310.8 MB under a parent holding
300 MB, and the data path's rows all read the bench's 57 MB. Instead the
child writes its ``VmHWM`` (proc(5)) at exit (``bench/peak/sitecustomize.py``).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

HOOK = Path(__file__).resolve().parent / "peak"


@contextmanager
def peak_of(env: dict[str, str]) -> Iterator[tuple[dict[str, str], Callable[[], float]]]:
    """(``env`` for one child, a function giving that child's peak RSS in MiB
    once it has exited; NaN if it wrote none, e.g. killed)."""
    fd, path = tempfile.mkstemp(prefix="bench-peak-")
    os.close(fd)
    paths = [str(HOOK), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    child = {**env, "BENCH_PEAK_FILE": path, "PYTHONPATH": os.pathsep.join(paths)}

    def peak_mib() -> float:
        text = Path(path).read_text().strip()
        return int(text) / 1024 if text else math.nan

    try:
        yield child, peak_mib
    finally:
        os.unlink(path)
