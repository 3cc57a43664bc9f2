"""OTLP conventions through real processes: per-signal endpoints, http/json (to
the fake receiver and to the real collector), what OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES do for a tool and for the drop-in, and no SDK
warnings in the host's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _scrubbed_environ, run_cli, run_python
from tests.fakes.otlp_server import OtlpServer
from tests.integration import collector

TOOL = """
import optel
t = optel.init(app="conventions", version="3.1", allowed_attributes=["framework"])
with t.tracer.start_as_current_span("convert", attributes={"framework": "onnx"}):
    pass
t.event("converted", framework="onnx")
"""

LONG = {"OPTEL_EXIT_BUDGET_MS": "10000"}  # the exit send completes: nothing left to flush


def _ok(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "optel:" not in r.stderr, r.stderr


def _resource(message: Any) -> dict[str, str]:
    for field in ("resource_spans", "resource_logs", "resource_metrics"):
        for group in getattr(message, field, []):
            return {kv.key: kv.value.string_value for kv in group.resource.attributes}
    return {}


def test_a_traces_endpoint_alone_sends_traces_there_and_nothing_else(home: Path) -> None:
    run_cli("opt-in", "--app", "conventions", home=home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{server.url}/v1/traces", **LONG}
        _ok(run_python(TOOL, home, env))
        assert json.loads(run_cli("status", "--json", home=home, extra_env=env).stdout)[
            "destinations"
        ] == ["otlp"]
    assert [r.path for r in server.requests] == ["/v1/traces"]  # used as given, nothing added
    assert [s.name for s in server.spans()] == ["convert"]
    # the event had no OTLP endpoint: not kept for one that is not there
    assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 0


def test_http_json_is_sent_as_otlp_json(home: Path) -> None:
    run_cli("opt-in", "--app", "conventions", home=home)
    with OtlpServer() as server:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            **LONG,
        }
        _ok(run_python(TOOL, home, env))
    assert {r.headers["Content-Type"] for r in server.requests} == {"application/json"}
    body = json.loads(next(r.raw for r in server.requests if r.path == "/v1/traces"))
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and span["kind"] == 1  # hex ids, integer enums
    assert [s.name for s in server.spans()] == ["convert"]
    assert [r.event_name for r in server.log_records()] == ["converted"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_the_real_collector_takes_both_http_encodings(
    home: Path, tmp_path: Path, protocol: str
) -> None:
    binary = collector.build()
    run_cli("opt-in", "--app", "conventions", home=home)
    gw = collector.Collector(binary, tmp_path / "out")
    try:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": gw.http_url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            **LONG,
        }
        _ok(run_python(TOOL, home, env))
    finally:
        gw.stop()
    lines = gw.lines()
    assert [span["name"] for _, span in collector.spans(lines)] == ["convert"]
    assert [rec.get("eventName") for _, rec in collector.log_records(lines)] == ["converted"]
    (resource, _) = next(collector.spans(lines))
    assert collector.attrs(resource)["service.name"] == "conventions"


# -- OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES ----------------------------------------

ENVIRONMENT = {
    "OTEL_SERVICE_NAME": "someone-elses-service",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,host.name=alice-laptop,team=ml%20tools",
}


def test_a_tool_that_calls_init_describes_the_tool_not_the_environment(home: Path) -> None:
    run_cli("opt-in", "--app", "conventions", home=home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, **ENVIRONMENT, **LONG}
        _ok(run_python(TOOL, home, env))
    resources = [_resource(r.message) for r in server.accepted()]
    assert resources and all(r == resources[0] for r in resources)
    assert resources[0]["service.name"] == "conventions"  # the app, not OTEL_SERVICE_NAME
    assert resources[0]["service.version"] == "3.1"
    assert not {"deployment.environment", "host.name", "team"} & set(resources[0])


SCRIPT = """
from opentelemetry import trace
with trace.get_tracer("legacy.script").start_as_current_span("legacy_work"):
    pass
