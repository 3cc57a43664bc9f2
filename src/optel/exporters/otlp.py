"""The ``otlp`` destination: OTLP/HTTP with protobuf bodies.

Each record is stored in the spool as the OTLP JSON form of a one-record
export request (the protobuf JSON mapping), so ``optel show`` prints the
very message that is sent; at send time a batch's messages are merged and
posted as protobuf to ``{endpoint}/v1/traces|metrics|logs``.

Response handling follows the OTLP/HTTP specification
(https://opentelemetry.io/docs/specs/otlp/#otlphttp-response): 2xx is
accepted; 429, 502, 503 and 504 are retryable, honouring ``Retry-After``;
optel also retries 408, every 5xx, timeouts and connection errors (the
record is kept, so retrying can only help); any other 4xx cannot succeed
and is dropped, counted with its reason.

Standard variables honoured (https://opentelemetry.io/docs/specs/otel/protocol/exporter/):
``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]ENDPOINT``, ``..._PROTOCOL``
(``http/protobuf`` or ``grpc``), ``..._HEADERS``, ``..._COMPRESSION`` (gzip),
``..._TIMEOUT`` (bounded by the caller's deadline), ``..._CERTIFICATE``,
``..._CLIENT_CERTIFICATE``/``..._CLIENT_KEY``, ``..._INSECURE`` (gRPC).
"""

from __future__ import annotations

import gzip
import os
import time
from typing import Any, Mapping, Sequence
from urllib.parse import unquote

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ..config import Config
from ..spool import Row
from . import Outcome, retry_after, suppressed

SIGNALS = {"span": "traces", "metric": "metrics", "event": "logs", "log": "logs"}
_REQUESTS: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_FIELDS = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}
_RETRYABLE = {408, 429}
_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}


# -- rendering: optel record -> OTLP message -----------------------------------------------


def _any(value: Any) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(values=[_any(v) for v in value])
        )
    return common_pb2.AnyValue(string_value="" if value is None else str(value))


def _attrs(attrs: Mapping[str, Any] | None) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=_any(v)) for k, v in (attrs or {}).items()]


def _resource(rec: Mapping[str, Any]) -> resource_pb2.Resource:
    return resource_pb2.Resource(attributes=_attrs(rec.get("resource")))


def _scope(rec: Mapping[str, Any]) -> common_pb2.InstrumentationScope:
    scope = rec.get("scope") or {}
    return common_pb2.InstrumentationScope(
        name=scope.get("name") or "", version=scope.get("version") or ""
    )


def _span(rec: Mapping[str, Any]) -> ExportTraceServiceRequest:
    status = rec.get("status") or {}
    span = trace_pb2.Span(
        trace_id=bytes.fromhex(rec["trace_id"]) if rec.get("trace_id") else b"",
        span_id=bytes.fromhex(rec["span_id"]) if rec.get("span_id") else b"",
        parent_span_id=bytes.fromhex(rec["parent_span_id"]) if rec.get("parent_span_id") else b"",
        name=rec.get("name") or "",
        kind=trace_pb2.Span.SpanKind.Value("SPAN_KIND_" + (rec.get("kind") or "INTERNAL")),
        start_time_unix_nano=rec.get("start_ns") or 0,
        end_time_unix_nano=rec.get("end_ns") or 0,
        attributes=_attrs(rec.get("attributes")),
        dropped_attributes_count=rec.get("dropped_attributes", 0),
        events=[
            trace_pb2.Span.Event(
                time_unix_nano=e.get("time_ns") or 0,
                name=e.get("name") or "",
                attributes=_attrs(e.get("attributes")),
            )
            for e in rec.get("events", [])
        ],
        status=trace_pb2.Status(
            code=trace_pb2.Status.StatusCode.Value(
                "STATUS_CODE_" + (status.get("code") or "UNSET")
            ),
            message=status.get("message") or "",
        ),
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=_resource(rec),
                scope_spans=[trace_pb2.ScopeSpans(scope=_scope(rec), spans=[span])],
            )
        ]
    )


