from __future__ import annotations

from pathlib import Path

from optel import autoconf


def test_exporter_names_map_to_destinations() -> None:
    f = autoconf.destinations_from_env
    assert f({}) is None  # nothing named: the tool's own choice stands
    assert f({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}) == ["otlp"]
    assert f({"OTEL_TRACES_EXPORTER": "ga4,console"}) == ["ga4", "local"]
    assert f({"OTEL_TRACES_EXPORTER": "none"}) == ["none"]
    assert f({"OTEL_TRACES_EXPORTER": "zipkin"}) == ["none"]  # unknown: send nowhere


def test_acts_only_when_chosen(home: Path) -> None:
    assert autoconf.configure({"OTEL_SERVICE_NAME": "x"}) is None
    assert autoconf.configure({"OTEL_PYTHON_CONFIGURATOR": "sdk", "OTEL_SERVICE_NAME": "x"}) is None


def test_bad_environment_never_raises(home: Path) -> None:
    env = {"OTEL_PYTHON_CONFIGURATOR": "optel", "OTEL_SERVICE_NAME": "has spaces"}
    assert autoconf.configure(env) is None
    assert autoconf.configure({"OTEL_PYTHON_CONFIGURATOR": "optel"}) is None
