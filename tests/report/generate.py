"""Realistic gateway output for the report's tests and benchmark.

:func:`generate` simulates a fleet of installs of one tool over some days and
writes what the gateway's file exporters would have stored: OTLP JSON, one
export request per line, one resource per record (optel sends each record
with its resource; the gateway's ``batch`` processor puts many in one line).

The fleet, so that every chart of the report has something true to show:

- installs join over the period (half on the first day), some stop using the
  tool; an active install runs it 0-4 times a day, less at weekends;
- versions roll out: each release reaches an install after a random delay,
  a few installs never upgrade;
- each run records what optel records: ``run_start`` (the system facts),
  tracked commands (``optel.success``, ``optel.duration_ms``,
  ``optel.error.type``), failure reports (``exception``, and
  ``exception_repeated`` for a failure seen again in the run), ``run_end``;
  plus a custom event that is not a command;
- failures are clustered, as real ones are: a Windows path bug in one
  release fixed by the next, CUDA out-of-memory on NVIDIA machines (repeated
  within a run), a Python 3.13 incompatibility new in the last release, and
  a little noise;
- a second tool's records are mixed in (the report must leave them out).

It also returns the ground truth (:class:`Event` list, unless ``keep=False``)
so a test can compute the expected answers in plain Python, independently of
the report's SQL and of the file format.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Iterator

APP = "convertkit"
OTHER_APP = "othertool"
DAY_NS = 86_400 * 10**9

# (version, release day as a fraction of the period; <0: before it began)
RELEASES = (("2.3.0", -1.0), ("2.4.0", 0.25), ("2.4.1", 0.4), ("2.5.0", 0.7))

COMMANDS = {  # name: (weight, median ms, sigma of the log-normal)
    "convert": (0.45, 1200.0, 0.6),
    "export": (0.25, 300.0, 0.5),
    "validate": (0.2, 80.0, 0.4),
    "benchmark": (0.1, 5000.0, 0.7),
}

OSES = (("linux", 0.6), ("darwin", 0.25), ("windows", 0.15))
OS_VERSIONS = {
    "linux": ("ubuntu 22.04", "ubuntu 24.04", "debian 12", "fedora 40"),
    "darwin": ("macos 14.5", "macos 15.1"),
    "windows": ("windows 10", "windows 11"),
}
PYTHONS = (("3.9.18", 0.1), ("3.10.13", 0.2), ("3.11.7", 0.35), ("3.12.1", 0.25), ("3.13.0", 0.1))
FRAMEWORK_SETS = (
    ("torch", 0.35),
    ("torch,onnxruntime", 0.2),
    ("tensorflow", 0.1),
    ("onnxruntime", 0.1),
    ("jax", 0.05),
    ("none", 0.2),
)


@dataclass(frozen=True)
class Failure:
    """A failure cluster: which runs it hits, where, and how often it repeats."""

    type: str
    frames: tuple[str, ...]  # innermost last, as optel's stack trace text
    command: str | None  # None: any command
    repeat_max: int = 1

    @property
    def stacktrace(self) -> str:
        return "\n".join(self.frames)

    @property
    def location(self) -> str:
        return self.frames[-1]

    @property
    def fingerprint(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_OID, self.type + self.stacktrace).hex[:12]


WINDOWS_PATHS = Failure(
    "FileNotFoundError",
    ("<user-code>:20 in main", "site-packages/convertkit/io/paths.py:88 in resolve"),
    "convert",
)
CUDA_OOM = Failure(
    "torch.cuda.OutOfMemoryError",
    (
        "<user-code>:20 in main",
        "site-packages/convertkit/bench.py:140 in run",
        "site-packages/torch/cuda/memory.py:512 in _alloc",
    ),
    "benchmark",
    repeat_max=4,
)
PY313 = Failure(
    "AttributeError",
    ("<user-code>:20 in main", "site-packages/convertkit/compat.py:41 in patch_ast"),
    None,
)
BAD_INPUT = Failure(
    "ValueError",
    ("<user-code>:20 in main", "site-packages/convertkit/cli.py:77 in parse_shape"),
    None,
)


def failure_for(inst: Install, version: str, command: str, rng: random.Random) -> Failure | None:
    """Which failure (if any) hits this command call: the clusters' rules."""
    if version == "2.4.0" and inst.os == "windows" and command == "convert" and rng.random() < 0.4:
        return WINDOWS_PATHS
    gpu = "nvidia" in inst.accelerators and "torch" in inst.frameworks
    if gpu and command == "benchmark" and rng.random() < 0.3:
        return CUDA_OOM
    if version == "2.5.0" and inst.python.startswith("3.13.") and rng.random() < 0.5:
        return PY313
    if rng.random() < 0.02:
        return BAD_INPUT
    return None