def _log(rec: Mapping[str, Any]) -> ExportLogsServiceRequest:
    attrs = dict(rec.get("attributes") or {})
    if rec["signal"] == "event":
        # an OTel event: a log record named by event.name
        # (https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-eventname)
        attrs["event.name"] = rec.get("name") or ""
        severity, body = "INFO", ""
    else:
        severity, body = rec.get("severity") or "INFO", rec.get("body") or ""
    record = logs_pb2.LogRecord(
        time_unix_nano=rec.get("time_ns") or 0,
        observed_time_unix_nano=rec.get("time_ns") or 0,
        severity_text=severity,
        severity_number=_SEVERITY.get(severity, 9),  # type: ignore[arg-type]
        body=common_pb2.AnyValue(string_value=body) if body else None,
        attributes=_attrs(attrs),
        dropped_attributes_count=rec.get("dropped_attributes", 0),
    )
    if rec["signal"] == "event":
        record.event_name = rec.get("name") or ""
    return ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=_resource(rec),
                scope_logs=[logs_pb2.ScopeLogs(scope=_scope(rec), log_records=[record])],
            )
        ]
    )


def _number(point: Mapping[str, Any]) -> metrics_pb2.NumberDataPoint:
    dp = metrics_pb2.NumberDataPoint(
        attributes=_attrs(point.get("attributes")),
        start_time_unix_nano=point.get("start_ns") or 0,
        time_unix_nano=point.get("time_ns") or 0,
    )
    value = point.get("value", 0)
    if isinstance(value, int) and not isinstance(value, bool):
        dp.as_int = value
    else:
        dp.as_double = float(value)
    return dp


def _metric(rec: Mapping[str, Any]) -> ExportMetricsServiceRequest:
    temporality = (
        metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        if rec.get("temporality") == "delta"
        else metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    metric = metrics_pb2.Metric(
        name=rec.get("name") or "",
        description=rec.get("description") or "",
        unit=rec.get("unit") or "",
    )
    points = rec.get("points", [])
    kind = rec.get("type")
    if kind == "sum":
        metric.sum.CopyFrom(
            metrics_pb2.Sum(
                data_points=[_number(p) for p in points],
                aggregation_temporality=temporality,
                is_monotonic=bool(rec.get("monotonic")),
            )
        )
    elif kind == "gauge":
        metric.gauge.CopyFrom(metrics_pb2.Gauge(data_points=[_number(p) for p in points]))
    else:
        metric.histogram.CopyFrom(
            metrics_pb2.Histogram(
                data_points=[
                    metrics_pb2.HistogramDataPoint(
                        attributes=_attrs(p.get("attributes")),
                        start_time_unix_nano=p.get("start_ns") or 0,
                        time_unix_nano=p.get("time_ns") or 0,
                        count=p.get("count", 0),
                        sum=p.get("sum", 0.0),
                        min=p.get("min", 0.0),
                        max=p.get("max", 0.0),
                        bucket_counts=p.get("bucket_counts", []),
                        explicit_bounds=p.get("bounds", []),
                    )
                    for p in points
                ],
                aggregation_temporality=temporality,
            )
        )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=_resource(rec),
                scope_metrics=[metrics_pb2.ScopeMetrics(scope=_scope(rec), metrics=[metric])],
            )
        ]
    )


_RENDER = {"span": _span, "event": _log, "log": _log, "metric": _metric}


def message(record: Mapping[str, Any]) -> Any:
    """The OTLP export request holding just ``record``."""
    return _RENDER[record["signal"]](record)


# -- settings from the standard environment --------------------------------------------------


