"""optel against the real OpenTelemetry Collector built from collector-config/."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import run_cli, run_python
from tests.integration.collector import CONFIGS, Collector, attrs, build, spans


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


@pytest.mark.parametrize("config", ["gateway.yaml", "gateway-forward.yaml"])
def test_shipped_configs_validate(binary: Path, config: str) -> None:
    r = subprocess.run(
        [str(binary), "validate", "--config", str(CONFIGS / config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


TOOL = """
import optel
t = optel.init(app="democonvert", version="1.0.0", allowed_attributes=["framework", "input_path"])
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
    found = [(res, span) for res, span in spans(lines)]
    assert [span["name"] for _, span in found] == ["convert"]
    resource, span = found[0]
    assert attrs(span) == {"framework": "onnx", "input_path": "<home>/m.onnx"}
    assert attrs(resource)["service.name"] == "democonvert"
    metric_names = [
        m["name"]
        for line in lines
        for rm in line.get("resourceMetrics", [])
        for sm in rm.get("scopeMetrics", [])
        for m in sm.get("metrics", [])
    ]
    assert "models_converted" in metric_names
    events = [
        rec
        for line in lines
        for rl in line.get("resourceLogs", [])
        for sl in rl.get("scopeLogs", [])
        for rec in sl.get("logRecords", [])
    ]
    assert any(rec.get("eventName") == "model_converted" for rec in events)


def _otlp_json_span(name: str, span_attrs: dict[str, str], resource_attrs: dict[str, str]) -> dict:
    def kv(d: dict[str, str]) -> list[dict]:
        return [{"key": k, "value": {"stringValue": v}} for k, v in d.items()]

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": kv(resource_attrs)},
                "scopeSpans": [
                    {
                        "scope": {"name": "raw"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": name,
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000100000000",
                                "attributes": kv(span_attrs),
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_gateway_redacts_raw_otlp_with_personal_data(binary: Path, tmp_path: Path) -> None:
    gw = Collector(binary, tmp_path / "raw")
    try:
        body = _otlp_json_span(
            "open /home/mallory/secret.txt for bob@example.com",
            {
                "framework": "onnx",
                "input_path": "/home/mallory/model.onnx",
                "user.email": "bob@example.com",
                "note": "from 192.168.7.7",
                "optimize": "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            },
            {"service.name": "rawtool", "host.name": "mallory-laptop", "user.name": "mallory"},
        )
        r = requests.post(f"{gw.http_url}/v1/traces", json=body, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        gw.stop()
    found = list(spans(gw.lines()))
    assert len(found) == 1
    resource, span = found[0]
    dump = json.dumps(found)
    for leak in ("mallory", "bob@example.com", "192.168.7.7", "ghp_abc"):
        assert leak not in dump, leak
    kept = attrs(span)
    assert kept["framework"] == "onnx"  # what is allowed and clean survives as is
    assert "user.email" not in kept and "note" not in kept
    assert "<email>" in span["name"] and "<home>" in span["name"]
    assert attrs(resource) == {"service.name": "rawtool"}
