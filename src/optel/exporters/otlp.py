"""The ``otlp`` destination: OTLP/HTTP with protobuf bodies, or OTLP/gRPC.

Each record is rendered as the OTLP JSON form of a one-record export request
(the protobuf JSON mapping), so ``optel show`` prints the very message that
is sent; at send time a batch's messages are merged and posted as protobuf to
``{endpoint}/v1/traces|metrics|logs`` (or exported over gRPC).

Each request's resources carry ``optel.install.id``, the install's random
client id (:func:`optel.identity.client_id`, the one GA4 gets as
``client_id``), so installs can be counted without GA4. As for GA4 it is
added at send time, never rendered: not in the spool, not in ``optel show``,
and an id rotated by ``optel opt-out`` is never sent afterwards.

Answers are classified by :func:`optel.exporters.classify_http` and
:func:`optel.exporters.classify_grpc`, the rules every destination shares.

Settings come from optel's settings table (``cfg.otlp(name, signal)``: the
per-signal value, else the general one), which reads the standard variables
(https://opentelemetry.io/docs/specs/otel/protocol/exporter/):
``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]ENDPOINT``, ``..._PROTOCOL``
(``http/protobuf`` or ``grpc``), ``..._HEADERS``, ``..._COMPRESSION`` (gzip),
``..._TIMEOUT`` (bounded by the caller's deadline), ``..._CERTIFICATE``,
``..._CLIENT_CERTIFICATE``/``..._CLIENT_KEY``, ``..._INSECURE`` (gRPC).

One destination keeps one HTTP session and one gRPC channel per target for
its whole life, so its owner's sends reuse their connections; ``close()``
ends them.
"""

from __future__ import annotations

import gzip
import threading
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
from . import (
    RETRY,
    Outcome,
    Payload,
    Verdict,
    classify_error,
    classify_grpc,
    classify_http,
)

SIGNALS = {"span": "traces", "metric": "metrics", "event": "logs", "log": "logs"}
_REQUESTS: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_FIELDS = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}
_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
INSTALL_ID = "optel.install.id"


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


# -- the wire ------------------------------------------------------------------------------


