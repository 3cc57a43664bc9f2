"""Bounded loopback load run against the locally built gateway collector.

Starts .build/otelcol-optel/otelcol-optel with collector-config/gateway.yaml
on free 127.0.0.1 ports, posts OTLP/HTTP protobuf export requests shaped like
optel's (a resource, N spans with a tool's attributes, some holding personal
data for the processors to scrub) from a few threads for --seconds, then stops
the collector with SIGTERM and prints what it did with its CPU time (from
wait4's rusage: the collector's own user+system seconds, whatever else runs
on the machine).

    .venv/bin/python collector-config/loadtest.py --seconds 20

--exporter debug (default) replaces the pipelines' exporters by `debug`
(counts only): the figure is receive + decode + memory_limiter + transform +
redaction + batch. --exporter file keeps gateway.yaml's file exporters (adds
JSON encoding and disk writes). Needs opentelemetry-proto (optel's own
dependency). Traffic goes to loopback only and stops after --seconds or
--max-requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

HERE = Path(__file__).resolve().parent
BINARY = HERE.parent / ".build" / "otelcol-optel" / "otelcol-optel"

DEBUG_OVERLAY = """
service:
  pipelines:
    traces: {exporters: [debug]}
    metrics: {exporters: [debug]}
    logs: {exporters: [debug]}
"""

NO_SCRUB_OVERLAY = """
service:
  pipelines:
    traces: {processors: [memory_limiter, batch]}
    metrics: {processors: [memory_limiter, batch]}
    logs: {processors: [memory_limiter, batch]}
"""


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def request_body(spans_per_request: int) -> bytes:
    """One export request: what an optel install sends after a few commands."""
    resource = [
        _kv("service.name", "democonvert"),
        _kv("service.version", "1.4.2"),
        _kv("os.type", "linux"),
        _kv("process.runtime.name", "cpython"),
        _kv("process.runtime.version", "3.11.7"),
        _kv("optel.version", "0.1.0"),
        _kv("host.name", "alice-laptop"),  # identity: deleted
    ]
    spans = []
    for i in range(spans_per_request):
        spans.append(
            Span(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                name=f"convert /home/alice/models/m{i}.onnx",  # scrubbed
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=1_700_000_000_000_000_000 + i,
                end_time_unix_nano=1_700_000_000_100_000_000 + i,
                attributes=[
                    _kv("framework", "onnx"),
                    _kv("input_path", f"/home/alice/models/m{i}.onnx"),  # scrubbed
                    _kv("optimize", "fp16"),
                    _kv("model.size_mb", 97.8),
                    _kv("optel.success", True),
                    _kv("optel.duration_ms", 1234.5),
                    _kv("user.email", "alice@example.com"),  # deleted
                    _kv("note", "from 10.1.2.3"),  # not allowed: deleted
                ],
            )
        )
    msg = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=resource),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="optel.democonvert"), spans=spans)
                ],
            )
        ]
    )
    return msg.SerializeToString()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--spans-per-request", type=int, default=20)
    ap.add_argument("--max-requests", type=int, default=500_000)
    ap.add_argument("--exporter", choices=("debug", "file"), default="debug")
    ap.add_argument(
        "--new-connections",
        action="store_true",
        help="one TCP connection per request (short-lived tool processes)",
    )
    ap.add_argument(
        "--no-scrub",
        action="store_true",
        help="baseline: only memory_limiter and batch (what transform + redaction cost)",
    )
    ap.add_argument(
        "--gzip", action="store_true", help="send gzip bodies (optel: ..._COMPRESSION=gzip)"
    )
    args = ap.parse_args()
    if not BINARY.exists():
        print(f"no collector at {BINARY}: run collector-config/build.sh", file=sys.stderr)
        return 2
    args.seconds = min(args.seconds, 120.0)  # bounded, whatever was asked

    body = request_body(args.spans_per_request)
    wire = gzip.compress(body) if args.gzip else body
    headers = {"Content-Type": "application/x-protobuf"}
    if args.gzip:
        headers["Content-Encoding"] = "gzip"
    if args.new_connections:
        headers["Connection"] = "close"

    work = Path(tempfile.mkdtemp(prefix="optel-gw-load-"))
    configs = ["--config", str(HERE / "gateway.yaml")]
    if args.exporter == "debug":
        overlay = work / "debug-only.yaml"
        overlay.write_text(DEBUG_OVERLAY)
        configs += ["--config", str(overlay)]
    if args.no_scrub:
        overlay = work / "no-scrub.yaml"
        overlay.write_text(NO_SCRUB_OVERLAY)
        configs += ["--config", str(overlay)]
    port = free_port()
    env = dict(
        os.environ,
        OPTEL_GW_HTTP_ENDPOINT=f"127.0.0.1:{port}",
        OPTEL_GW_GRPC_ENDPOINT=f"127.0.0.1:{free_port()}",
        OPTEL_GW_FILE=str(work / "out"),
    )
    log = open(work / "collector.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(BINARY), *configs], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"collector did not start; see {work / 'collector.log'}", file=sys.stderr)
                proc.kill()
                return 1
            time.sleep(0.1)

    url = f"http://127.0.0.1:{port}/v1/traces"
    counts = {"ok": 0, "refused": 0, "error": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            with lock:
                if sum(counts.values()) >= args.max_requests:
                    return
            try:
                status = session.post(url, data=wire, headers=headers, timeout=10).status_code
                kind = "ok" if status == 200 else "refused"
            except requests.RequestException:
                kind = "error"
            with lock:
                counts[kind] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    log.close()
    cpu = usage.ru_utime + usage.ru_stime
    spans = counts["ok"] * args.spans_per_request
    print(
        f"run: {elapsed:.1f} s, {args.threads} client threads, exporter={args.exporter}, "
        f"gzip={args.gzip}, scrub={not args.no_scrub}, new_connections={args.new_connections}"
    )
    print(
        f"request: {args.spans_per_request} spans, {len(body)} bytes protobuf, {len(gzip.compress(body))} bytes gzip"
    )
    print(
        f"requests: {counts}  ->  {counts['ok'] / elapsed:.0f} req/s, {spans / elapsed:.0f} spans/s accepted"
    )
    print(
        f"collector CPU: {cpu:.1f} s user+sys over the run ({cpu / elapsed:.2f} cores busy), max RSS {usage.ru_maxrss / 1024:.0f} MiB"
    )
    if cpu:
        print(
            f"per collector CPU-second: {spans / cpu:.0f} spans, {counts['ok'] / cpu:.0f} requests"
        )
    print(f"collector exit status: {os.waitstatus_to_exitcode(status)}; output in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
