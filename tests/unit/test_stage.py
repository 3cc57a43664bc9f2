"""The gate-scrub step, and the GA4 SDK exporter that reuses it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from optel import config, consent, env, exporters
from optel.anonymize import Anonymizer
from optel.config import paths
from optel.exporters.sdk import GA4SpanExporter
from optel.stage import Stage
from tests.fakes.ga4_server import FakeGA4

ANSWERS = {
    "granted": SimpleNamespace(enabled=True, consent=consent.GRANTED),
    "denied": SimpleNamespace(enabled=False, consent=consent.DENIED),
    "switched_off": SimpleNamespace(enabled=False, consent=consent.GRANTED),  # a kill switch
}


def _event(app: str, **attrs: Any) -> dict[str, Any]:
    return {"signal": "event", "time": 1.0, "time_ns": 1, "name": "used", "app": app,
            "policy": "opt-in", "attributes": attrs, "resource": {}}  # fmt: skip


def _stage(hold: bool, debug: bool = False, names: tuple[str, ...] = ("local",)) -> Stage:
    asked: list[tuple[str, str]] = []

    def decide(app: str, policy: str) -> Any:
        asked.append((app, policy))
        return ANSWERS[app]

    stage = Stage(
        Anonymizer(["framework"]),
        exporters.Destinations(config.resolve()),
        names,
        decide,
        hold=hold,
        debug=debug,
    )
    stage.asked = asked  # type: ignore[attr-defined]
    return stage


def test_consent_decides_per_record_and_hold_depends_on_the_caller() -> None:
    recs = [_event(app) for app in ("granted", "denied", "switched_off", "granted")]
    spooling = _stage(hold=True)
    assert [r["app"] for r in spooling(recs, dict)] == ["granted", "switched_off", "granted"]
    assert spooling.asked == [  # type: ignore[attr-defined]
        ("granted", "opt-in"), ("denied", "opt-in"), ("switched_off", "opt-in"),
    ]  # fmt: skip
    # without a spool, what may not leave now is not kept either
    assert [r["app"] for r in _stage(hold=False)(recs, dict)] == ["granted", "granted"]


def test_records_are_scrubbed_once_and_no_destination_code_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_import(name: str, cfg: Any) -> None:
        raise AssertionError(f"destination {name} loaded")  # the exit thread may import nothing

    monkeypatch.setattr(exporters, "load", no_import)
    stage = _stage(hold=True, names=("local", "otlp"))
    (rec,) = stage([_event("granted", framework="onnx", email="a@example.com")], dict)
    assert rec["attributes"] == {"framework": "onnx"}  # undeclared: gone
    assert rec["dropped_attributes"] == 1


def test_a_broken_record_is_skipped_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from optel import _errors

    monkeypatch.setattr(_errors, "RAISE", False)
    out = _stage(hold=True)([{"signal": "event"}, _event("granted")], dict)  # no app: broken
    assert [r["app"] for r in out] == ["granted"]


def test_debug_prints_each_destinations_payload_and_keeps_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stage = _stage(hold=True, debug=True, names=("local", "otlp"))
    assert stage([_event("granted", framework="onnx")], dict) == []
    err = capsys.readouterr().err
    assert "optel debug [local]" in err and '"framework":"onnx"' in err
    assert 'optel debug [otlp] {"resourceLogs"' in err


# -- the GA4 exporter for plain SDK pipelines --------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGA4]:
    with FakeGA4() as server:
        monkeypatch.setenv(env.OPTEL_GA4_MEASUREMENT_ID, "G-SDK")
        monkeypatch.setenv(env.OPTEL_GA4_API_SECRET, "sdk-secret")
        monkeypatch.setenv(env.OPTEL_GA4_ENDPOINT, server.url)
        monkeypatch.setenv(env.OPTEL_ALLOWED_ATTRIBUTES, "framework")
        yield server


def _export_spans(n: int) -> GA4SpanExporter:
    exporter = GA4SpanExporter(timeout_s=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "sdktool"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("plain.sdk")
    for i in range(n):
        with tracer.start_as_current_span(f"step{i}", attributes={"framework": "onnx", "who": "x"}):
            pass
    return exporter


def test_the_sdk_exporter_gates_scrubs_and_keeps_one_session(home: Path, fake: FakeGA4) -> None:
    consent.record(consent.GRANTED, "sdktool", p=paths())
    exporter = _export_spans(3)
    events = fake.events()
    assert [e["name"] for e in events] == ["step0", "step1", "step2"]
    assert all("who" not in e["params"] and e["params"]["framework"] == "onnx" for e in events)
    assert fake.connections == 1  # three exports, one session
    exporter.shutdown()
    assert fake.wait_closed(1)  # closed at shutdown


def test_the_sdk_exporter_sends_nothing_without_consent_or_under_a_kill_switch(
    home: Path, fake: FakeGA4, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export_spans(1).shutdown()  # no decision
    consent.record(consent.GRANTED, "sdktool", p=paths())
    monkeypatch.setenv(env.OPTEL_DISABLED, "1")
    _export_spans(1).shutdown()
    assert fake.hits == []
