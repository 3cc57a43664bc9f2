"""optel records -> Measurement Protocol events (the README's "GA4 mapping" table).

A record renders to one payload, a *request fragment*::

    {"user_properties": {name: {"value": v}}, "events": [{name, params, timestamp_micros}]}

``send`` packs the fragments of many payloads into requests and adds the
envelope (``client_id``, ``non_personalized_ads``); see ``ga4/__init__.py``.

- span -> one event named after the span; duration -> ``engagement_time_msec``;
- event -> one event named after it; ``duration_ms`` (if given) -> engagement;
- failure report (an event with ``exception.type``) -> an ``exception`` event
  with the scrubbed type, message and innermost location;
- log -> ``log_<severity>`` with the logger name and message;
- metric -> one event per data point (attribute set) of the export
  interval: counters and gauges ``value``, histograms ``count``, ``sum``,
  ``min``, ``max``.

Every event gets ``session_id`` and ``engagement_time_msec`` first (GA4 needs
both to show activity in its reports), then the tool's attributes in the
order given, then optel's own facts; names and values pass through
:mod:`.limits`.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from . import limits

USER_PROPERTIES = (
    # (user property, where the value comes from: record field or resource key)
    ("app", "app", "service.name"),
    ("app_version", "version", "service.version"),
    ("os", None, "os.type"),
    ("python", None, "process.runtime.version"),
    ("python_impl", None, "process.runtime.name"),
    ("optel_version", None, "optel.version"),
)
"""User properties: tool version, OS and Python, nothing about the person."""

MIN_ENGAGEMENT_MS = 1
"""GA4 shows an event in Realtime only with an engagement time; when a record
has no duration, the smallest honest value is sent."""


def dumps(obj: Any) -> str:
    """The compact JSON used for payloads and request bodies (UTF-8, not escaped)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def size(obj: Any) -> int:
    return len(dumps(obj).encode("utf-8"))


# -- pieces ------------------------------------------------------------------------


def user_properties(rec: dict[str, Any]) -> dict[str, dict[str, str]]:
    resource = rec.get("resource") or {}
    out: dict[str, dict[str, str]] = {}
    for name, field, key in USER_PROPERTIES:
        value = rec.get(field) if field else None
        if value in (None, ""):
            value = resource.get(key)
        if value not in (None, ""):
            out[limits.user_property_name(name)] = {"value": limits.user_property_value(value)}
    return dict(list(out.items())[: limits.MAX_USER_PROPERTIES])


