"""optel.init: argument checks, the null object, the enabled object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import optel
from optel import config, consent, testing
from optel.config import paths


@pytest.mark.parametrize(
    "kwargs",
    [
        {"app": ""},
        {"app": "has space"},
        {"app": "-leading-dash"},
        {"app": "x" * 65},
        {"app": 42},
        {"app": "ok", "policy": "opt-maybe"},
        {"app": "ok", "version": ""},
        {"app": "ok", "allowed_attributes": "framework"},
        {"app": "ok", "allowed_attributes": ["", "framework"]},
        {"app": "ok", "exit_budget_ms": -1},
        {"app": "ok", "destinations": "ga4,carrier-pigeon"},
        {"app": "ok", "otlp_endpoint": "collector:4318"},
    ],
)
def test_wrong_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        optel.init(**kwargs)


def test_without_consent_the_null_object_accepts_everything(home: Path) -> None:
    t = optel.init(app="mytool", version="1.0")
    assert isinstance(t, optel.NullTelemetry) and not isinstance(t, optel.Telemetry)
    assert t.enabled is False
    assert "no decision" in t.decision.reason
    with t.tracer.start_as_current_span("x") as span:
        assert not span.is_recording()
    t.meter.create_counter("c").add(1)
    t.event("used", framework="onnx")
    t.error(ValueError("boom"))
    t.shutdown()
    assert t.tracer is t.tracer  # cached, not rebuilt per call
    assert not home.exists()


def test_broken_state_on_disk_never_raises(home: Path) -> None:
    home.mkdir()
    Path(paths().consent).write_text("{not json")
    Path(paths().settings).write_text("[1, 2")
    t = optel.init(app="mytool")
    assert t.enabled is False


def test_with_consent_records_go_to_the_spool(home: Path) -> None:
    consent.record(consent.GRANTED, "mytool", p=paths())
    t = optel.init(app="mytool", allowed_attributes=["framework"])
    assert isinstance(t, optel.Telemetry) and t.enabled
    with t.tracer.start_as_current_span("convert", attributes={"framework": "onnx"}):
        pass
    t.event("model_converted", framework="onnx", size=3)
    assert t.flush(0)
    rows = [r for r in testing.pending() if '"run_start"' not in r.payload]
    assert sorted(r.signal for r in rows) == ["event", "span"]
    assert optel.init(app="mytool") is t  # one pipeline per app and process
    t.shutdown()
    assert t.enabled is False  # shut down: nothing more leaves


def test_queue_bound_drops_and_counts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optel import pipeline

    monkeypatch.setattr(pipeline, "QUEUE_MAX", 10)
    consent.record(consent.GRANTED, p=paths())
    t = optel.init(app="mytool")
    p = testing.pipeline(t)
    assert p is not None
    assert p.stop_worker(5)  # hold the worker so only the queue bound acts
    queued = p.queued  # run_start may already wait there
    for _ in range(25):
        t.event("used")
    t.flush(0)
    assert len(testing.pending()) == 10
    assert testing.stats()["dropped_queue_full"] == 25 - (10 - queued)


def test_undeclared_metric_attributes_are_dropped_before_aggregation(home: Path) -> None:
    consent.record(consent.GRANTED, p=paths())
    t = optel.init(app="mytool", allowed_attributes=["framework"])
    counter = t.meter.create_counter("converted")
    for i in range(50):  # 50 distinct user ids would be 50 series without the view
        counter.add(1, {"framework": "onnx", "user_id": f"u{i}"})
    t.flush(0)
    metrics = [r for r in testing.pending() if r.signal == "metric"]
    assert len(metrics) == 1
    import json

    points = json.loads(metrics[0].payload)["points"]
    assert points == [{**points[0], "attributes": {"framework": "onnx"}, "value": 50}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exit_budget_ms": "abc"}, "exit_budget_ms: expected a whole number, got 'abc'"),
        ({"otlp_endpoint": "collector:4318"}, "otlp_endpoint: expected an http:// or https://"),
        ({"destinations": "ga4,pigeon"}, "destinations: unknown destination 'pigeon'"),
        ({"max_events_per_minute": "many"}, "max_events_per_minute must be"),
        ({"capture_logs": "loud"}, "capture_logs must be"),
    ],
)
def test_init_errors_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        optel.init(app="mytool", **kwargs)
    assert str(exc.value).startswith(message), exc.value


def test_an_empty_string_from_an_unset_variable_means_not_set(home: Path) -> None:
    t = optel.init(
        app="mytool",
        ga4_measurement_id=os.environ.get("MYTOOL_GA4_ID", ""),
        ga4_api_secret="",
        otlp_endpoint=" ",
        destinations="",
        exit_budget_ms="",
    )
    assert isinstance(t, optel.NullTelemetry)
    cfg = config.resolve({"ga4_measurement_id": "", "exit_budget_ms": ""})
    assert cfg["ga4_measurement_id"] is None and cfg.sources["ga4_measurement_id"] == "default"
    assert cfg["exit_budget_ms"] == 300 and cfg.destinations() == ("local",)
