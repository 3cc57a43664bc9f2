"""Loaded at start-up by a bench's child process (``bench/peak`` first on its
``PYTHONPATH``, see :mod:`bench._peakrss`): at exit it writes its own peak RSS
(kB) to ``$BENCH_PEAK_FILE``.

The hook is registered before anything else the child runs, so it runs after
every other exit hook (atexit runs the last registered first): optel's and
the SDK's exits are inside the figure.
"""

import atexit
import os


def _write_peak(path: str) -> None:
    # VmHWM: the peak resident size of this process's own memory map (proc(5))
    with open("/proc/self/status") as status:
        kb = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "")
    with open(path, "w") as out:
        out.write(kb)


if os.environ.get("BENCH_PEAK_FILE"):
    atexit.register(_write_peak, os.environ["BENCH_PEAK_FILE"])