def _micros(ns: Any, fallback_s: float) -> int:
    if isinstance(ns, (int, float)) and ns > 0:
        return int(ns // 1000)
    return int(fallback_s * 1_000_000)


def params(
    session_id: Any,
    engagement_ms: Any,
    attributes: Iterable[tuple[str, Any]],
    facts: Iterable[tuple[str, Any]] = (),
) -> dict[str, Any]:
    """The params of one event, within every limit, in a stable order.

    The tool's attributes come before optel's facts, so when there are more
    than 25 the tool's declared keys are kept; the overflow is counted in
    ``params_dropped``.
    """
    out: dict[str, Any] = {}
    if session_id not in (None, ""):
        out["session_id"] = limits.param_value(str(session_id))
    try:
        ms = max(MIN_ENGAGEMENT_MS, int(round(float(engagement_ms))))
    except (TypeError, ValueError, OverflowError):
        ms = MIN_ENGAGEMENT_MS
    out["engagement_time_msec"] = ms
    extra: list[tuple[str, Any]] = []
    for key, raw in [*attributes, *facts]:
        value = limits.param_value(raw)
        if value is None:
            continue
        name = limits.param_name(key)
        n = 2
        while name in out or any(name == e[0] for e in extra):  # "a.b" and "a_b"
            name = limits._fit(f"{limits.param_name(key)}_{n}", f"{key}#{n}", limits.MAX_NAME)
            n += 1
        extra.append((name, value))
    room = limits.MAX_PARAMS_PER_EVENT - len(out)
    if len(extra) > room:
        dropped = len(extra) - (room - 1)
        extra = extra[: room - 1] + [("params_dropped", dropped)]
    out.update(extra)
    return out


def _event(name: str, micros: int, p: dict[str, Any]) -> dict[str, Any]:
    return {"name": limits.event_name(name), "params": p, "timestamp_micros": micros}


def _attrs(rec: dict[str, Any], skip_prefix: str = "\0") -> list[tuple[str, Any]]:
    return [
        (k, v) for k, v in (rec.get("attributes") or {}).items() if not k.startswith(skip_prefix)
    ]


def _innermost(report: dict[str, Any] | None, stacktrace: Any) -> str | None:
    frames = (report or {}).get("frames") or []
    if frames:
        f = frames[-1]
        return f"{f.get('file')}:{f.get('line')} in {f.get('function')}"
    if isinstance(stacktrace, str) and stacktrace.strip():
        return stacktrace.strip().splitlines()[-1].strip()
    return None


def _failure_facts(attrs: dict[str, Any], report: dict[str, Any] | None) -> list[tuple[str, Any]]:
    report = report or {}
    etype = report.get("type") or attrs.get("exception.type")
    message = report.get("message") or attrs.get("exception.message")
    where = _innermost(report, attrs.get("exception.stacktrace"))
    facts: list[tuple[str, Any]] = []
    if etype:
        facts.append(("exception_type", limits.text(str(etype), limits.MAX_PARAM_VALUE, True)))
    if where:
        facts.append(("exception_location", limits.text(where, limits.MAX_PARAM_VALUE, True)))
    if message:
        facts.append(("exception_message", str(message)))
    return facts


# -- per signal ------------------------------------------------------------------------


def _span(rec: dict[str, Any]) -> list[dict[str, Any]]:
    start, end = rec.get("start_ns") or 0, rec.get("end_ns") or 0
    duration_ms = (end - start) / 1e6 if end and start and end >= start else None
    facts: list[tuple[str, Any]] = []
    status = (rec.get("status") or {}).get("code")
    if status and status != "UNSET":
        facts.append(("status", str(status).lower()))
    for ev in rec.get("events") or []:
        if ev.get("name") == "exception":
            facts.extend(_failure_facts(ev.get("attributes") or {}, None))
            break
    p = params(rec.get("session_id"), duration_ms, _attrs(rec), facts)
    return [_event(str(rec.get("name")), _micros(end, rec.get("time", 0)), p)]


def _plain_event(rec: dict[str, Any]) -> list[dict[str, Any]]:
    attrs = rec.get("attributes") or {}
    micros = _micros(rec.get("time_ns"), rec.get("time", 0))
    if "exception.type" in attrs or rec.get("report"):
        facts = _failure_facts(attrs, rec.get("report"))
        p = params(rec.get("session_id"), None, _attrs(rec, "exception."), facts)
        return [_event("exception", micros, p)]
    p = params(rec.get("session_id"), attrs.get("duration_ms"), _attrs(rec))
    return [_event(str(rec.get("name")), micros, p)]


def _log(rec: dict[str, Any]) -> list[dict[str, Any]]:
    severity = str(rec.get("severity") or "info").lower()
    facts = [("logger", (rec.get("scope") or {}).get("name")), ("message", rec.get("body"))]
    p = params(rec.get("session_id"), None, _attrs(rec), facts)
    return [_event(f"log_{severity}", _micros(rec.get("time_ns"), rec.get("time", 0)), p)]


def _metric(rec: dict[str, Any]) -> list[dict[str, Any]]:
    kind = rec.get("type")
    events = []
    points = rec.get("points") or []
    dropped = max(0, len(points) - limits.MAX_EVENTS_PER_REQUEST)
    for i, point in enumerate(points[: limits.MAX_EVENTS_PER_REQUEST]):
        if kind == "histogram":
            facts = [(k, point.get(k)) for k in ("count", "sum", "min", "max")]
        else:
            facts = [("value", point.get("value"))]
        facts += [("metric_type", kind), ("unit", rec.get("unit") or None)]
        if i == 0 and dropped:
            facts.append(("points_dropped", dropped))  # more attribute sets than one request holds
        p = params(rec.get("session_id"), None, (point.get("attributes") or {}).items(), facts)
        micros = _micros(point.get("time_ns"), rec.get("time", 0))
        events.append(_event(str(rec.get("name")), micros, p))
    return events


_BY_SIGNAL = {"span": _span, "event": _plain_event, "log": _log, "metric": _metric}


def fragment(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The request fragment for one record, or ``None`` for an unknown signal.

    A fragment holds at most 25 events and stays within the body budget on
    its own, so ``send`` never has to split one.
    """
    convert = _BY_SIGNAL.get(rec.get("signal", ""))
    if convert is None:
        return None
    events = convert(rec)
    if not events:
        return None
    out: dict[str, Any] = {"user_properties": user_properties(rec), "events": events}
    while len(out["events"]) > 1 and size(out) > limits.BODY_BUDGET:
        out["events"].pop()  # only many-point metrics can get here
    return out