def parse_headers(text: str | None) -> dict[str, str]:
    """``k1=v1,k2=v2`` (values URL-encoded) as the OTLP exporter spec defines."""
    headers: dict[str, str] = {}
    for part in (text or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class Destination:
    """OTLP/HTTP protobuf destination (gRPC when the protocol setting says so)."""

    name = "otlp"
    remote = True

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._session: Any = None
        self._channels: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()  # the worker and an exit send may share it

    # -- rendering ------------------------------------------------------------------------

    def render(self, record: dict[str, Any]) -> str | None:
        if record.get("signal") not in _RENDER:
            return None
        return json_format.MessageToJson(message(record), indent=None, sort_keys=True)

    # -- settings -------------------------------------------------------------------------

    def protocol(self, signal: str) -> str:
        """``http/protobuf`` (default) or ``grpc``."""
        return "grpc" if self.cfg.otlp("protocol", signal) == "grpc" else "http/protobuf"

    def url(self, signal: str) -> str:
        explicit = self.cfg[f"otlp_{signal}_endpoint"]
        if explicit:
            return str(explicit)  # a per-signal endpoint is used as is (spec)
        base = (self.cfg["otlp_endpoint"] or "http://localhost:4318").rstrip("/")
        return f"{base}/v1/{signal}"

    def _gzip(self, signal: str) -> bool:
        return self.cfg.otlp("compression", signal) == "gzip"

    # -- lifetime -------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the clients ahead of time (the worker does, at start), so an exit
        budget is spent sending, not importing (``requests`` takes ~100 ms)."""
        for signal in _REQUESTS:
            if self.protocol(signal) == "grpc":
                self._channel(signal)
            else:
                self._client()

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            channels, self._channels = list(self._channels.values()), {}
        if session is not None:
            session.close()
        for channel in channels:
            channel.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome:
        outcome = Outcome()
        by_signal: dict[str, list[Payload]] = {}
        for item in items:
            by_signal.setdefault(SIGNALS.get(item.signal, ""), []).append(item)
        deadline = time.monotonic() + timeout_s
        for signal, group in by_signal.items():
            if signal not in _REQUESTS:
                outcome.rejected.extend(i.key for i in group)
                outcome.reason = "unknown_signal"
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or outcome.retry:
                outcome.retry.extend(i.key for i in group)  # no time, or it already failed
                continue
            merged = _REQUESTS[signal]()
            good: list[Any] = []
            for item in group:
                try:
                    part = json_format.Parse(item.payload, _REQUESTS[signal]())
                except json_format.ParseError:
                    outcome.rejected.append(item.key)  # a corrupt payload can never be sent
                    outcome.reason = "corrupt_payload"
                    continue
                field = _FIELDS[signal]
                getattr(merged, field).extend(getattr(part, field))
                good.append(item.key)
            if not good:
                continue
            self._stamp(getattr(merged, _FIELDS[signal]))
            if self.protocol(signal) == "grpc":
                verdict = self._export_grpc(signal, merged, remaining)
            else:
                verdict = self._post(signal, merged.SerializeToString(), remaining)
            getattr(outcome, verdict.kind).extend(good)
            if verdict.reason:
                outcome.reason = verdict.reason
            if verdict.kind == RETRY:
                outcome.retry_after_s = verdict.retry_after_s
        return outcome

    def _stamp(self, resources: Any) -> None:
        """Put the install's current id on each resource (replacing any other value)."""
        from ..identity import client_id

        # created when missing, as for GA4: an opt-out policy tool has consent without a grant
        install = client_id(self.cfg.paths, create=True)
        for res in resources:
            attrs = res.resource.attributes
            for i in reversed(range(len(attrs))):
                if attrs[i].key == INSTALL_ID:
                    del attrs[i]
            if install:
                attrs.append(
                    common_pb2.KeyValue(
                        key=INSTALL_ID, value=common_pb2.AnyValue(string_value=install)
                    )
                )

    # -- HTTP -----------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()  # honours HTTPS_PROXY / NO_PROXY
            return self._session

    def _post(self, signal: str, body: bytes, timeout_s: float) -> Verdict:
        import requests

        cfg = self.cfg
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": "optel"}
        headers.update(parse_headers(cfg.otlp("headers", signal)))
        if self._gzip(signal):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        verify: Any = cfg.otlp("certificate", signal) or True
        cert_file = cfg.otlp("client_certificate", signal)
        key_file = cfg.otlp("client_key", signal)
        cert: Any = (cert_file, key_file) if cert_file and key_file else cert_file
        configured = cfg.otlp("timeout", signal)
        if configured:
            timeout_s = min(timeout_s, configured / 1000)  # spec: milliseconds
        try:
            response = self._client().post(
                self.url(signal),
                data=body,
                headers=headers,
                timeout=(min(timeout_s, 5.0), timeout_s),
                verify=verify,
                cert=cert,
                allow_redirects=False,  # see classify_http: never sent where an answer points
            )
        except requests.RequestException as exc:
            return classify_error(exc)
        return classify_http(response.status_code, response.headers.get("Retry-After"))

    # -- gRPC -----------------------------------------------------------------------------

    def _grpc_target(self, signal: str) -> tuple[str, bool]:
        """(host:port, secure) from the endpoint; http:// or the insecure setting is plain."""
        endpoint = (
            self.cfg[f"otlp_{signal}_endpoint"]
            or self.cfg["otlp_endpoint"]
            or "http://localhost:4317"
        )
        scheme, _, rest = str(endpoint).partition("://")
        if not rest:
            scheme, rest = "https", endpoint
        insecure = bool(self.cfg.otlp("insecure", signal))
        return rest.split("/", 1)[0], scheme == "https" and not insecure

    def _channel(self, signal: str) -> Any:
        import grpc

        key = self._grpc_target(signal)
        with self._lock:
            if key not in self._channels:
                target, secure = key
                if secure:
                    roots = None
                    cert = self.cfg.otlp("certificate", signal)
                    if cert:
                        with open(cert, "rb") as f:
                            roots = f.read()
                    creds = grpc.ssl_channel_credentials(roots)
                    self._channels[key] = grpc.secure_channel(target, creds)
                else:
                    self._channels[key] = grpc.insecure_channel(target)
            return self._channels[key]

    def _export_grpc(self, signal: str, request: Any, timeout_s: float) -> Verdict:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        stubs: dict[str, Any] = {
            "traces": trace_service_pb2_grpc.TraceServiceStub,
            "metrics": metrics_service_pb2_grpc.MetricsServiceStub,
            "logs": logs_service_pb2_grpc.LogsServiceStub,
        }
        headers = parse_headers(self.cfg.otlp("headers", signal))
        metadata = [(k.lower(), v) for k, v in headers.items()]
        try:
            stubs[signal](self._channel(signal)).Export(
                request,
                timeout=timeout_s,
                metadata=metadata or None,
                compression=grpc.Compression.Gzip if self._gzip(signal) else None,
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            return classify_grpc(code.name)
        except (OSError, ValueError) as exc:  # a bad certificate file, a bad target
            return classify_error(exc)
        return classify_grpc("OK")