@dataclass
class Install:
    id: str
    app: str
    joins: int  # first day (index) of use
    leaves: int  # first day no longer used
    os: str
    os_version: str
    python: str
    accelerators: str
    frameworks: str
    activity: float  # chance of using the tool on a weekday
    upgrade_delays: dict[str, float] = field(default_factory=dict)  # release -> days

    def version_on(self, day: int, days: int) -> str:
        """The newest release it has: installed after its release, or upgraded."""
        current = RELEASES[0][0]
        for version, at in RELEASES[1:]:
            released = at * days
            if self.joins >= released or day >= released + self.upgrade_delays[version]:
                current = version
        return current


@dataclass(frozen=True)
class Event:
    """One generated record, as plain data (the ground truth)."""

    app: str
    version: str
    install: str
    time_ns: int
    name: str
    attributes: dict[str, Any]

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.time_ns / 1e9, tz=timezone.utc).date()


@dataclass
class Generated:
    events: list[Event]  # empty when generated with keep=False
    records: int  # log records written
    logs: Path  # the file holding them
    start: date
    days: int


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in table], [w for _, w in table])[0]


def _install(rng: random.Random, app: str, days: int) -> Install:
    os_name = _pick(rng, OSES)
    if os_name == "darwin":
        accel = "apple" if rng.random() < 0.8 else "none"
    else:
        accel = "nvidia" if rng.random() < 0.35 else ("rocm" if rng.random() < 0.05 else "none")
    joins = 0 if rng.random() < 0.5 else rng.randrange(days)
    leaves = days if rng.random() < 0.8 else rng.randrange(joins + 1, days + 1)
    inst = Install(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        app=app,
        joins=joins,
        leaves=leaves,
        os=os_name,
        os_version=rng.choice(OS_VERSIONS[os_name]),
        python=_pick(rng, PYTHONS),
        accelerators=accel,
        frameworks=_pick(rng, FRAMEWORK_SETS),
        activity=rng.uniform(0.15, 0.9),
    )
    for version, _ in RELEASES[1:]:
        # 10 % never upgrade; the others after an exponential delay (mean 4 days)
        inst.upgrade_delays[version] = math.inf if rng.random() < 0.1 else rng.expovariate(1 / 4)
    return inst


def _resource(inst: Install, version: str) -> dict[str, Any]:
    return {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.45.2",
        "service.name": inst.app,
        "os.type": inst.os,
        "process.runtime.name": "cpython",
        "process.runtime.version": inst.python,
        "optel.version": "0.2.0",
        "service.version": version,
        "optel.install.id": inst.id,
    }


def _facts(inst: Install, version: str, runs: int) -> dict[str, Any]:
    return {
        "optel.os.type": inst.os,
        "optel.os.version": inst.os_version,
        "optel.arch": "arm64" if inst.accelerators == "apple" else "x86_64",
        "optel.python.version": inst.python,
        "optel.python.implementation": "cpython",
        "optel.version": "0.2.0",
        "optel.cpu.count": 8,
        "optel.memory": "16-32GB",
        "optel.accelerators": inst.accelerators,
        "optel.frameworks": inst.frameworks,
        "optel.container": False,
        "optel.notebook": False,
        "optel.ci": False,
        "optel.tool.version": version,
        "optel.runs": "first" if runs == 1 else ("<=10" if runs <= 10 else "<=100"),
    }


