"""The report's numbers: run the queries for a period and the one before it,
and assemble one JSON-ready dict (what ``--json`` prints and the page shows).

An *engine* is anything with ``name``, ``events`` (what the queries read)
and ``rows(sql) -> list[dict]``: :class:`optel.report.duck.DuckStore`,
:class:`optel.report.clickhouse.ClickHouse`, or a test's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from . import ReportError, queries

TOP_FAILURES = 10


class Engine(Protocol):
    name: str
    events: str

    def rows(self, sql: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def before(self) -> Period:
        """The period of the same length just before this one."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


# -- values as the engines return them --------------------------------------------------------


def _int(v: Any) -> int:
    return 0 if v is None else int(v)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _day(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def version_key(v: str) -> tuple[Any, ...]:
    """Sort key for versions: numeric parts as numbers (2.10 after 2.9)."""
    parts = re.split(r"[.\-+]", v)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- the report ---------------------------------------------------------------------------------


def pick_app(engine: Engine, app: str | None) -> dict[str, Any]:
    """The tool to report on: ``app`` (case-insensitive), or the only one there is."""
    found = [
        {"app": r["app"], "records": _int(r["records"]), "last_day": _day(r["last_day"])}
        for r in engine.rows(queries.apps(engine.events))
    ]
    if not found:
        raise ReportError("no optel records found in the input")
    if app is None:
        if len(found) > 1:
            names = ", ".join(f"{f['app']} ({f['records']} records)" for f in found)
            raise ReportError(f"the input holds several tools; choose one with --app: {names}")
        return found[0]
    queries.check_app(app)
    for f in found:
        if f["app"].lower() == app.lower():
            return f
    names = ", ".join(f["app"] for f in found)
    raise ReportError(f"no records of {app!r} in the input (tools found: {names})")


def period_for(last_day: date, days: int, until: date | None, since: date | None) -> Period:
    end = until or last_day
    start = since or end - timedelta(days=days - 1)
    if start > end:
        raise ReportError(f"the period starts ({start}) after it ends ({end})")
    return Period(start, end)


def _summary(engine: Engine, app: str, p: Period) -> dict[str, Any]:
    row = engine.rows(queries.summary(engine.events, app, p.start, p.end))[0]
    out: dict[str, Any] = {k: _int(v) for k, v in row.items()}
    new = engine.rows(queries.new_installs(engine.events, app, p.start, p.end))[0]
    out["new_installs"] = _int(new["new_installs"])
    out["success_rate"] = rate(out["commands_ok"], out["commands"])
    return out


def _commands(engine: Engine, app: str, p: Period) -> list[dict[str, Any]]:
    timing = {
        r["command"]: r for r in engine.rows(queries.durations(engine.events, app, p.start, p.end))
    }
    out = []
    for r in engine.rows(queries.commands(engine.events, app, p.start, p.end)):
        t = timing.get(r["command"], {})
        calls, ok = _int(r["calls"]), _int(r["ok"])
        out.append(
            {
                "command": r["command"],
                "calls": calls,
                "ok": ok,
                "failed": calls - ok,
                "success_rate": rate(ok, calls),
                "installs": _int(r["installs"]),
                "p50_ms": _float(t.get("p50_ms")),
                "p95_ms": _float(t.get("p95_ms")),
            }
        )
    out.sort(key=lambda c: (-c["calls"], c["command"]))
    return out


def _failures(engine: Engine, app: str, p: Period) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "exc_type": _str(r["exc_type"]),
            "location": _str(r["location"]),
            "occurrences": _int(r["occurrences"]),
            "installs": _int(r["installs"]),
            "first_day": _day(r["first_day"]).isoformat(),
            "last_day": _day(r["last_day"]).isoformat(),
        }
        for r in engine.rows(queries.failures(engine.events, app, p.start, p.end))
    ]
    out.sort(
        key=lambda f: (-f["occurrences"], -f["installs"], f["exc_type"] or "", f["location"] or "")
    )
    return out


def _versions(engine: Engine, app: str, p: Period) -> list[dict[str, Any]]:
    out = [
        {
            "version": r["version"],
            "installs": _int(r["installs"]),
            "first_seen": _day(r["first_day"]).isoformat(),
            "new": _day(r["first_day"]) >= p.start,
        }
        for r in engine.rows(queries.versions(engine.events, app, p.start, p.end))
    ]
    out.sort(key=lambda v: version_key(v["version"]))
    return out


def _mix(engine: Engine, app: str, p: Period) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {
        d: {} for d in ("os", "python", "accelerators", "frameworks")
    }
    total = 0
    for r in engine.rows(queries.mix(engine.events, app, p.start, p.end)):
        n = _int(r["installs"])
        total += n
        for dim, found in counts.items():
            value = r[dim] or "unknown"
            # accelerators and frameworks are sets: an install counts for each member
            members = set(value.split(",")) if dim in ("accelerators", "frameworks") else {value}
            for m in members:
                found[m] = found.get(m, 0) + n
    out: dict[str, Any] = {"installs_with_facts": total}
    for dim, found in counts.items():
        items: list[dict[str, Any]] = [
            {"value": v, "installs": n, "share": rate(n, total)} for v, n in found.items()
        ]
        if dim == "python":
            items.sort(key=lambda i: (i["value"] == "unknown", version_key(i["value"])))
        else:
            items.sort(key=lambda i: (-i["installs"], i["value"]))
        out[dim] = items
    return out


def _daily(engine: Engine, app: str, p: Period) -> list[dict[str, Any]]:
    found = {
        _day(r["day"]): r for r in engine.rows(queries.daily(engine.events, app, p.start, p.end))
    }
    out = []
    for i in range(p.days):
        d = p.start + timedelta(days=i)
        r = found.get(d, {})
        out.append(
            {"day": d.isoformat(), "installs": _int(r.get("installs")), "runs": _int(r.get("runs"))}
        )
    return out


