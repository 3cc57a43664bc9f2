"""A fake OTLP/HTTP receiver on 127.0.0.1 for tests.

Decodes protobuf and OTLP/JSON (and gzip) bodies, keeps every request, and answers with
a programmable sequence of responses. It keeps connections alive (HTTP/1.1,
as a collector does) and counts the TCP connections it accepted
(``connections``), so a test can tell whether a client reuses one.
Usable as a context manager::

    with OtlpServer() as server:
        ... OTEL_EXPORTER_OTLP_ENDPOINT=server.url ...
        server.spans()  # every span received
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.fakes.serve import LoopbackHTTPServer

_IDS = {"traceId", "spanId", "parentSpanId"}


def from_otlp_json(doc: Any, message_type: Any) -> Any:
    """An OTLP/JSON document (hex trace and span ids, integer enums) as the
    protobuf message it encodes (the plain JSON mapping wants base64 ids)."""
    from google.protobuf import json_format

    def base64_ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode() if k in _IDS else base64_ids(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [base64_ids(v) for v in node]
        return node

    if isinstance(doc, (str, bytes)):
        doc = json.loads(doc)
    return json_format.ParseDict(base64_ids(doc), message_type())


_TYPES: dict[str, Any] = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    message: Any
    at: float = field(default_factory=time.time)  # when it arrived (benches count by it)


@dataclass
class OtlpServer:
    """Answers ``responses`` in order (then ``default``): (status, headers) pairs."""

    responses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (200, {})
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a collector

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                kind = _TYPES.get(self.path)
                message = None
                if kind and self.headers.get("Content-Type") == "application/json":
                    message = from_otlp_json(raw, kind)
                elif kind:
                    message = kind.FromString(raw)
                with server._lock:
                    server.requests.append(
                        Received(self.path, dict(self.headers.items()), raw, message)
                    )
                    status, headers = (
                        server.responses.pop(0) if server.responses else server.default
                    )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._httpd = LoopbackHTTPServer(Handler)

    @property
    def url(self) -> str:
        return self._httpd.url

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._httpd.connections

    def wait_closed(self, n: int, timeout_s: float = 5.0) -> bool:
        """Wait until the client has closed ``n`` connections."""
        return self._httpd.wait_ended(n, timeout_s)

    def __enter__(self) -> OtlpServer:
        self._httpd.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.stop()

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.message is not None]

    def spans(self) -> list[Any]:
        return [
            span
            for r in self.accepted()
            if r.path == "/v1/traces"
            for rs in r.message.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_records(self) -> list[Any]:
        return [
            rec
            for r in self.accepted()
            if r.path == "/v1/logs"
            for rl in r.message.resource_logs
            for sl in rl.scope_logs
            for rec in sl.log_records
        ]

    def metrics(self) -> list[Any]:
        return [
            m
            for r in self.accepted()
            if r.path == "/v1/metrics"
            for rm in r.message.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        ]


class OtlpGrpcServer:
    """A fake OTLP/gRPC receiver on 127.0.0.1 keeping every export request::

    with OtlpGrpcServer() as server:
        ... OTEL_EXPORTER_OTLP_PROTOCOL=grpc, endpoint server.url ...
        server.requests  # (signal, request message) pairs
    """

    def __init__(self) -> None:
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import (
            metrics_service_pb2,
            metrics_service_pb2_grpc,
        )
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        self.requests: list[tuple[str, Any]] = []
        lock = threading.Lock()
        keep = self.requests

        def export(signal: str, answer: Any) -> Any:
            def handler(self: Any, request: Any, context: Any) -> Any:
                with lock:
                    keep.append((signal, request))
                return answer()

            return handler

        traces = type(
            "Traces",
            (trace_service_pb2_grpc.TraceServiceServicer,),
            {"Export": export("traces", trace_service_pb2.ExportTraceServiceResponse)},
        )
        metrics = type(
            "Metrics",
            (metrics_service_pb2_grpc.MetricsServiceServicer,),
            {"Export": export("metrics", metrics_service_pb2.ExportMetricsServiceResponse)},
        )
        logs = type(
            "Logs",
            (logs_service_pb2_grpc.LogsServiceServicer,),
            {"Export": export("logs", logs_service_pb2.ExportLogsServiceResponse)},
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics(), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(logs(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpGrpcServer:
        self._server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.stop(grace=None).wait(2)