def _run(
    inst: Install, version: str, t0: int, runs: int, rng: random.Random
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(time_ns, name, attributes) of one run's records."""
    t = t0
    yield t, "run_start", _facts(inst, version, runs)
    failures: dict[Failure, int] = {}
    crashed = False
    names = list(COMMANDS)
    weights = [COMMANDS[c][0] for c in names]
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        command = rng.choices(names, weights)[0]
        _, median, sigma = COMMANDS[command]
        if command == "convert" and version == "2.5.0":
            median *= 0.7  # the release made conversion faster
        ms = round(rng.lognormvariate(math.log(median), sigma), 3)
        t += int(ms * 1e6)
        failure = failure_for(inst, version, command, rng)
        attrs: dict[str, Any] = {"optel.duration_ms": ms, "optel.success": failure is None}
        if command == "convert":
            attrs["framework"] = inst.frameworks.split(",")[0]
        if failure is not None:
            attrs["optel.error.type"] = failure.type
            seen = failures.get(failure, 0)
            failures[failure] = seen + rng.randint(1, failure.repeat_max)
            if not seen:
                yield (
                    t,
                    "exception",
                    {
                        "exception.type": failure.type,
                        "exception.stacktrace": failure.stacktrace,
                        "optel.failure.id": failure.fingerprint,
                    },
                )
        yield t, command, attrs
        if command == "convert" and failure is None:
            yield t, "model_converted", {"framework": attrs["framework"]}  # not a command
        if failure is BAD_INPUT and rng.random() < 0.3:
            crashed = True  # the tool let it escape: optel's crash report
            yield (
                t + 1000,
                "exception",
                {
                    "exception.type": failure.type,
                    "exception.stacktrace": failure.stacktrace,
                    "optel.failure.id": failure.fingerprint,
                    "optel.crash": True,
                    "optel.crash.thread": "main",
                },
            )
            break
    t += 5 * 10**6
    for failure, count in failures.items():
        if count > 1:
            yield (
                t,
                "exception_repeated",
                {
                    "optel.failure.id": failure.fingerprint,
                    "optel.failure.type": failure.type,
                    "optel.failure.count": count,
                },
            )
    yield (
        t,
        "run_end",
        {
            "optel.run.duration_s": round((t - t0) / 1e9, 1),
            "optel.run.outcome": "crash" if crashed else "ok",
            "optel.failures": sum(failures.values()),
            "optel.failures.distinct": len(failures),
            "optel.rate_limited": 0,
        },
    )


def make_fleet(installs: int, days: int, rng: random.Random) -> list[Install]:
    """``installs`` of the tool, and a tenth as many of another tool."""
    fleet = [_install(rng, APP, days) for _ in range(installs)]
    return fleet + [_install(rng, OTHER_APP, days) for _ in range(installs // 10)]


def events(fleet: list[Install], days: int, start: date, rng: random.Random) -> Iterator[Event]:
    """The fleet's records in time order, day by day."""
    run_counts = dict.fromkeys((i.id for i in fleet), 0)
    epoch = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    for day in range(days):
        weekend = (start + timedelta(days=day)).weekday() >= 5
        batch: list[Event] = []
        for inst in fleet:
            if not inst.joins <= day < inst.leaves:
                continue
            chance = inst.activity * (0.3 if weekend else 1.0)
            if day == inst.joins:
                chance = 1.0  # an install is first seen the day it joins
            if rng.random() >= chance:
                continue
            version = inst.version_on(day, days)
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
                run_counts[inst.id] += 1
                # 06:00-22:00 UTC, the run's records stay within the day
                t0 = int((epoch + day * 86_400 + rng.uniform(6, 22) * 3600) * 1e9)
                for t, name, attrs in _run(inst, version, t0, run_counts[inst.id], rng):
                    batch.append(Event(inst.app, version, inst.id, t, name, attrs))
        batch.sort(key=lambda e: e.time_ns)
        yield from batch


# -- OTLP JSON, as the collector's file exporter writes it ---------------------------------


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # int64 is a string in OTLP JSON
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _kv(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items()]


_resources: dict[tuple[str, str], str] = {}


def _resource_logs(e: Event, inst: Install | None = None) -> str:
    key = (e.install, e.version)
    res = _resources.get(key)
    if res is None:
        assert inst is not None
        res = json.dumps({"attributes": _kv(_resource(inst, e.version))}, separators=(",", ":"))
        _resources[key] = res
    attrs = dict(e.attributes)
    attrs["event.name"] = e.name
    record = {
        "timeUnixNano": str(e.time_ns),
        "observedTimeUnixNano": str(e.time_ns),
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {},
        "attributes": _kv(attrs),
        "eventName": e.name,
    }
    return (
        '{"resource":'
        + res
        + ',"scopeLogs":[{"scope":{"name":"optel"},"logRecords":['
        + json.dumps(record, separators=(",", ":"))
        + "]}]}"
    )


def write(events_: Iterator[Event], out: IO[str], fleet: dict[str, Install], batch: int) -> int:
    """Write ``events_`` as file-exporter lines of ``batch`` records; the count."""
    n = 0
    parts: list[str] = []
    for e in events_:
        parts.append(_resource_logs(e, fleet.get(e.install)))
        n += 1
        if len(parts) >= batch:
            out.write('{"resourceLogs":[' + ",".join(parts) + "]}\n")
            parts = []
    if parts:
        out.write('{"resourceLogs":[' + ",".join(parts) + "]}\n")
    return n


def generate(
    prefix: Path,
    installs: int = 200,
    days: int = 56,
    start: date = date(2026, 9, 7),
    seed: int = 17,
    keep: bool = True,
    batch: int = 512,
    max_records: int | None = None,
) -> Generated:
    """Write ``<prefix>.logs.json`` (and a small ``.traces.json`` the report must
    ignore) for a simulated fleet; returns the ground truth."""
    _resources.clear()
    rng = random.Random(seed)
    fleet = make_fleet(installs, days, rng)
    by_id = {i.id: i for i in fleet}
    kept: list[Event] = []

    def stream() -> Iterator[Event]:
        for n, e in enumerate(events(fleet, days, start, rng)):
            if max_records is not None and n >= max_records:
                return
            if keep:
                kept.append(e)
            yield e

    logs = Path(f"{prefix}.logs.json")
    with open(logs, "w", encoding="utf-8") as f:
        count = write(stream(), f, by_id, batch)
    span = {
        "resourceSpans": [
            {
                "resource": {"attributes": _kv({"service.name": APP})},
                "scopeSpans": [
                    {
                        "scope": {"name": "convertkit"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "convert",
                                "kind": 1,
                                "startTimeUnixNano": "1789000000000000000",
                                "endTimeUnixNano": "1789000000100000000",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    Path(f"{prefix}.traces.json").write_text(json.dumps(span) + "\n")
    return Generated(kept, count, logs, start, days)