def _weekly(engine: Engine, app: str, p: Period) -> list[dict[str, Any]]:
    found = {
        _day(r["week"]): _int(r["installs"])
        for r in engine.rows(queries.weekly(engine.events, app, p.start, p.end))
    }
    out = []
    week = p.start - timedelta(days=p.start.weekday())
    while week <= p.end:
        inside = min(week + timedelta(days=6), p.end) - max(week, p.start)
        out.append(
            {"week": week.isoformat(), "installs": found.get(week, 0), "days": inside.days + 1}
        )
        week += timedelta(days=7)
    return out


def _versions_daily(engine: Engine, app: str, p: Period) -> tuple[list[str], list[dict[str, Any]]]:
    by_day: dict[date, dict[str, int]] = {}
    names: set[str] = set()
    for r in engine.rows(queries.versions_daily(engine.events, app, p.start, p.end)):
        by_day.setdefault(_day(r["day"]), {})[r["version"]] = _int(r["installs"])
        names.add(r["version"])
    order = sorted(names, key=version_key)
    days = []
    for i in range(p.days):
        d = p.start + timedelta(days=i)
        counts = by_day.get(d, {})
        days.append({"day": d.isoformat(), "installs": {v: counts.get(v, 0) for v in order}})
    return order, days


# -- what changed -------------------------------------------------------------------------------

SUMMARY_METRICS = (
    ("active_installs", "active installs"),
    ("new_installs", "new installs"),
    ("runs", "runs"),
    ("commands", "commands"),
    ("success_rate", "command success rate"),
    ("failures", "failures"),
    ("installs_failing", "installs with failures"),
    ("crashes", "crashes"),
)


def _delta(cur: float | None, prev: float | None) -> dict[str, Any]:
    delta = None if cur is None or prev is None else cur - prev
    pct = None if delta is None or not prev else delta / prev
    return {"current": cur, "previous": prev, "delta": delta, "pct": pct}


def _changes(cur: dict[str, Any], prev: dict[str, Any], first_seen: dict[tuple, str]) -> dict:
    summary = [
        {"metric": key, "label": label, **_delta(cur["summary"][key], prev["summary"][key])}
        for key, label in SUMMARY_METRICS
    ]
    before = {c["command"]: c for c in prev["commands"]}
    commands = []
    for c in cur["commands"]:
        b = before.get(c["command"])
        commands.append(
            {
                "command": c["command"],
                "calls": _delta(c["calls"], b["calls"] if b else None),
                "success_rate": _delta(c["success_rate"], b["success_rate"] if b else None),
                "p95_ms": _delta(c["p95_ms"], b["p95_ms"] if b else None),
            }
        )
    start = cur["period"]["start"]

    def key(f: dict[str, Any]) -> tuple[Any, Any]:
        return (f["exc_type"], f["location"])

    then = {key(f): f for f in prev["failures"]}
    now = {key(f): f for f in cur["failures"]}
    new = [f for f in cur["failures"] if first_seen.get(key(f), start) >= start]
    gone = [f for f in prev["failures"] if key(f) not in now]
    rising = [
        {**f, "previous": then[key(f)]["occurrences"]}
        for f in cur["failures"]
        if key(f) in then and f["occurrences"] > then[key(f)]["occurrences"]
    ]
    rising.sort(key=lambda f: (-(f["occurrences"] - f["previous"]), f["exc_type"] or ""))
    return {
        "summary": summary,
        "versions_new": [v["version"] for v in cur["versions"] if v["new"]],
        "commands": commands,
        "failures_new": new[:TOP_FAILURES],
        "failures_gone": gone[:TOP_FAILURES],
        "failures_rising": rising[:TOP_FAILURES],
    }


def _period(engine: Engine, app: str, p: Period) -> dict[str, Any]:
    return {
        "period": p.as_dict(),
        "summary": _summary(engine, app, p),
        "commands": _commands(engine, app, p),
        "failures": _failures(engine, app, p),
        "versions": _versions(engine, app, p),
    }


def build(
    engine: Engine,
    app: str | None = None,
    days: int = 28,
    until: date | None = None,
    since: date | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report of one tool for a period (default: the last ``days`` days up to
    its latest record) and what changed since the period before."""
    if days < 1:
        raise ReportError(f"--days must be at least 1, got {days}")
    chosen = pick_app(engine, app)
    name = chosen["app"]
    p = period_for(chosen["last_day"], days, until, since)
    cur = _period(engine, name, p)
    prev = _period(engine, name, p.before())
    ever = _failures(engine, name, Period(queries.EPOCH, p.end))
    first_seen = {(f["exc_type"], f["location"]): f["first_day"] for f in ever}
    for f in cur["failures"]:
        f["new"] = first_seen.get((f["exc_type"], f["location"]), p.start.isoformat()) >= (
            p.start.isoformat()
        )
    order, versions_daily = _versions_daily(engine, name, p)
    generated = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    return {
        "tool": name,
        "generated": generated.isoformat(),
        "engine": engine.name,
        "period": p.as_dict(),
        "previous_period": p.before().as_dict(),
        "summary": cur["summary"],
        "previous_summary": prev["summary"],
        "active_installs": {"daily": _daily(engine, name, p), "weekly": _weekly(engine, name, p)},
        "versions": {"period": cur["versions"], "order": order, "daily": versions_daily},
        "mix": _mix(engine, name, p),
        "commands": cur["commands"],
        "failures": cur["failures"][:TOP_FAILURES],
        "failure_groups": len(cur["failures"]),
        "changes": _changes(cur, prev, first_seen),
    }
