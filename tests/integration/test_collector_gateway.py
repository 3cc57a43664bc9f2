"""optel against the real OpenTelemetry Collector built from collector-config/.

The gateway is the second line of defence: raw OTLP with personal data, sent
by a client that is not optel, must come out scrubbed; what is allowed and
clean must come out unchanged.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from optel.anonymize.keys import SAFE_KEYS
from optel.kinds import BUILTIN_KEYS
from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer
from tests.integration.collector import (
    CONFIG_SETS,
    CONFIGS,
    NOT_CONFIGS,
    Collector,
    attrs,
    build,
    config_args,
    data_points,
    kv,
    log_records,
    metrics,
    spans,
)

# Personal data a careless client might send, and what must not survive it.
EMAIL, IP, USER = "bob@example.com", "192.168.7.7", "mallory"
GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
AWS_KEY = "AKIAABCDEFGHIJKLMNOP"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
LEAKS = (EMAIL, IP, USER, "Mallory", GITHUB_TOKEN[:12], AWS_KEY, JWT[:12])


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


def shipped_configs() -> list[str]:
    return sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name not in NOT_CONFIGS)


@pytest.mark.parametrize("config", shipped_configs())
def test_shipped_configs_validate(binary: Path, config: str) -> None:
    assert config in CONFIG_SETS, f"add {config} (and its base, if an overlay) to CONFIG_SETS"
    r = subprocess.run(
        [str(binary), "validate", *config_args(CONFIG_SETS[config])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


TOOL = """
import optel
t = optel.init(app="democonvert", version="1.0.0", allowed_attributes=["framework"],
               attributes={"input_path": optel.PathKind})
with t.tracer.start_as_current_span(
    "convert", attributes={"framework": "onnx", "input_path": "/home/alice/m.onnx", "user.email": "a@b.co"}
):
    pass
