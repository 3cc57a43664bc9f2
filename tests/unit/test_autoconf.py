from __future__ import annotations

import json
from pathlib import Path

import pytest

from optel import _errors, autoconf, testing
from tests.conftest import grant


def test_exporter_names_map_to_destinations() -> None:
    f = autoconf.destinations_from_env
    assert f({}) is None  # nothing named: the tool's own choice stands
    assert f({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}) == ["otlp"]
    assert f({"OTEL_TRACES_EXPORTER": "ga4,console"}) == ["ga4", "local"]
    assert f({"OTEL_TRACES_EXPORTER": "none"}) == ["none"]
    assert f({"OTEL_TRACES_EXPORTER": "zipkin"}) == ["none"]  # unknown: send nowhere


def test_an_exporter_optel_cannot_send_to_is_one_line_naming_it_and_what_applies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # it sent nowhere without a word before
    f = autoconf.destinations_from_env
    assert f({"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_METRICS_EXPORTER": "otlp"}) == ["otlp"]
    assert f({"OTEL_LOGS_EXPORTER": "Prometheus"}) == ["none"]
    assert f({"OTEL_TRACES_EXPORTER": "zipkin"}) == ["none"]  # once per variable and process
    assert capsys.readouterr().err.splitlines() == [
        "optel: OTEL_TRACES_EXPORTER is not valid (expected one of otlp, otlp_proto_http,"
        " otlp_proto_grpc, ga4, console, none, got 'zipkin'); using otlp instead",
        "optel: OTEL_LOGS_EXPORTER is not valid (expected one of otlp, otlp_proto_http,"
        " otlp_proto_grpc, ga4, console, none, got 'prometheus'); using none instead",
    ]


def test_acts_only_when_chosen(home: Path) -> None:
    assert autoconf.configure({"OTEL_SERVICE_NAME": "x"}) is None
    assert autoconf.configure({"OTEL_PYTHON_CONFIGURATOR": "sdk", "OTEL_SERVICE_NAME": "x"}) is None


def test_bad_environment_never_raises(home: Path) -> None:
    env = {"OTEL_PYTHON_CONFIGURATOR": "optel", "OTEL_SERVICE_NAME": "has spaces"}
    assert autoconf.configure(env) is None
    assert autoconf.configure({"OTEL_PYTHON_CONFIGURATOR": "optel"}) is None


def test_a_bad_allowed_key_is_skipped_with_one_line_and_the_rest_apply(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One mistyped key in OPTEL_ALLOWED_ATTRIBUTES once turned the whole drop-in off."""
    monkeypatch.setattr(_errors, "RAISE", False)  # as in a host: never raise
    grant(home, "dropped")
    env = {
        "OTEL_PYTHON_CONFIGURATOR": "optel",
        "OTEL_SERVICE_NAME": "dropped",
        "OPTEL_ALLOWED_ATTRIBUTES": "framework, My Key!,optel.mine,ok",
    }
    t = autoconf.configure(env)
    assert t is not None and t.enabled
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "optel: OPTEL_ALLOWED_ATTRIBUTES: ignoring 'My Key!', 'optel.mine' (a key must be an"
        " identifier (letters, digits, '_', '.', '-', starting with a letter or '_', at most"
        " 128 characters)); using framework, ok"
    ]
    t.event("used", framework="onnx", ok=True)
    assert t.flush(0)
    records = [json.loads(r.payload) for r in testing.pending()]
    (used,) = [r for r in records if r.get("name") == "used"]
    assert used["attributes"] == {"framework": "onnx", "ok": True}
