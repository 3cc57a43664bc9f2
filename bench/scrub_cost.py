"""The anonymizer's cost per record, on the worker thread (never the host's).

- a typical span record (5 attributes declared with kinds: a closed set, a
  path kind, a number, a label, and one denied key; the usual resource),
  seen before: the memoized path;
- the same span with a new path each time: labels are memoized, the path
  kind is computed each time;
- a 450-character error message never seen before, as the text kind (only
  when a tool opted in to free text): the slow case, every pattern runs.

Each figure is the best of 5 rounds of ``timeit`` in CPU time (process_time):
the round least disturbed by the rest of the machine.

``--before DIR`` (a ``src`` folder of another optel checkout, e.g. the
previous commit's) compares the typical record there and here in one
process, rounds interleaved, so load on the machine hits both alike. Run by
``make bench`` (bench/run.py), or alone: ``python bench/scrub_cost.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import optel  # noqa: E402 - after the path set-up
from optel.anonymize import Anonymizer, fit, values  # noqa: E402
from optel.kinds import Declarations  # noqa: E402

ROUNDS = 5
N = 5_000

RESOURCE = {
    "service.name": "democonvert", "service.version": "1.0.0", "os.type": "linux",
    "process.runtime.name": "cpython", "process.runtime.version": "3.11.7",
    "optel.version": "0.1.0", "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.45.2",
}  # fmt: skip
MESSAGE = (
    "ERROR while converting /home/alice/models/x.onnx: connection to 10.0.0.1 refused by"
    " https://u:p@h.example.com/a?b=c; "
) * 4


def span(path: str) -> dict[str, Any]:
    return {
        "signal": "span", "app": "democonvert", "version": "1.0.0", "policy": "opt-in",
        "session_id": "1", "time": 1.0, "name": "convert", "trace_id": "0" * 32,
        "span_id": "0" * 16, "parent_span_id": None, "kind": "INTERNAL", "start_ns": 1,
        "end_ns": 2, "status": {"code": "UNSET", "message": ""},
        "attributes": {"framework": "onnx", "input_path": path, "model.size_mb": 97.8,
                       "optimize": "fp16", "user.email": "alice@example.com"},
        "events": [], "links": 0, "resource": RESOURCE,
        "scope": {"name": "optel.democonvert", "version": "1.0.0"},
    }  # fmt: skip


def best_us(make: Callable[[], Callable[[], object]], n: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        fn = make()
        # CPU time of this process: other processes on the machine do not count
        rounds.append(timeit.timeit(fn, number=n, timer=time.process_time) / n * 1e6)
    return min(rounds)  # the round least disturbed by the rest of the machine


DECLARED = Declarations(
    {
        "framework": ("onnx", "tensorflow", "pytorch"),
        "input_path": optel.PathKind,
        "model.size_mb": float,
        "optimize": optel.Label,
    }
)


def main() -> None:
    a = Anonymizer(DECLARED)
    rec = span("/home/alice/models/resnet50.onnx")
    warm = best_us(lambda: lambda: a.scrub(rec), N)

    def unique() -> Callable[[], object]:
        values.clear_memo()
        recs = iter([span(f"/home/alice/models/resnet{i}.onnx") for i in range(N)])
        return lambda: a.scrub(next(recs))

    cold = best_us(unique, N)

    def message() -> Callable[[], object]:
        return lambda: (values.clear_memo(), fit.fit(optel.Text, MESSAGE))

    long = best_us(message, 500)
    print(f"scrub, typical span record, memoized   : {warm:6.2f} us/record")
    print(f"scrub, typical span record, new path   : {cold:6.2f} us/record")
    print(f"scrub, 450-char message never seen (text kind): {long:6.1f} us")


def before_after(src: str, rounds: int = 15) -> None:
    """The typical record through another checkout's anonymizer and this one."""
    import importlib
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp()
    shutil.copytree(Path(src) / "optel", Path(tmp) / "optel_before")  # relative imports only
    sys.path.insert(0, tmp)
    old = importlib.import_module("optel_before.anonymize")
    try:
        before = old.Anonymizer(DECLARED)
    except Exception:  # an anonymizer from before kinds: a list of keys
        before = old.Anonymizer(list(DECLARED))
    after = Anonymizer(DECLARED)
    rec = span("/home/alice/models/resnet50.onnx")
    runs: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label, a in (("before", before), ("after", after)):
            a.scrub(rec)
            t = timeit.timeit(lambda a=a: a.scrub(rec), number=N, timer=time.process_time)
            runs[label].append(t / N * 1e6)
    for label, r in runs.items():
        print(
            f"scrub, typical span record, memoized, {label:6}: best {min(r):6.2f} us,"
            f" median {statistics.median(r):6.2f} us ({rounds} interleaved rounds)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--before":
        before_after(sys.argv[2])
    else:
        main()
