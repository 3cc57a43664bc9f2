"""SDK signals -> record dicts: what is kept and what is not the tool's."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from optel import records


def test_the_sdk_own_health_metrics_are_not_records() -> None:
    # SDK 1.41 (the newest for Python 3.9) records otel.sdk.span.started and
    # friends unasked, under the meter "opentelemetry-sdk"
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    provider.get_meter(records.SDK_SCOPE).create_counter("otel.sdk.span.started").add(1)
    provider.get_meter("optel.mytool").create_counter("models.converted").add(2)
    found = list(records.from_metrics(reader.get_metrics_data()))
    assert [(r["name"], r["scope"]["name"]) for r in found] == [
        ("models.converted", "optel.mytool")
    ]
    provider.shutdown()


def _spans(limits: SpanLimits | None = None) -> tuple[Any, list[Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits or SpanLimits())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("optel.mytool", "1.0"), exporter


def test_a_span_record_has_every_field_of_its_span() -> None:
    tracer, exporter = _spans(SpanLimits(max_attribute_length=5))
    parent = tracer.start_span("parent", start_time=10)
    with trace.use_span(parent, end_on_exit=False):
        link = Link(parent.get_span_context())
        child = tracer.start_span(
            "child", kind=SpanKind.CLIENT, attributes={"a": "ab", "b": "abcdef", "c": (1, 2)},
            links=[link, link], start_time=11,
        )  # fmt: skip
    child.add_event("retry", {"n": 1}, timestamp=12)
    child.set_status(Status(StatusCode.ERROR, "bad"))
    child.end(end_time=2_000_000_000)
    parent.end(end_time=14)
    span = exporter.get_finished_spans()[0]
    rec = records.from_span(span)
    ctx = span.context
    assert rec == {
        "signal": "span",
        "time": 2.0,
        "name": "child",
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(parent.get_span_context().span_id, "016x"),
        "kind": "CLIENT",
        "start_ns": 11,
        "end_ns": 2_000_000_000,
        "status": {"code": "ERROR", "message": "bad"},
        "attributes": {"a": "ab", "b": "abcde", "c": [1, 2]},
        "events": [{"name": "retry", "time_ns": 12, "attributes": {"n": 1}}],
        "links": 2,
        "resource": records.resource_attributes(span.resource),
        "scope": {"name": "optel.mytool", "version": "1.0"},
    }
    assert type(rec["attributes"]["b"]) is records.Cut  # cut at the limit: a fragment
    assert type(rec["attributes"]["a"]) is str


def test_a_plain_span_has_empty_events_links_and_status() -> None:
    tracer, exporter = _spans()
    tracer.start_span("s", attributes={"x": 1}).end()
    rec = records.from_span(exporter.get_finished_spans()[0])
    assert (rec["events"], rec["links"], rec["parent_span_id"], rec["kind"]) == (
        [],
        0,
        None,
        "INTERNAL",
    )
    assert rec["status"] == {"code": "UNSET", "message": ""}
    assert rec["attributes"] == {"x": 1} and type(rec["attributes"]) is dict
