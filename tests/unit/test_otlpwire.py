"""OTLP rendering: the protobuf optel writes and the OTLP/JSON it shows are one message.

Both encodings are decoded with the generated OpenTelemetry classes and
compared, for every record kind and for awkward values, so what ``optel
show`` prints is exactly what goes on the wire.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from optel.exporters import otlpwire
from tests.fakes.otlp_server import from_otlp_json

RESOURCE = {"service.name": "tool", "service.version": "1.2", "os.type": "linux"}
SCOPE = {"name": "tool.scope", "version": "3"}
SPAN = {
    "signal": "span",
    "name": "convert",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "span_id": "b7ad6b7169203331",
    "parent_span_id": "00f067aa0ba902b7",
    "kind": "CLIENT",
    "start_ns": 1_700_000_000_000_000_000,
    "end_ns": 1_700_000_000_250_000_000,
    "status": {"code": "ERROR", "message": "bad shape"},
    "attributes": {"framework": "onnx", "batch": 32, "fp16": True, "ratio": 0.5},
    "dropped_attributes": 2,
    "events": [{"name": "exception", "time_ns": 1_700_000_000_100_000_000,
                "attributes": {"exception.type": "ValueError"}}],
    "resource": RESOURCE,
    "scope": SCOPE,
}  # fmt: skip
EVENT = {
    "signal": "event",
    "name": "model_converted",
    "time_ns": 1_700_000_000_000_000_001,
    "attributes": {"framework": "onnx", "sizes": [1, 2, 3], "empty": []},
    "resource": RESOURCE,
    "scope": {"name": "optel", "version": None},
}
LOG = {
    "signal": "log",
    "time_ns": 5,
    "body": "disk almost full",
    "severity": "WARNING",
    "attributes": {"logger.name": "tool.io"},
    "resource": RESOURCE,
    "scope": {"name": "tool.io", "version": None},
}
SUM = {
    "signal": "metric",
    "name": "converted",
    "description": "models converted",
    "unit": "1",
    "type": "sum",
    "monotonic": True,
    "temporality": "delta",
    "points": [{"attributes": {"framework": "onnx"}, "start_ns": 1, "time_ns": 2, "value": 3},
               {"attributes": {}, "start_ns": 1, "time_ns": 2, "value": 0.25}],
    "resource": RESOURCE,
    "scope": SCOPE,
}  # fmt: skip
GAUGE = {**SUM, "name": "load", "type": "gauge", "monotonic": False, "temporality": "cumulative",
         "points": [{"attributes": {}, "time_ns": 9, "value": -1}]}  # fmt: skip
HISTOGRAM = {
    **SUM,
    "name": "optel.command.duration",
    "unit": "ms",
    "type": "histogram",
    "points": [{"attributes": {"optel.command": "convert"}, "start_ns": 1, "time_ns": 2,
                "count": 3, "sum": 30.5, "min": 0.0, "max": 20.0, "bounds": [0.0, 5.0, 10.0],
                "bucket_counts": [1, 0, 1, 1]}],
}  # fmt: skip

REQUEST = {"span": ExportTraceServiceRequest, "metric": ExportMetricsServiceRequest,
           "event": ExportLogsServiceRequest, "log": ExportLogsServiceRequest}  # fmt: skip


def _both(records: list[dict[str, Any]]) -> tuple[Any, Any]:
    kind = REQUEST[records[0]["signal"]]
    body, bad = otlpwire.encode(records)
    doc, bad_json = otlpwire.to_json(records)
    assert bad == bad_json == []
    json.dumps(doc, allow_nan=False)  # strictly JSON: NaN and infinities are strings
    return kind.FromString(body), from_otlp_json(doc, kind)


@pytest.mark.parametrize(
    "rec",
    [SPAN, EVENT, LOG, SUM, GAUGE, HISTOGRAM],
    ids=lambda r: r["name"] if "name" in r else r["signal"],
)
def test_protobuf_and_json_are_the_same_message(rec: dict[str, Any]) -> None:
    wire, shown = _both([rec])
    assert wire == shown
    assert wire.ByteSize() > 0


def test_the_fields_land_where_the_spec_puts_them() -> None:
    wire, _ = _both([SPAN])
    (rs,) = wire.resource_spans
    assert {kv.key: kv.value.string_value for kv in rs.resource.attributes} == RESOURCE
    (ss,) = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("tool.scope", "3")
    (span,) = ss.spans
    assert (
        span.trace_id.hex() == SPAN["trace_id"] and span.parent_span_id.hex() == "00f067aa0ba902b7"
    )
    assert (span.kind, span.status.code, span.status.message) == (3, 2, "bad shape")
    assert span.end_time_unix_nano - span.start_time_unix_nano == 250_000_000
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert attrs["batch"].int_value == 32 and attrs["fp16"].bool_value is True
    assert attrs["ratio"].double_value == 0.5 and span.dropped_attributes_count == 2
    assert span.events[0].attributes[0].value.string_value == "ValueError"
    (logs, _) = _both([EVENT])
    rec = logs.resource_logs[0].scope_logs[0].log_records[0]
    assert rec.event_name == "model_converted" and rec.severity_number == 9
    assert rec.observed_time_unix_nano == rec.time_unix_nano == EVENT["time_ns"]
    (metrics, _) = _both([HISTOGRAM])
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    assert list(point.bucket_counts) == [1, 0, 1, 1] and list(point.explicit_bounds) == [0, 5, 10]
    assert point.HasField("min") and point.min == 0.0 and point.sum == 30.5


def test_records_sharing_resource_and_scope_share_their_entries() -> None:
    other_scope = {**SPAN, "scope": {"name": "other", "version": None}}
    other_resource = {**SPAN, "resource": {"service.name": "second"}}
    wire, shown = _both([SPAN, {**SPAN, "name": "b"}, other_scope, other_resource])
    assert wire == shown
    assert [len(rs.scope_spans) for rs in wire.resource_spans] == [2, 1]
    assert [s.name for s in wire.resource_spans[0].scope_spans[0].spans] == ["convert", "b"]


def test_a_record_that_cannot_be_represented_is_left_out_alone() -> None:
    broken = [
        {**SPAN, "trace_id": "zz"},  # not hex
        {**SPAN, "span_id": "abcd"},  # the wrong size
        {**SPAN, "start_ns": -5},  # a time before 1970
        {**SUM, "type": "exponential"},
        {"signal": "span", "start_ns": "soon"},
    ]
    body, bad = otlpwire.encode([SPAN, *broken])
    doc, bad_json = otlpwire.to_json([SPAN, *broken])
    assert bad == bad_json == [1, 2, 3, 4, 5]
    assert ExportTraceServiceRequest.FromString(body) == from_otlp_json(
        doc, ExportTraceServiceRequest
    )


def test_awkward_values_stay_one_message() -> None:
    rec = {
        **EVENT,
        "attributes": {
            "huge": 2**70,  # beyond int64: sent as a double
            "negative": -(2**40),
            "nan": math.nan,
            "inf": -math.inf,
            "nested": [[1, "a"], [], None],
            "none": None,
            "text": "ünïcødé ✓ \u0000",
        },
    }
    wire, shown = _both([rec])
    assert wire == shown or _nan_equal(wire, shown)


def _nan_equal(a: Any, b: Any) -> bool:
    # NaN != NaN in protobuf equality too: compare the serialized forms instead
    return bool(a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True))


_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    attrs=st.dictionaries(st.text(max_size=12), _value, max_size=5),
    name=st.text(max_size=30),
    time_ns=st.integers(0, 2**64 - 1),
)
def test_any_event_is_one_message_in_both_encodings(
    attrs: dict[str, Any], name: str, time_ns: int
) -> None:
    rec = {**EVENT, "attributes": attrs, "name": name, "time_ns": time_ns}
    wire, shown = _both([rec])
    assert wire == shown


def _outcome(encode: Any, rec: dict[str, Any]) -> Any:
    try:
        return encode(rec)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return type(exc)


def _ids(size: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=size, max_size=size).map(bytes.hex)


# a common span's fields, each drawn valid; and, for a few of them, something else
_COMMON_SPAN = {
    "trace_id": _ids(16), "span_id": _ids(8), "parent_span_id": st.none() | _ids(8),
    "name": st.text(max_size=20),
    "kind": st.sampled_from(["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]),
    "start_ns": st.integers(1, 2**64 - 1), "end_ns": st.integers(1, 2**64 - 1),
    "status": st.builds(dict, code=st.sampled_from(["UNSET", "OK", "ERROR"]), message=st.just("")),
    "attributes": st.dictionaries(st.text(max_size=8), _value, max_size=3),
    "events": st.sampled_from([[], None, ()]), "dropped_attributes": st.sampled_from([None, 0]),
}  # fmt: skip
_ODD = (
    st.none() | st.booleans() | st.integers(-2, 2**65) | st.floats() | st.text(max_size=40)
    | _ids(4) | _ids(16).map(lambda h: h[:8] + " " + h[9:]) | st.just(SPAN["events"])
    | st.builds(dict, code=st.text(max_size=6) | st.none(), message=st.text(max_size=3))
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    common=st.fixed_dictionaries(_COMMON_SPAN),
    odd=st.dictionaries(st.sampled_from(sorted(_COMMON_SPAN)), _ODD, max_size=2),
)
def test_the_common_span_written_out_is_the_general_encoding(
    common: dict[str, Any], odd: dict[str, Any]
) -> None:
    """otlpwire._span writes the common span out by hand: for common spans,
    and for ones with a field or two of another type, size or value, it gives
    the bytes the general encoding gives (or fails alike)."""
    rec = {**SPAN, **common, **odd}
    assert _outcome(otlpwire._span, rec) == _outcome(otlpwire._any_span, rec)


def test_a_common_span_is_one_message_in_both_encodings() -> None:
    # the span most tools send: no events, no status text, no parent
    rec = {**SPAN, "events": [], "status": {"code": "UNSET", "message": ""},
           "dropped_attributes": 0, "parent_span_id": None}  # fmt: skip
    wire, shown = _both([rec])
    assert wire == shown
    (sent,) = wire.resource_spans[0].scope_spans[0].spans
    assert (sent.trace_id.hex(), sent.span_id.hex(), sent.parent_span_id) == (
        SPAN["trace_id"], SPAN["span_id"], b""
    )  # fmt: skip
    assert (sent.name, sent.kind, sent.start_time_unix_nano) == ("convert", 3, SPAN["start_ns"])
    assert {a.key for a in sent.attributes} == set(SPAN["attributes"])
