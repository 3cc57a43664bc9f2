"""optel records as OTLP export requests: protobuf bytes, and the OTLP/JSON form.

Records are rendered when they are sent, a batch at a time: records sharing a
resource and a scope share one ``ResourceSpans``/``ScopeSpans`` (or logs,
metrics) entry, as the SDK's own exporter does. Two encodings of the same
message, built field by field from the same record:

- :func:`encode`: protobuf (``application/x-protobuf``, and the gRPC payload),
  written directly: no ``protobuf`` runtime and no generated modules are
  imported (they cost a destination about 50 ms and several MB, which a short
  run would pay at exit);
- :func:`to_json`: OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
  the protobuf JSON mapping with lowerCamelCase names, 64-bit integers as
  strings, enums as integers and trace/span ids as hex. ``optel show`` prints
  it and ``http/json`` sends it.

The tests decode both with the generated classes and compare them, record kind
by record kind, so the two cannot drift apart.

Field numbers are those of opentelemetry-proto (``trace/v1``, ``logs/v1``,
``metrics/v1``, ``common/v1``, ``resource/v1``).
"""

from __future__ import annotations

import math
import struct
from typing import Any, Callable, Mapping, Sequence

_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
_KIND = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}
_DELTA, _CUMULATIVE = 1, 2
_I64 = 1 << 63
_U64 = 1 << 64

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack


class Unrenderable(ValueError):
    """A record this encoding cannot represent (a damaged or foreign record)."""


# -- protobuf primitives --------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < _SMALL:
        return _VARINTS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _make_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# varints below 2**14 (every length a record has) looked up, not computed
_SMALL = 1 << 14
_VARINTS = [_make_varint(n) for n in range(_SMALL)]