print("script done")
"""


def test_the_dropin_takes_its_name_and_resource_from_the_environment(
    home: Path, tmp_path: Path
) -> None:
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    if not instrument.exists():
        pytest.skip("opentelemetry-instrument is not installed (pip install -e '.[dev]')")
    script = tmp_path / "legacy.py"
    script.write_text(SCRIPT)
    run_cli("opt-in", "--app", "someone-elses-service", home=home)
    with OtlpServer() as server:
        environ = _scrubbed_environ()
        environ.update(
            OPTEL_HOME=str(home),
            OTEL_PYTHON_CONFIGURATOR="optel",
            OPTEL_ALLOWED_ATTRIBUTES="deployment.environment,team",
            # opentelemetry-distro, when installed, defaults the protocol to grpc
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=server.url,
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
            **ENVIRONMENT,
            **LONG,
        )
        r = subprocess.run(
            [str(instrument), sys.executable, str(script)],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0 and "script done" in r.stdout, r.stderr
        assert "optel:" not in r.stderr, r.stderr
    (span,) = server.spans()
    resource = _resource(next(r.message for r in server.accepted() if r.path == "/v1/traces"))
    assert span.name == "legacy_work"
    assert resource["service.name"] == "someone-elses-service"
    assert resource["deployment.environment"] == "prod"  # declared: kept, as a label
    assert "team" in resource and "ml tools" not in resource["team"]  # a label has no spaces
    assert "host.name" not in resource  # deny-listed keys stay out, wherever they come from


# -- the host's output ----------------------------------------------------------------------

TWO_METERS = """
import logging
logging.basicConfig()  # an instrumented program shows the SDK's warnings
import optel
from opentelemetry import metrics
t = optel.init(app="conventions")
for scope in ("requests", "urllib3", "mine"):  # one metric name in three meters
    metrics.get_meter(scope).create_counter("http.client.requests").add(1)
t.meter.create_counter("http.client.requests").add(1)
t.flush(0)
print("done")
"""


def test_no_sdk_warning_reaches_the_hosts_output(home: Path) -> None:
    run_cli("opt-in", "--app", "conventions", home=home)
    r = run_python(TWO_METERS, home)
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr
    assert r.stderr == "", r.stderr  # "conflicting metrics identities" was printed here


METERED = """
import optel
t = optel.init(app="conventions", version="3.1", allowed_attributes=["framework"])
t.meter.create_counter("converted").add(3, {"framework": "onnx"})
t.meter.create_histogram("took_ms").record(12.5, {"framework": "onnx"})
t.meter.create_up_down_counter("open_models").add(2)
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_metrics_arrive_in_the_shape_the_warning_names_not_the_one_asked_for(
    home: Path, protocol: str
) -> None:
    # OTEL_EXPORTER_OTLP_METRICS_*: asked for cumulative and exponential histograms;
    # optel says in one line each what it sends instead, and that is what arrives
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

    run_cli("opt-in", "--app", "conventions", home=home)
    asked = {
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": (
            "base2_exponential_bucket_histogram"
        ),
    }
    with OtlpServer() as server:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            **asked,
            **LONG,
        }
        r = run_python(METERED, home, env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "optel: OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative is not applied;"
        " optel sends counters and histograms as deltas (the spec's delta preference) to every"
        " destination",
        "optel: OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION="
        "base2_exponential_bucket_histogram is not applied; optel sends histograms with"
        " explicit buckets to every destination",
    ]
    got = {m.name: m for m in server.metrics()}
    delta, cumulative = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
        AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
    )
    assert got["converted"].sum.aggregation_temporality == delta
    assert got["converted"].sum.data_points[0].as_int == 3
    assert got["took_ms"].WhichOneof("data") == "histogram"  # explicit buckets
    assert got["took_ms"].histogram.aggregation_temporality == delta
    assert list(got["took_ms"].histogram.data_points[0].explicit_bounds)
    # the spec's delta preference keeps up-down counters cumulative
    assert got["open_models"].sum.aggregation_temporality == cumulative


def test_the_sdks_batching_variables_are_not_read(home: Path) -> None:
    # README: optel's schedule is its own; OTEL_BSP_*, OTEL_BLRP_*, OTEL_METRIC_EXPORT_*
    # belong to SDK components it does not use. Values that would starve those
    # components (a queue of 1, no batch) or are garbage change nothing, say nothing.
    run_cli("opt-in", "--app", "conventions", home=home)
    sdk_batching = {
        "OTEL_BSP_MAX_QUEUE_SIZE": "1",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0",
        "OTEL_BSP_SCHEDULE_DELAY": "abc",
        "OTEL_BSP_EXPORT_TIMEOUT": "-1",
        "OTEL_BLRP_MAX_QUEUE_SIZE": "1",
        "OTEL_METRIC_EXPORT_INTERVAL": "0",
        "OTEL_METRIC_EXPORT_TIMEOUT": "never",
    }
    code = TOOL + "for i in range(50):\n    t.event('converted', framework='onnx')\n"
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, **sdk_batching, **LONG}
        r = run_python(code, home, env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert len(server.spans()) == 1
    assert sum(rec.event_name == "converted" for rec in server.log_records()) == 51
