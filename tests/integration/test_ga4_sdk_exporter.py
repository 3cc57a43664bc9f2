"""OTEL_TRACES_EXPORTER=ga4: optel's GA4 exporter inside a plain OpenTelemetry SDK pipeline."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_python
from tests.fakes.ga4_server import FakeGA4

SCRIPT = """
from importlib.metadata import entry_points
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

(ga4,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "ga4"]
provider = TracerProvider(resource=Resource.create({"service.name": "sdktool"}))
provider.add_span_processor(SimpleSpanProcessor(ga4.load()()))
tracer = provider.get_tracer("plain.sdk")
with tracer.start_as_current_span(
    "sdk_convert", attributes={"framework": "onnx", "user.email": "alice@example.com",
                               "path": "/home/alice/m.onnx"}
):
    pass
provider.shutdown()
"""


def _env(fake: FakeGA4) -> dict[str, str]:
    return {
        "OPTEL_GA4_MEASUREMENT_ID": "G-SDKTEST",
        "OPTEL_GA4_API_SECRET": "sdk-secret",
        "OPTEL_GA4_ENDPOINT": fake.url,
        "OPTEL_ALLOWED_ATTRIBUTES": "framework,path",
    }


def test_ga4_exporter_in_a_plain_sdk_pipeline(home: Path) -> None:
    run_cli("opt-in", "--app", "sdktool", home=home)
    with FakeGA4() as fake:
        r = run_python(SCRIPT, home, _env(fake))
        assert r.returncode == 0, r.stderr
        events = fake.events()
        assert fake.messages() == []
    assert [e["name"] for e in events] == ["sdk_convert"]
    params = events[0]["params"]
    assert params["framework"] == "onnx"
    assert (
        params["path"] == "<not-label>"
    )  # declared in the environment: a label, and a path is none
    dump = json.dumps(events)
    assert "alice" not in dump and "user_email" not in dump


def test_ga4_exporter_sends_nothing_without_consent(home: Path) -> None:
    with FakeGA4() as fake:
        r = run_python(SCRIPT, home, _env(fake))
        assert r.returncode == 0, r.stderr
        assert fake.collected() == []