def _env(environ: Mapping[str, str], signal: str, name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>``, else ``OTEL_EXPORTER_OTLP_<NAME>``."""
    for key in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = environ.get(key, "").strip()
        if value:
            return value
    return None


def parse_headers(text: str | None) -> dict[str, str]:
    """``k1=v1,k2=v2`` (values URL-encoded) as the OTLP exporter spec defines."""
    headers: dict[str, str] = {}
    for part in (text or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class Destination:
    """OTLP/HTTP protobuf destination."""

    name = "otlp"
    remote = True

    def __init__(self, cfg: Config, environ: Mapping[str, str] | None = None):
        self.cfg = cfg
        self.environ = os.environ if environ is None else environ
        self._session: Any = None
        if any(self.protocol(sig) == "grpc" for sig in _REQUESTS):
            import grpc  # noqa: F401 - loaded now (the worker's start), not in the exit budget

    # -- spool side -----------------------------------------------------------------------

    def render(self, record: dict[str, Any]) -> str | None:
        if record.get("signal") not in _RENDER:
            return None
        return json_format.MessageToJson(message(record), indent=None, sort_keys=True)

    # -- wire side ------------------------------------------------------------------------

    def url(self, signal: str) -> str:
        explicit = self.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        if explicit:
            return explicit  # a per-signal endpoint is used as is (spec)
        base = (self.cfg["otlp_endpoint"] or "http://localhost:4318").rstrip("/")
        return f"{base}/v1/{signal}"

    def warm(self) -> None:
        """Import the HTTP client ahead of time (the worker does, at start), so an
        exit budget is spent sending, not importing (``requests`` takes ~100 ms)."""
        self._client()

    def _client(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()  # honours HTTPS_PROXY / NO_PROXY
        return self._session

    def _post(self, signal: str, body: bytes, timeout_s: float) -> Any:
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": "optel"}
        headers.update(parse_headers(_env(self.environ, signal, "HEADERS")))
        if (_env(self.environ, signal, "COMPRESSION") or "").lower() == "gzip":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        verify: Any = _env(self.environ, signal, "CERTIFICATE") or True
        cert_file = _env(self.environ, signal, "CLIENT_CERTIFICATE")
        key_file = _env(self.environ, signal, "CLIENT_KEY")
        cert: Any = (cert_file, key_file) if cert_file and key_file else cert_file
        configured = _env(self.environ, signal, "TIMEOUT")
        if configured:
            try:
                timeout_s = min(timeout_s, float(configured) / 1000)  # spec: milliseconds
            except ValueError:
                pass
        return self._client().post(
            self.url(signal),
            data=body,
            headers=headers,
            timeout=(min(timeout_s, 5.0), timeout_s),
            verify=verify,
            cert=cert,
            allow_redirects=False,
        )

    def protocol(self, signal: str) -> str:
        """``http/protobuf`` (default) or ``grpc``, from ``OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL``."""
        value = (_env(self.environ, signal, "PROTOCOL") or "http/protobuf").lower()
        return "grpc" if value == "grpc" else "http/protobuf"

    def send(self, rows: Sequence[Row], timeout_s: float) -> Outcome:
        outcome = Outcome()
        by_signal: dict[str, list[Row]] = {}
        for row in rows:
            by_signal.setdefault(SIGNALS.get(row.signal, ""), []).append(row)
        deadline = time.monotonic() + timeout_s
        for signal, group in by_signal.items():
            if signal not in _REQUESTS:
                outcome.rejected.extend(group)
                outcome.reason = "unknown_signal"
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or outcome.retry:
                outcome.retry.extend(group)  # no time, or the endpoint already failed
                continue
            merged = _REQUESTS[signal]()
            good: list[Row] = []
            for row in group:
                try:
                    part = json_format.Parse(row.payload, _REQUESTS[signal]())
                except json_format.ParseError:
                    outcome.rejected.append(row)  # a corrupt row can never be sent
                    outcome.reason = "corrupt_payload"
                    continue
                field = _FIELDS[signal]
                getattr(merged, field).extend(getattr(part, field))
                good.append(row)
            if not good:
                continue
            if self.protocol(signal) == "grpc":
                self._deliver_grpc(signal, merged, good, remaining, outcome)
            else:
                self._deliver(signal, merged.SerializeToString(), good, remaining, outcome)
        return outcome

    # -- gRPC ------------------------------------------------------------------------------

    def _grpc_target(self, signal: str) -> tuple[str, bool]:
        """(host:port, secure) from the endpoint; http:// or OTEL_..._INSECURE=true is plain."""
        endpoint = (
            self.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
            or self.cfg["otlp_endpoint"]
            or "http://localhost:4317"
        )
        scheme, _, rest = endpoint.partition("://")
        if not rest:
            scheme, rest = "https", endpoint
        insecure = (_env(self.environ, signal, "INSECURE") or "").lower() == "true"
        return rest.split("/", 1)[0], scheme == "https" and not insecure

    def _channel(self, signal: str) -> Any:
        import grpc

        target, secure = self._grpc_target(signal)
        key = (target, secure)
        channels = self.__dict__.setdefault("_channels", {})
        if key not in channels:
            if secure:
                roots = None
                cert = _env(self.environ, signal, "CERTIFICATE")
                if cert:
                    with open(cert, "rb") as f:
                        roots = f.read()
                channels[key] = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots))
            else:
                channels[key] = grpc.insecure_channel(target)
        return channels[key]

    def _deliver_grpc(
        self, signal: str, request: Any, rows: list[Row], timeout_s: float, outcome: Outcome
    ) -> None:
        """Export over gRPC; status codes as the OTLP spec classifies them
        (https://opentelemetry.io/docs/specs/otlp/#failures)."""
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        stubs: dict[str, Any] = {
            "traces": trace_service_pb2_grpc.TraceServiceStub,
            "metrics": metrics_service_pb2_grpc.MetricsServiceStub,
            "logs": logs_service_pb2_grpc.LogsServiceStub,
        }
        retryable = {
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.OUT_OF_RANGE,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DATA_LOSS,
        }
        headers = parse_headers(_env(self.environ, signal, "HEADERS"))
        metadata = [(k.lower(), v) for k, v in headers.items()]
        gzip_on = (_env(self.environ, signal, "COMPRESSION") or "").lower() == "gzip"
        try:
            with suppressed():
                stubs[signal](self._channel(signal)).Export(
                    request,
                    timeout=timeout_s,
                    metadata=metadata or None,
                    compression=grpc.Compression.Gzip if gzip_on else None,
                )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            if code in retryable:
                outcome.retry.extend(rows)
            else:
                outcome.rejected.extend(rows)
            outcome.reason = f"grpc_{code.name.lower()}"
            return
        except (OSError, ValueError) as exc:  # a bad certificate file, a bad target
            outcome.retry.extend(rows)
            outcome.reason = type(exc).__name__
            return
        outcome.accepted.extend(rows)

    def _deliver(
        self, signal: str, body: bytes, rows: list[Row], timeout_s: float, outcome: Outcome
    ) -> None:
        import requests

        try:
            with suppressed():
                response = self._post(signal, body, timeout_s)
        except requests.RequestException as exc:
            outcome.retry.extend(rows)
            outcome.reason = f"{type(exc).__name__}"
            return
        status = response.status_code
        if 200 <= status < 300:
            outcome.accepted.extend(rows)
        elif 400 <= status < 500 and status not in _RETRYABLE:
            outcome.rejected.extend(rows)  # the request itself is wrong: resending cannot help
            outcome.reason = f"http_{status}"
        else:  # 408, 429, 5xx, and odd answers (redirects): keep and try later
            outcome.retry.extend(rows)
            outcome.retry_after_s = retry_after(response.headers.get("Retry-After"))
            outcome.reason = f"http_{status}"
