"""The report's answers computed again, in plain Python, from the generator's
ground truth (:class:`tests.report.generate.Event`), not from the files and
not with SQL: what the page and ``--json`` must show.

Definitions (the same as the report's, written independently):
- an install is active on a day when it has a record that day (UTC);
- a command is an event with ``optel.success``; p50/p95 are nearest-rank
  over the successful calls' ``optel.duration_ms``;
- a failure occurrence is an ``exception`` event (1) or the extra count of
  an ``exception_repeated`` (count - 1); failures group by exception type and
  the innermost frame of the stack trace of their failure id;
- the mix counts each install once, with its latest ``run_start`` facts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any, Iterable

from .generate import Event


def _nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    rank = (percent * len(ordered) + 99) // 100  # ceil(p * n) in integers
    return ordered[rank - 1]


def _of(events: Iterable[Event], app: str, start: date, end: date) -> list[Event]:
    return [e for e in events if e.app.lower() == app.lower() and start <= e.day <= end]


def _locations(events: Iterable[Event], app: str, end: date) -> dict[str, tuple[str, str]]:
    """failure id -> (type, innermost frame), from the exception reports up to ``end``."""
    out: dict[str, tuple[str, str]] = {}
    for e in events:
        if e.app.lower() == app.lower() and e.name == "exception" and e.day <= end:
            frame = e.attributes["exception.stacktrace"].split("\n")[-1]
            key = (e.attributes["exception.type"], frame)
            fid = e.attributes["optel.failure.id"]
            out[fid] = min(out.get(fid, key), key)
    return out


def occurrences(e: Event) -> int:
    if e.name == "exception":
        return 1
    if e.name == "exception_repeated":
        return max(e.attributes["optel.failure.count"] - 1, 0)
    return 0


def summary(events: list[Event], app: str, start: date, end: date) -> dict[str, Any]:
    these = _of(events, app, start, end)
    commands = [e for e in these if "optel.success" in e.attributes]
    ok = sum(1 for e in commands if e.attributes["optel.success"])
    first: dict[str, date] = {}
    for e in events:
        if e.app.lower() == app.lower() and e.day <= end:
            first[e.install] = min(first.get(e.install, e.day), e.day)
    return {
        "active_installs": len({e.install for e in these}),
        "runs": sum(1 for e in these if e.name == "run_start"),
        "commands": len(commands),
        "commands_ok": ok,
        "failures": sum(occurrences(e) for e in these),
        "installs_failing": len({e.install for e in these if occurrences(e) > 0}),
        "crashes": sum(1 for e in these if e.attributes.get("optel.crash") is True),
        "records": len(these),
        "without_install": 0,
        "new_installs": sum(1 for d in first.values() if d >= start),
        "success_rate": ok / len(commands) if commands else None,
    }


def daily(events: list[Event], app: str, start: date, end: date) -> list[dict[str, Any]]:
    installs: dict[date, set[str]] = defaultdict(set)
    runs: dict[date, int] = defaultdict(int)
    for e in _of(events, app, start, end):
        installs[e.day].add(e.install)
        runs[e.day] += e.name == "run_start"
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [{"day": d.isoformat(), "installs": len(installs[d]), "runs": runs[d]} for d in days]


def weekly(events: list[Event], app: str, start: date, end: date) -> list[dict[str, Any]]:
    out = []
    monday = start - timedelta(days=start.weekday())
    while monday <= end:
        lo, hi = max(monday, start), min(monday + timedelta(days=6), end)
        out.append(
            {
                "week": monday.isoformat(),
                "installs": len({e.install for e in _of(events, app, lo, hi)}),
                "days": (hi - lo).days + 1,
            }
        )
        monday += timedelta(days=7)
    return out


def versions(events: list[Event], app: str, start: date, end: date) -> list[dict[str, Any]]:
    first: dict[str, date] = {}
    for e in events:
        if e.app.lower() == app.lower() and e.day <= end:
            first[e.version] = min(first.get(e.version, e.day), e.day)
    used: dict[str, set[str]] = defaultdict(set)
    for e in _of(events, app, start, end):
        used[e.version].add(e.install)
    return [
        {
            "version": v,
            "installs": len(used[v]),
            "first_seen": first[v].isoformat(),
            "new": first[v] >= start,
        }
        for v in sorted(used, key=lambda v: tuple(int(x) for x in v.split(".")))
    ]


def versions_daily(events: list[Event], app: str, start: date, end: date) -> dict[str, Any]:
    per: dict[tuple[date, str], set[str]] = defaultdict(set)
    for e in _of(events, app, start, end):
        per[(e.day, e.version)].add(e.install)
    order = sorted({v for _, v in per}, key=lambda v: tuple(int(x) for x in v.split(".")))
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return {
        "order": order,
        "daily": [
            {"day": d.isoformat(), "installs": {v: len(per.get((d, v), ())) for v in order}}
            for d in days
        ],
    }


def mix(events: list[Event], app: str, start: date, end: date) -> dict[str, Any]:
    latest: dict[str, Event] = {}
    for e in _of(events, app, start, end):
        if e.name == "run_start" and (
            e.install not in latest or e.time_ns > latest[e.install].time_ns
        ):
            latest[e.install] = e
    total = len(latest)
    counts: dict[str, dict[str, int]] = {
        "os": defaultdict(int),
        "python": defaultdict(int),
        "accelerators": defaultdict(int),
        "frameworks": defaultdict(int),
    }
    for e in latest.values():
        a = e.attributes
        counts["os"][a["optel.os.type"]] += 1
        counts["python"][".".join(a["optel.python.version"].split(".")[:2])] += 1
        for dim in ("accelerators", "frameworks"):  # sets: each member counts
            for kind in set(a[f"optel.{dim}"].split(",")):
                counts[dim][kind] += 1
    out: dict[str, Any] = {"installs_with_facts": total}
    for dim, found in counts.items():
        items = [
            {"value": k, "installs": n, "share": n / total if total else None}
            for k, n in found.items()
            if n > 0
        ]
        if dim == "python":
            items.sort(key=lambda i: tuple(int(x) for x in i["value"].split(".")))
        else:
            items.sort(key=lambda i: (-i["installs"], i["value"]))
        out[dim] = items
    return out


def commands(events: list[Event], app: str, start: date, end: date) -> list[dict[str, Any]]:
    calls: dict[str, list[Event]] = defaultdict(list)
    for e in _of(events, app, start, end):
        if "optel.success" in e.attributes:
            calls[e.name].append(e)
    out = []
    for name, found in calls.items():
        ok = [e for e in found if e.attributes["optel.success"]]
        durations = [e.attributes["optel.duration_ms"] for e in ok]
        out.append(
            {
                "command": name,
                "calls": len(found),
                "ok": len(ok),
                "failed": len(found) - len(ok),
                "success_rate": len(ok) / len(found),
                "installs": len({e.install for e in found}),
                "p50_ms": _nearest_rank(durations, 50) if durations else None,
                "p95_ms": _nearest_rank(durations, 95) if durations else None,
            }
        )
    out.sort(key=lambda c: (-c["calls"], c["command"]))
    return out


def failures(events: list[Event], app: str, start: date, end: date) -> list[dict[str, Any]]:
    where = _locations(events, app, end)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for e in _of(events, app, start, end):
        n = occurrences(e)
        if not n:
            continue
        key = where[e.attributes["optel.failure.id"]]
        g = groups.setdefault(
            key, {"occurrences": 0, "installs": set(), "first": e.day, "last": e.day}
        )
        g["occurrences"] += n
        g["installs"].add(e.install)
        g["first"], g["last"] = min(g["first"], e.day), max(g["last"], e.day)
    out = [
        {
            "exc_type": t,
            "location": loc,
            "occurrences": g["occurrences"],
            "installs": len(g["installs"]),
            "first_day": g["first"].isoformat(),
            "last_day": g["last"].isoformat(),
        }
        for (t, loc), g in groups.items()
    ]
    out.sort(key=lambda f: (-f["occurrences"], -f["installs"], f["exc_type"], f["location"]))
    return out


def report(events: list[Event], app: str, start: date, end: date) -> dict[str, Any]:
    """The numbers of the report for [start, end] and the period before it."""
    days = (end - start).days + 1
    prev_end = start - timedelta(days=1)
    prev_start = prev_end - timedelta(days=days - 1)
    cur_f = failures(events, app, start, end)
    prev_f = failures(events, app, prev_start, prev_end)
    ever = failures(events, app, date(1970, 1, 1), end)
    first_seen = {(f["exc_type"], f["location"]): f["first_day"] for f in ever}
    for f in cur_f:
        f["new"] = first_seen[(f["exc_type"], f["location"])] >= start.isoformat()
    cur_v = versions(events, app, start, end)
    now = summary(events, app, start, end)
    before = summary(events, app, prev_start, prev_end)
    key = lambda f: (f["exc_type"], f["location"])  # noqa: E731
    then = {key(f): f for f in prev_f}
    return {
        "summary": now,
        "previous_summary": before,
        "daily": daily(events, app, start, end),
        "weekly": weekly(events, app, start, end),
        "versions": cur_v,
        "versions_daily": versions_daily(events, app, start, end),
        "mix": mix(events, app, start, end),
        "commands": commands(events, app, start, end),
        "previous_commands": commands(events, app, prev_start, prev_end),
        "failures": cur_f[:10],
        "failure_groups": len(cur_f),
        "failures_new": [f for f in cur_f if f["new"]][:10],
        "failures_gone": [f for f in prev_f if key(f) not in {key(g) for g in cur_f}][:10],
        "failures_rising": sorted(
            (
                {**f, "previous": then[key(f)]["occurrences"]}
                for f in cur_f
                if key(f) in then and f["occurrences"] > then[key(f)]["occurrences"]
            ),
            key=lambda f: (-(f["occurrences"] - f["previous"]), f["exc_type"]),
        )[:10],
        "versions_new": [v["version"] for v in cur_v if v["new"]],
    }
