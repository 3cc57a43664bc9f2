"""Turn SDK signals into optel records: plain, JSON-ready dicts.

A record is what the anonymizer scrubs and what each destination renders
into its own wire format. Its shape, per ``signal``::

    common:  signal, app, version, policy, session_id, time (unix seconds),
             resource {key: value}, scope {name, version}
    span:    name, trace_id, span_id, parent_span_id, kind, start_ns, end_ns,
             status {code, message}, attributes, events [{name, time_ns,
             attributes}], links
    event:   name, time_ns, attributes           (telemetry.event, errors;
             failures add report {type, frames [{file, function, line}],
             message only when the tool opted in to free text})
    log:     time_ns, body (the message template), message (the formatted
             text: free text, sent only when the tool opted in), severity,
             attributes                          (the logging bridge)
    metric:  name, description, unit, type (sum|gauge|histogram), monotonic,
             temporality, points [{attributes, start_ns, time_ns, value} or
             {..., count, sum, min, max, bounds, bucket_counts}]

This module reads SDK objects and imports nothing from the SDK itself, so it
can be used on whatever a host's own provider hands over. A string value
the SDK cut at its attribute length limit arrives as :class:`Cut`, so the
anonymizer knows its tail is a fragment no pattern can recognise.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping

Record = dict[str, Any]


class Cut(str):
    """A string value cut at a length limit before optel saw it (its tail is unsafe)."""

    __slots__ = ()


def value(v: Any) -> Any:
    """An attribute value as JSON (tuples and sequences become lists)."""
    if isinstance(v, (str, bool, int, float)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [value(x) for x in v]
    return str(v)


_PLAIN = (str, bool, int, float)
_PLAIN_TYPES = frozenset(_PLAIN)


_ASK: Any = object()


def attributes(attrs: Mapping[str, Any] | None, limit: Any = _ASK) -> dict[str, Any]:
    """Attributes as a plain dict; strings at the length limit (``limit``, or
    the SDK's ``BoundedAttributes.max_value_len``) become :class:`Cut`."""
    if not attrs:
        return {}
    # the SDK's BoundedAttributes (and a view of it) copy their dict in C; iterating
    # them as a Mapping costs a Python call per key
    try:
        out = attrs.copy()  # type: ignore[attr-defined]
    except Exception:
        out = None
    if type(out) is not dict:
        out = dict(attrs)
    for v in out.values():
        if type(v) not in _PLAIN_TYPES and not isinstance(v, _PLAIN):  # rare: sequences, odd types
            out = {str(k): value(v) for k, v in out.items()}
            break
    # the SDK's BoundedAttributes cut strings at max_value_len: mark those
    if limit is _ASK:
        limit = getattr(attrs, "max_value_len", None)
    if isinstance(limit, int) and limit > 0:
        for k, v in out.items():
            if isinstance(v, str) and len(v) >= limit:
                out[k] = Cut(v)
    return out


_resources: dict[int, tuple[Any, dict[str, Any]]] = {}


def resource_attributes(resource: Any) -> dict[str, Any]:
    """Attributes of an SDK ``Resource``, converted once per resource object."""
    if resource is None:
        return {}
    hit = _resources.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    converted = attributes(resource.attributes)
    if len(_resources) > 64:  # a process has a handful of resources; stay bounded
        _resources.clear()
    _resources[id(resource)] = (resource, converted)
    return converted


_names: dict[int, tuple[Any, str]] = {}


def _name_of(member: Any) -> str:
    """An enum member's name (SpanKind, StatusCode), read once per member (by
    identity: an enum's hash and name are Python calls)."""
    hit = _names.get(id(member))
    if hit is not None and hit[0] is member:
        return hit[1]
    name = member.name
    if len(_names) > 64:  # a few enums' members: stay bounded
        _names.clear()
    _names[id(member)] = (member, name)
    return name  # type: ignore[no-any-return]


_scopes: dict[int, tuple[Any, dict[str, Any]]] = {}


def _scope(scope: Any) -> dict[str, Any]:
    """A scope as a dict, made once per scope object and shared (never changed)."""
    if scope is None:
        return {"name": "", "version": None}
    hit = _scopes.get(id(scope))
    if hit is not None and hit[0] is scope:
        return hit[1]
    converted = {"name": scope.name, "version": scope.version}
    if len(_scopes) > 256:  # a process has a few tracers; stay bounded
        _scopes.clear()
    _scopes[id(scope)] = (scope, converted)
    return converted


def from_span(span: Any) -> Record:
    """Record of an ended SDK ``ReadableSpan``."""
    ctx = span.context
    parent = span.parent
    status = span.status
    kind = span.kind
    end = span.end_time
    # the SDK span's own containers: an empty one needs no copy (its public
    # properties copy them under a lock, for every span); a BoundedList's deque
    # says so without a Python call
    raw_attrs = getattr(span, "_attributes", None)
    raw_events = getattr(span, "_events", None)
    raw_events = getattr(raw_events, "_dq", raw_events)
    raw_links = getattr(span, "_links", None)
    raw_links = getattr(raw_links, "_dq", raw_links)
    return {
        "signal": "span",
        "time": (end or time.time_ns()) / 1e9,
        "name": span.name,
        # (printf-style: half the cost of a format spec here)
        "trace_id": "%032x" % ctx.trace_id if ctx else None,  # noqa: UP031
        "span_id": "%016x" % ctx.span_id if ctx else None,  # noqa: UP031
        "parent_span_id": "%016x" % parent.span_id if parent else None,  # noqa: UP031
        "kind": _name_of(kind) if kind is not None else "INTERNAL",
        "start_ns": span.start_time,
        "end_ns": end,
        "status": {
            "code": _name_of(status.status_code) if status else "UNSET",
            "message": (status.description or "") if status else "",
        },
        # ReadableSpan.attributes is a read-only view: the limit is on the SDK's own dict
        "attributes": attributes(span.attributes, getattr(raw_attrs, "max_value_len", None)),
        "events": []
        if raw_events is not None and not raw_events
        else [
            {"name": e.name, "time_ns": e.timestamp, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        "links": 0 if raw_links is not None and not raw_links else len(span.links),
        "resource": resource_attributes(span.resource),
        "scope": _scope(span.instrumentation_scope),
    }


def event(name: str, attrs: Mapping[str, Any], resource: dict[str, Any]) -> Record:
    now = time.time_ns()
    return {
        "signal": "event",
        "time": now / 1e9,
        "name": name,
        "time_ns": now,
        "attributes": attributes(attrs),
        "resource": resource,  # shared, never mutated: the anonymizer scrubs it once
        "scope": {"name": "optel", "version": None},
    }


def log(
    body: str,
    severity: str,
    logger: str,
    attrs: Mapping[str, Any],
    resource: dict[str, Any],
    message: str = "",
) -> Record:
    """A log record: ``body`` is the template (never the arguments), ``message``
    the formatted text (free text: the anonymizer drops it unless opted in)."""
    now = time.time_ns()
    return {
        "signal": "log",
        "time": now / 1e9,
        "time_ns": now,
        "body": body,
        "message": message,
        "severity": severity,
        "attributes": attributes(attrs),
        "resource": resource,  # shared, never mutated: the anonymizer scrubs it once
        "scope": {"name": logger, "version": None},
    }


SDK_SCOPE = "opentelemetry-sdk"
"""The meter of the SDK's self-observability metrics (``otel.sdk.span.started``,
...), which some SDK versions record unasked (1.41, the newest for Python 3.9)."""


def from_metrics(metrics_data: Any) -> Iterator[Record]:
    """One record per metric (all its data points) in an SDK ``MetricsData``,
    except the SDK's own (:data:`SDK_SCOPE`)."""
    for rm in metrics_data.resource_metrics:
        resource = resource_attributes(rm.resource)
        for sm in rm.scope_metrics:
            if getattr(sm.scope, "name", None) == SDK_SCOPE:
                continue  # the SDK's own health metrics are not the tool's telemetry
            scope = _scope(sm.scope)
            for metric in sm.metrics:
                rec = _metric(metric)
                if rec is not None:
                    rec["resource"] = resource
                    rec["scope"] = scope
                    yield rec


def _metric(metric: Any) -> Record | None:
    data = metric.data
    kind = type(data).__name__.lower()  # Sum, Gauge, Histogram, ExponentialHistogram
    points = []
    for p in data.data_points:
        point: dict[str, Any] = {
            "attributes": attributes(p.attributes),
            "start_ns": getattr(p, "start_time_unix_nano", None),
            "time_ns": p.time_unix_nano,
        }
        if kind == "histogram":
            point.update(
                count=p.count,
                sum=p.sum,
                min=p.min,
                max=p.max,
                bounds=list(p.explicit_bounds),
                bucket_counts=list(p.bucket_counts),
            )
        elif kind in ("sum", "gauge"):
            point["value"] = p.value
        else:
            return None  # exponential histograms: not produced by optel's views
        points.append(point)
    if not points:
        return None
    temporality = getattr(data, "aggregation_temporality", None)
    return {
        "signal": "metric",
        "time": time.time(),
        "name": metric.name,
        "description": metric.description or "",
        "unit": metric.unit or "",
        "type": kind,
        "monotonic": bool(getattr(data, "is_monotonic", False)),
        "temporality": temporality.name.lower() if temporality is not None else None,
        "points": points,
    }