def _tag(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _len(field_tag: bytes, data: bytes) -> bytes:
    return field_tag + _varint(len(data)) + data


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _uint(value: Any) -> int:
    """A time or count: a non-negative whole number below 2**64."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None:
            return 0
        raise Unrenderable(f"not a number: {type(value).__name__}")
    n = int(value)
    if not 0 <= n < _U64:
        raise Unrenderable("number out of range")
    return n


# one precomputed tag per (field, wire type) used below
T1_LEN, T2_LEN, T3_LEN, T5_LEN, T6_LEN = (_tag(f, 2) for f in (1, 2, 3, 5, 6))
T7_LEN, T9_LEN, T11_LEN, T12_LEN, T15_LEN = (_tag(f, 2) for f in (7, 9, 11, 12, 15))
T4_LEN = _tag(4, 2)


def _any(value: Any) -> bytes:
    """AnyValue: string 1, bool 2, int 3, double 4, array 5 (values 1)."""
    t = type(value)
    if t is str:
        data = value.encode("utf-8")
        return b"\x0a" + _varint(len(data)) + data
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if t is int:
        if -_I64 <= value < _I64:
            return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
        return b"\x21" + _double(float(value))  # too big for int64: sent as a double
    if t is float:
        return b"\x21" + _double(value)
    if t in (list, tuple):
        inner = b"".join(_len(b"\x0a", _any(v)) for v in value)
        return _len(b"\x2a", inner)
    data = _str(value).encode("utf-8")
    return b"\x0a" + _varint(len(data)) + data


def _kv(key: Any, value: Any) -> bytes:
    k = _str(key).encode("utf-8")
    v = _any(value)
    return b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(v)) + v


# Attributes repeat (a tool's few labels, "event.name", the resource): each
# key=value with a text or bool value is encoded once (bounded), with its tag.
_ENCODED: dict[tuple[bytes, str, Any, type], bytes] = {}
_ENCODED_MAX = 8192


def _attrs(field_tag: bytes, attrs: Mapping[str, Any] | None) -> bytes:
    if not attrs:
        return b""
    out = []
    cache = _ENCODED
    for k, v in attrs.items():
        t = type(v)
        if t is str or t is bool:
            key = (field_tag, k, v, t)  # type in the key: True and 1 differ here
            done = cache.get(key)
            if done is None:
                kv = _kv(k, v)
                done = field_tag + _varint(len(kv)) + kv
                if len(cache) >= _ENCODED_MAX:
                    cache.clear()
                cache[key] = done
            out.append(done)
        else:
            kv = _kv(k, v)
            out.append(field_tag + _varint(len(kv)) + kv)
    return b"".join(out)


def _opt_str(field_tag: bytes, value: Any) -> bytes:
    if not value:
        return b""
    data = _str(value).encode("utf-8")
    return field_tag + _varint(len(data)) + data


def _opt_uint(field: int, value: Any) -> bytes:
    n = _uint(value)
    return _tag(field, 0) + _varint(n) if n else b""


def _opt_fixed64(field_tag: bytes, value: Any) -> bytes:
    n = _uint(value)
    return field_tag + _fixed64(n) if n else b""


def _id(value: Any, size: int) -> bytes:
    if not value:
        return b""
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raise Unrenderable("an id that is not hex") from None
    if len(raw) != size:
        raise Unrenderable("an id of the wrong size")
    return raw


T1_I64, T2_I64, T3_I64, T4_I64, T7_I64, T8_I64 = (_tag(f, 1) for f in (1, 2, 3, 4, 7, 8))
T11_I64, T12_I64, T6_I64 = _tag(11, 1), _tag(12, 1), _tag(6, 1)


# -- records -> protobuf ------------------------------------------------------------------


def _scope(rec: Mapping[str, Any]) -> bytes:
    scope = rec.get("scope") or {}
    return _opt_str(T1_LEN, scope.get("name")) + _opt_str(T2_LEN, scope.get("version"))


# a span's kind and (text-less) status as they are written: one lookup each
_KIND_FIELD = {k: _tag(6, 0) + _varint(v) for k, v in _KIND.items()}
_STATUS_FIELD = {
    k: _len(T15_LEN, _tag(3, 0) + _varint(v)) if v else b"" for k, v in _STATUS.items()
}
_TRACE_ID, _SPAN_ID, _PARENT_ID = b"\x0a\x10", b"\x12\x08", b"\x22\x08"  # tag and length


def _span(rec: Mapping[str, Any]) -> bytes:
    """A span: the common case written out (hex ids of their size, a name,
    a known kind, both clocks, no events, a status without text), with the
    same fields and bytes as :func:`_any_span`, which takes every other."""
    get = rec.get
    trace, span, parent = get("trace_id"), get("span_id"), get("parent_span_id")
    start, end, status, name = get("start_ns"), get("end_ns"), get("status"), get("name")
    kind_name = get("kind") or "INTERNAL"
    kind = _KIND_FIELD.get(kind_name) if type(kind_name) is str else None
    dropped = get("dropped_attributes")
    if (
        type(trace) is str
        and type(span) is str
        and (parent is None or type(parent) is str)
        and type(name) is str
        and type(start) is int
        and type(end) is int
        and 0 < start < _U64
        and 0 < end < _U64
        and kind is not None
        and type(status) is dict
        and not status.get("message")
        and not get("events")
        and (dropped is None or (type(dropped) is int and dropped == 0))
    ):
        code_name = status.get("code") or "UNSET"
        code = _STATUS_FIELD.get(code_name) if type(code_name) is str else None
        try:
            ids = (bytes.fromhex(trace), bytes.fromhex(span), bytes.fromhex(parent or ""))
        except ValueError:
            ids = None
        if code is not None and ids is not None:
            trace_b, span_b, parent_b = ids
            if len(trace_b) == 16 and len(span_b) == 8 and len(parent_b) in (0, 8):
                text = name.encode("utf-8")
                return b"".join(
                    (
                        _TRACE_ID,
                        trace_b,
                        _SPAN_ID,
                        span_b,
                        _PARENT_ID + parent_b if parent_b else b"",
                        T5_LEN + _varint(len(text)) + text if text else b"",
                        kind,
                        T7_I64,
                        _fixed64(start),
                        T8_I64,
                        _fixed64(end),
                        _attrs(T9_LEN, get("attributes")),
                        code,
                    )
                )
    return _any_span(rec)


def _any_span(rec: Mapping[str, Any]) -> bytes:
    status = rec.get("status") or {}
    parts = [
        _opt_bytes(T1_LEN, _id(rec.get("trace_id"), 16)),
        _opt_bytes(T2_LEN, _id(rec.get("span_id"), 8)),
        _opt_bytes(T4_LEN, _id(rec.get("parent_span_id"), 8)),
        _opt_str(T5_LEN, rec.get("name")),
        _opt_uint(6, _KIND.get(rec.get("kind") or "INTERNAL", 1)),
        _opt_fixed64(T7_I64, rec.get("start_ns")),
        _opt_fixed64(T8_I64, rec.get("end_ns")),
        _attrs(T9_LEN, rec.get("attributes")),
        _opt_uint(10, rec.get("dropped_attributes")),
    ]
    for ev in rec.get("events") or ():
        body = (
            _opt_fixed64(T1_I64, ev.get("time_ns"))
            + _opt_str(T2_LEN, ev.get("name"))
            + _attrs(T3_LEN, ev.get("attributes"))
        )
        parts.append(_len(T11_LEN, body))
    code = _STATUS.get(status.get("code") or "UNSET", 0)
    st = _opt_str(T2_LEN, status.get("message")) + _opt_uint(3, code)
    if st:
        parts.append(_len(T15_LEN, st))
    return b"".join(parts)


def _opt_bytes(field_tag: bytes, data: bytes) -> bytes:
    return field_tag + _varint(len(data)) + data if data else b""


def _log_fields(rec: Mapping[str, Any]) -> tuple[dict[str, Any], str, int, str]:
    """(attributes, severity text, severity number, body) of a log or event record."""
    attrs = dict(rec.get("attributes") or {})
    if rec.get("signal") == "event":
        # an OTel event: a log record named by event.name (also as an attribute,
        # for receivers older than the field)
        # (https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-eventname)
        attrs["event.name"] = _str(rec.get("name"))
        return attrs, "INFO", 9, ""
    severity = _str(rec.get("severity") or "INFO")
    return attrs, severity, _SEVERITY.get(severity, 9), _str(rec.get("body"))


_EVENT_SEVERITY = b"\x10\x09\x1a\x04INFO"  # severity_number 9, severity_text "INFO"


def _log(rec: Mapping[str, Any]) -> bytes:
    attrs = rec.get("attributes") or {}
    if rec.get("signal") == "event" and "event.name" not in attrs:
        # the common case written out (every usage event takes it): the same
        # fields and order as the general path below, with fewer steps
        n = _uint(rec.get("time_ns"))
        stamp = _fixed64(n) if n else b""
        name = _str(rec.get("name"))
        encoded = name.encode("utf-8")
        return b"".join(
            (
                T1_I64 + stamp if n else b"",
                _EVENT_SEVERITY,
                _attrs(T6_LEN, attrs),
                _attrs(T6_LEN, {"event.name": name}),
                _opt_uint(7, rec.get("dropped_attributes")),
                T11_I64 + stamp if n else b"",
                T12_LEN + _varint(len(encoded)) + encoded if encoded else b"",
            )
        )
    return _log_general(rec)


def _log_general(rec: Mapping[str, Any]) -> bytes:
    attrs, severity, number, body = _log_fields(rec)
    parts = [
        _opt_fixed64(T1_I64, rec.get("time_ns")),
        _opt_uint(2, number),
        _opt_str(T3_LEN, severity),
    ]
    if body:
        parts.append(_len(T5_LEN, _any(body)))
    parts.append(_attrs(T6_LEN, attrs))
    parts.append(_opt_uint(7, rec.get("dropped_attributes")))
    parts.append(_opt_fixed64(T11_I64, rec.get("time_ns")))
    if rec.get("signal") == "event":
        parts.append(_opt_str(T12_LEN, rec.get("name")))
    return b"".join(parts)


def _number_point(p: Mapping[str, Any]) -> bytes:
    value = p.get("value", 0)
    if isinstance(value, int) and not isinstance(value, bool) and -_I64 <= value < _I64:
        val = T6_I64 + struct.pack("<q", value)  # as_int (sfixed64)
    else:
        val = T4_I64 + _double(_float(value))  # as_double
    return (
        _opt_fixed64(T2_I64, p.get("start_ns"))
        + _opt_fixed64(T3_I64, p.get("time_ns"))
        + val
        + _attrs(T7_LEN, p.get("attributes"))
    )


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Unrenderable("not a number") from None


def _histogram_point(p: Mapping[str, Any]) -> bytes:
    counts = [_uint(c) for c in p.get("bucket_counts") or ()]
    bounds = [_float(b) for b in p.get("bounds") or ()]
    parts = [
        _opt_fixed64(T2_I64, p.get("start_ns")),
        _opt_fixed64(T3_I64, p.get("time_ns")),
        _opt_fixed64(_tag(4, 1), p.get("count")),
        T5_I64 + _double(_float(p.get("sum", 0.0))),  # optional: present
    ]
    if counts:
        parts.append(_len(T6_LEN, b"".join(_fixed64(c) for c in counts)))
    if bounds:
        parts.append(_len(T7_LEN, b"".join(_double(b) for b in bounds)))
    parts.append(_attrs(T9_LEN, p.get("attributes")))
    for field, key in ((11, "min"), (12, "max")):
        if p.get(key) is not None:
            parts.append(_tag(field, 1) + _double(_float(p.get(key))))
    return b"".join(parts)


T5_I64 = _tag(5, 1)


def _metric(rec: Mapping[str, Any]) -> bytes:
    kind = rec.get("type")
    temporality = _DELTA if rec.get("temporality") == "delta" else _CUMULATIVE
    points = rec.get("points") or ()
    if kind == "sum":
        body = b"".join(_len(T1_LEN, _number_point(p)) for p in points)
        body += _opt_uint(2, temporality) + (b"\x18\x01" if rec.get("monotonic") else b"")
        data = _len(T7_LEN, body)
    elif kind == "gauge":
        data = _len(T5_LEN, b"".join(_len(T1_LEN, _number_point(p)) for p in points))
    elif kind == "histogram":
        body = b"".join(_len(T1_LEN, _histogram_point(p)) for p in points)
        data = _len(T9_LEN, body + _opt_uint(2, temporality))
    else:
        raise Unrenderable(f"metric type {kind!r}")
    return (
        _opt_str(T1_LEN, rec.get("name"))
        + _opt_str(T2_LEN, rec.get("description"))
        + _opt_str(T3_LEN, rec.get("unit"))
        + data
    )


_ITEM: dict[str, Callable[[Mapping[str, Any]], bytes]] = {
    "span": _span,
    "event": _log,
    "log": _log,
    "metric": _metric,
}


def _group_key(value: Any) -> Any:
    """A hashable key for a resource or scope dict (equal dicts, equal keys)."""
    if not value:
        return ()
    try:
        return tuple(value.items())
    except TypeError:  # an unhashable value (a list): rarely, by its text
        return repr(sorted(value.items(), key=lambda kv: kv[0]))


def _stamped(resource: Mapping[str, Any] | None, stamp: tuple[str, str] | None) -> Any:
    """``resource`` with ``stamp`` (key, value) set last, any value it had replaced."""
    if stamp is None:
        return resource
    out = {k: v for k, v in (resource or {}).items() if k != stamp[0]}
    out[stamp[0]] = stamp[1]
    return out


def encode(
    records: Sequence[Mapping[str, Any]], stamp: tuple[str, str] | None = None
) -> tuple[bytes, list[int]]:
    """One export request (protobuf) for records of one OTLP signal, and the
    positions of the records it could not represent (left out of it).
    ``stamp``: a (key, value) set on every resource (added at send time)."""
    groups: dict[Any, tuple[bytes, dict[Any, list[bytes]]]] = {}
    scopes_of: dict[Any, bytes] = {}
    bad: list[int] = []
    for i, rec in enumerate(records):
        try:
            item = _ITEM[rec["signal"]](rec)
            rkey = _group_key(rec.get("resource"))
            skey = _group_key(rec.get("scope"))
            group = groups.get(rkey)
            if group is None:
                group = groups[rkey] = (_attrs(T1_LEN, _stamped(rec.get("resource"), stamp)), {})
            if skey not in group[1]:
                scopes_of[skey] = _scope(rec)
                group[1][skey] = []
            group[1][skey].append(item)
        except (Unrenderable, KeyError, TypeError, ValueError, AttributeError, OverflowError):
            bad.append(i)
    out = []
    for resource, scopes in groups.values():
        body = [_len(T1_LEN, resource)]
        for skey, items in scopes.items():
            scope = _len(T1_LEN, scopes_of[skey]) + b"".join(_len(T2_LEN, it) for it in items)
            body.append(_len(T2_LEN, scope))
        out.append(_len(T1_LEN, b"".join(body)))
    return b"".join(out), bad


# -- records -> OTLP/JSON -----------------------------------------------------------------


def _jnum(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _jany(value: Any) -> dict[str, Any]:
    t = type(value)
    if t is str:
        return {"stringValue": value}
    if t is bool:
        return {"boolValue": value}
    if t is int:
        if -_I64 <= value < _I64:
            return {"intValue": str(value)}
        return {"doubleValue": _jnum(float(value))}
    if t is float:
        return {"doubleValue": _jnum(value)}
    if t in (list, tuple):
        return {"arrayValue": {"values": [_jany(v) for v in value]} if value else {}}
    return {"stringValue": _str(value)}


def _jattrs(attrs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": _str(k), "value": _jany(v)} for k, v in (attrs or {}).items()]


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is the protobuf default (proto3 JSON omits it)."""
    if value:
        out[key] = value


def _jid(value: Any, size: int) -> str:
    return _id(value, size).hex()


def _jspan(rec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "traceId", _jid(rec.get("trace_id"), 16))
    _put(out, "spanId", _jid(rec.get("span_id"), 8))
    _put(out, "parentSpanId", _jid(rec.get("parent_span_id"), 8))
    _put(out, "name", _str(rec.get("name")))
    _put(out, "kind", _KIND.get(rec.get("kind") or "INTERNAL", 1))
    _put(out, "startTimeUnixNano", _u64s(rec.get("start_ns")))
    _put(out, "endTimeUnixNano", _u64s(rec.get("end_ns")))
    _put(out, "attributes", _jattrs(rec.get("attributes")))
    _put(out, "droppedAttributesCount", _uint(rec.get("dropped_attributes")))
    events = []
    for ev in rec.get("events") or ():
        e: dict[str, Any] = {}
        _put(e, "timeUnixNano", _u64s(ev.get("time_ns")))
        _put(e, "name", _str(ev.get("name")))
        _put(e, "attributes", _jattrs(ev.get("attributes")))
        events.append(e)
    _put(out, "events", events)
    status = rec.get("status") or {}
    st: dict[str, Any] = {}
    _put(st, "message", _str(status.get("message")))
    _put(st, "code", _STATUS.get(status.get("code") or "UNSET", 0))
    _put(out, "status", st)
    return out


def _u64s(value: Any) -> str:
    n = _uint(value)
    return str(n) if n else ""


def _jlog(rec: Mapping[str, Any]) -> dict[str, Any]:
    attrs, severity, number, body = _log_fields(rec)
    out: dict[str, Any] = {}
    _put(out, "timeUnixNano", _u64s(rec.get("time_ns")))
    _put(out, "observedTimeUnixNano", _u64s(rec.get("time_ns")))
    _put(out, "severityNumber", number)
    _put(out, "severityText", severity)
    if body:
        out["body"] = _jany(body)
    _put(out, "attributes", _jattrs(attrs))
    _put(out, "droppedAttributesCount", _uint(rec.get("dropped_attributes")))
    if rec.get("signal") == "event":
        _put(out, "eventName", _str(rec.get("name")))
    return out


def _jnumber_point(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "attributes", _jattrs(p.get("attributes")))
    _put(out, "startTimeUnixNano", _u64s(p.get("start_ns")))
    _put(out, "timeUnixNano", _u64s(p.get("time_ns")))
    value = p.get("value", 0)
    if isinstance(value, int) and not isinstance(value, bool) and -_I64 <= value < _I64:
        out["asInt"] = str(value)
    else:
        out["asDouble"] = _jnum(_float(value))
    return out


def _jhistogram_point(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "attributes", _jattrs(p.get("attributes")))
    _put(out, "startTimeUnixNano", _u64s(p.get("start_ns")))
    _put(out, "timeUnixNano", _u64s(p.get("time_ns")))
    _put(out, "count", _u64s(p.get("count")))
    out["sum"] = _jnum(_float(p.get("sum", 0.0)))
    _put(out, "bucketCounts", [str(_uint(c)) for c in p.get("bucket_counts") or ()])
    _put(out, "explicitBounds", [_jnum(_float(b)) for b in p.get("bounds") or ()])
    for key in ("min", "max"):
        if p.get(key) is not None:
            out[key] = _jnum(_float(p.get(key)))
    return out


def _jmetric(rec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "name", _str(rec.get("name")))
    _put(out, "description", _str(rec.get("description")))
    _put(out, "unit", _str(rec.get("unit")))
    kind = rec.get("type")
    temporality = _DELTA if rec.get("temporality") == "delta" else _CUMULATIVE
    points = rec.get("points") or ()
    if kind == "sum":
        data: dict[str, Any] = {}
        _put(data, "dataPoints", [_jnumber_point(p) for p in points])
        data["aggregationTemporality"] = temporality
        _put(data, "isMonotonic", bool(rec.get("monotonic")))
        out["sum"] = data
    elif kind == "gauge":
        out["gauge"] = {"dataPoints": [_jnumber_point(p) for p in points]} if points else {}
    elif kind == "histogram":
        data = {}
        _put(data, "dataPoints", [_jhistogram_point(p) for p in points])
        data["aggregationTemporality"] = temporality
        out["histogram"] = data
    else:
        raise Unrenderable(f"metric type {kind!r}")
    return out


_JITEM: dict[str, tuple[str, str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    # record signal -> (resource list, scope list, item list), item builder
    "span": ("resourceSpans", "scopeSpans:spans", _jspan),
    "event": ("resourceLogs", "scopeLogs:logRecords", _jlog),
    "log": ("resourceLogs", "scopeLogs:logRecords", _jlog),
    "metric": ("resourceMetrics", "scopeMetrics:metrics", _jmetric),
}


def to_json(
    records: Sequence[Mapping[str, Any]], stamp: tuple[str, str] | None = None
) -> tuple[dict[str, Any], list[int]]:
    """The OTLP/JSON export request for records of one OTLP signal, and the
    positions of the records it could not represent (left out of it).
    ``stamp``: as for :func:`encode`."""
    top = ""
    groups: dict[Any, dict[str, Any]] = {}
    scopes: dict[tuple[Any, Any], list[Any]] = {}
    bad: list[int] = []
    for i, rec in enumerate(records):
        try:
            top, inner, build = _JITEM[rec["signal"]]
            scope_list, item_list = inner.split(":")
            item = build(rec)
            rkey = _group_key(rec.get("resource"))
            skey = _group_key(rec.get("scope"))
            group = groups.get(rkey)
            if group is None:
                resource: dict[str, Any] = {}
                _put(resource, "attributes", _jattrs(_stamped(rec.get("resource"), stamp)))
                group = groups[rkey] = {"resource": resource, scope_list: []}
            items = scopes.get((rkey, skey))
            if items is None:
                raw = rec.get("scope") or {}
                scope: dict[str, Any] = {}
                _put(scope, "name", _str(raw.get("name")))
                _put(scope, "version", _str(raw.get("version")))
                items = scopes[(rkey, skey)] = []
                group[scope_list].append({"scope": scope, item_list: items})
            items.append(item)
        except (Unrenderable, KeyError, TypeError, ValueError, AttributeError, OverflowError):
            bad.append(i)
    return ({top: list(groups.values())} if top else {}), bad