t.meter.create_counter("models_converted").add(2, {"framework": "onnx"})
t.event("model_converted", framework="onnx")
t.flush(10)
"""


def test_optel_tool_through_the_gateway_to_a_file(binary: Path, home: Path, tmp_path: Path) -> None:
    run_cli("opt-in", home=home)
    gw = Collector(binary, tmp_path / "out")
    try:
        r = run_python(TOOL, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": gw.http_url})
        assert r.returncode == 0, r.stderr
        assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 0
    finally:
        gw.stop()
    lines = gw.lines()
    found = list(spans(lines))
    assert [span["name"] for _, span in found] == ["convert"]
    resource, span = found[0]
    # optel scrubbed on the machine: the gateway found nothing to redact
    assert attrs(span) == {"framework": "onnx", "input_path": "file:.onnx@home"}
    assert attrs(resource)["service.name"] == "democonvert"
    assert "models_converted" in [m["name"] for _, m in metrics(lines)]
    assert any(rec.get("eventName") == "model_converted" for _, rec in log_records(lines))


def _span_request(
    name: str,
    span_attrs: dict[str, Any],
    resource_attrs: dict[str, Any],
    event_attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": kv(span_attrs),
    }
    if event_attrs is not None:
        span["events"] = [
            {
                "name": "exception",
                "timeUnixNano": "1700000000050000000",
                "attributes": kv(event_attrs),
            }
        ]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": kv(resource_attrs)},
                "scopeSpans": [{"scope": {"name": "raw"}, "spans": [span]}],
            }
        ]
    }


RAW_SPAN = _span_request(
    f"open /home/{USER}/secret.txt for {EMAIL} from {IP}",
    {
        # allowed keys with personal data inside their values
        "framework": "onnx",
        "input_path": f"/home/{USER}/model.onnx",
        "exception.message": f"C:\\Users\\Mallory\\m.onnx not found, mail {EMAIL}",
        "optimize": f"token {GITHUB_TOKEN} key {AWS_KEY} jwt {JWT}",
        # keys that are not allowed: deleted whatever their value
        "user.email": EMAIL,
        "note": f"from {IP}",
        # allowed and clean: must survive unchanged, types too
        "optel.version": "0.1.0",
        "model.size_mb": 97.5,
        "optel.success": True,
        "code.lineno": 42,
        "exception.type": "ValueError",
        "process.runtime.description": "CPython 3.11.7 on 10.0.19041.1",  # no IP
    },
    {
        "service.name": "rawtool",
        "service.version": "1.2.3",
        "host.name": f"{USER}-laptop",
        "user.name": USER,
        "service.instance.id": "6b0f0c1e",
    },
    {"exception.stacktrace": f'File "/Users/{USER}/tool.py", line 3', "enduser.id": "42"},
)


def test_gateway_redacts_raw_otlp_with_personal_data(binary: Path, tmp_path: Path) -> None:
    gw = Collector(binary, tmp_path / "raw")
    try:
        r = gw.post("traces", RAW_SPAN)
        assert r.status_code == 200, r.text
    finally:
        gw.stop()
    found = list(spans(gw.lines()))
    assert len(found) == 1
    resource, span = found[0]
    dump = json.dumps(found)
    for leak in LEAKS:
        assert leak not in dump, leak
    # a name as optel makes names: paths, addresses and numbers out
    assert span["name"] == "open <path> for ? from ?"
    kept = attrs(span)
    # note, user.email, exception.message (free text) and process.runtime.description
    assert kept.pop("redaction.redacted.count") == "4"
    assert kept == {
        "framework": "onnx",
        "input_path": "<not-label>",  # a path kind is sent, never a path
        "optimize": "<not-label>",  # a label, not a sentence
        "optel.version": "0.1.0",
        "model.size_mb": 97.5,
        "optel.success": True,
        "code.lineno": "42",  # OTLP JSON carries 64-bit integers as strings
        "exception.type": "ValueError",
    }
    event = attrs(span["events"][0])
    assert event.pop("redaction.redacted.count") == "1"  # enduser.id
    assert event == {"exception.stacktrace": "<user-code>:3 in ?"}  # frames only
    assert attrs(resource) == {"service.name": "rawtool", "service.version": "1.2.3"}


def test_gateway_keeps_optels_safe_keys(binary: Path, tmp_path: Path) -> None:
    """The allowlist covers optel's built-in vocabulary (SAFE_KEYS), each value as
    optel sends it passing unchanged: no drift."""
    values = {
        key: kind.example
        for key, kind in BUILTIN_KEYS.items()
        if key in SAFE_KEYS and kind.name != "message"  # free text: off by default
    }
    gw = Collector(binary, tmp_path / "safe")
    try:
        assert gw.post("traces", _span_request("op", values, {"service.name": "t"})).ok
    finally:
        gw.stop()
    ((_, span),) = spans(gw.lines())
    # OTLP/JSON writes a 64-bit int as a string (proto3 JSON mapping); attrs() keeps it so
    sent = {k: str(v) if type(v) is int else v for k, v in values.items()}
    assert attrs(span) == sent


def test_gateway_scrubs_logs_and_metrics(binary: Path, tmp_path: Path) -> None:
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": kv({"service.name": "rawtool", "host.name": USER})},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "body": {
                                    "stringValue": f"mail {EMAIL} at /home/{USER}/x from {IP} '{JWT}'"
                                },
                                "attributes": kv({"framework": "onnx", "user.email": EMAIL}),
                            }
                        ]
                    }
                ],
            }
        ]
    }
    point = {
        "asInt": "2",
        "timeUnixNano": "1700000000000000000",
        "attributes": kv(
            {"framework": "onnx", "input_path": f"/home/{USER}/a", "client.address": IP}
        ),
    }
    metric_request = {
        "resourceMetrics": [
            {
                "resource": {"attributes": kv({"service.name": "rawtool"})},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "models_converted",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [point],
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    gw = Collector(binary, tmp_path / "lm")
    try:
        assert gw.post("logs", logs).ok
        assert gw.post("metrics", metric_request).ok
    finally:
        gw.stop()
    lines = gw.lines()
    dump = json.dumps(lines)
    for leak in LEAKS:
        assert leak not in dump, leak
    ((resource, record),) = log_records(lines)
    # formatted text, not a template (no %s): free text, not sent
    assert record["body"].get("stringValue", "") == ""
    assert attrs(record) == {"framework": "onnx", "redaction.redacted.count": "1"}  # user.email
    assert attrs(resource) == {"service.name": "rawtool"}
    ((_, metric),) = metrics(lines)
    # no redaction.* counts on data points: they would split the time series
    assert [attrs(p) for p in data_points(metric)] == [
        {"framework": "onnx", "input_path": "<not-label>"}
    ]


def test_forward_overlay_sends_scrubbed_data_upstream(binary: Path, tmp_path: Path) -> None:
    with OtlpServer() as upstream:
        gw = Collector(
            binary,
            tmp_path / "fwd",
            configs=CONFIG_SETS["gateway-forward.yaml"],
            env={"OPTEL_GW_UPSTREAM": upstream.url},
        )
        try:
            assert gw.post("traces", RAW_SPAN).ok
        finally:
            gw.stop()  # drains the sending queue into the upstream
    received = upstream.accepted()
    assert [r.path for r in received] == ["/v1/traces"]
    assert received[0].headers.get("Content-Encoding") == "gzip"
    for leak in LEAKS:
        assert leak.encode() not in received[0].raw, leak
    (span,) = upstream.spans()
    assert span.name == "open <path> for ? from ?"
    assert not any(path.exists() for path in gw.files)  # the file exporters are unused
