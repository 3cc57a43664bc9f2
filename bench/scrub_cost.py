"""The anonymizer's cost per record, on the worker thread (never the host's).

- a typical span record (5 attributes, one a home-folder path, one denied
  key, the usual resource), seen before: the memoized path;
- the same span with a new path each time: every rule's hint runs;
- a 450-character error message never seen before: the slow case.

Each figure is the median of a few rounds of ``timeit``. Run by
``make bench`` (bench/run.py), or alone: ``python bench/scrub_cost.py``.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from optel.anonymize import Anonymizer, values  # noqa: E402 - after the path set-up

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


def median_us(make: Callable[[], Callable[[], object]], n: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        fn = make()
        rounds.append(timeit.timeit(fn, number=n) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    a = Anonymizer(["framework", "input_path", "model.size_mb", "optimize"])
    rec = span("/home/alice/models/resnet50.onnx")
    warm = median_us(lambda: lambda: a.scrub(rec), N)

    def unique() -> Callable[[], object]:
        values.clear_memo()
        recs = iter([span(f"/home/alice/models/resnet{i}.onnx") for i in range(N)])
        return lambda: a.scrub(next(recs))

    cold = median_us(unique, N)

    def message() -> Callable[[], object]:
        return lambda: (values.clear_memo(), values.scrub_text(MESSAGE))

    long = median_us(message, 500)
    print(f"scrub, typical span record, memoized   : {warm:6.2f} us/record")
    print(f"scrub, typical span record, new path   : {cold:6.2f} us/record")
    print(f"scrub, 450-char message never seen     : {long:6.1f} us")


if __name__ == "__main__":
    main()
