"""OTLP conventions in the settings: per-signal endpoints, the protocols, and one
warning line per invalid ``OTEL_*`` value naming the variable and what applies."""

from __future__ import annotations

import pytest

from optel import config, env


def _resolve(**environ: str) -> config.Config:
    return config.resolve(environ={**environ, env.OPTEL_HOME: "/nonexistent-optel-home"})


def test_a_per_signal_endpoint_alone_turns_otlp_on_for_that_signal() -> None:
    cfg = _resolve(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://traces.example:4318/custom")
    assert cfg.destinations() == ("otlp",)
    assert cfg.otlp_endpoint("traces") == "http://traces.example:4318/custom"  # used as is
    assert cfg.otlp_endpoint("logs") is None and cfg.otlp_endpoint("metrics") is None
    both = _resolve(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://all.example:4318/",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://metrics.example/m",
    )
    assert both.otlp_endpoint("logs") == "http://all.example:4318/v1/logs"
    assert both.otlp_endpoint("metrics") == "http://metrics.example/m"
    assert both.otlp_endpoint("traces", grpc=True) == "http://all.example:4318"
    none = _resolve(OPTEL_DESTINATIONS="otlp")  # chosen, no endpoint: the spec's default
    assert none.otlp_endpoint("logs") == "http://localhost:4318/v1/logs"
    assert none.otlp_endpoint("logs", grpc=True) == "http://localhost:4317"
    assert _resolve().destinations() == ("local",)


def test_every_protocol_the_spec_names_is_accepted() -> None:
    for protocol in ("http/protobuf", "http/json", "grpc"):
        cfg = _resolve(OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=protocol)
        assert cfg.otlp("protocol", "logs") == protocol
        assert cfg.otlp("protocol", "traces") is None  # the destination's default applies


BAD = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": ("bogus", "using http/protobuf instead"),
    # the general one is refused too: the default applies
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": ("json", "using http/protobuf instead"),
    "OTEL_EXPORTER_OTLP_COMPRESSION": ("zstd", "using none instead"),
    "OTEL_EXPORTER_OTLP_HEADERS": ("x-team=ml,garbage", "using the other 1 header(s)"),
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS": (
        "no equals sign",
        "using OTEL_EXPORTER_OTLP_HEADERS's value",
    ),
    "OTEL_EXPORTER_OTLP_TIMEOUT": ("soon", "using no timeout of its own"),
    "OTEL_EXPORTER_OTLP_CERTIFICATE": ("/no/such/ca.pem", "using the usual CA certificates"),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("collector:4318", "using no OTLP endpoint instead"),
    "OTEL_EXPORTER_OTLP_INSECURE": ("maybe", "using false instead"),
}


def test_each_invalid_value_gives_one_line_naming_the_variable_and_what_applies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    environ = {var: value for var, (value, _) in BAD.items()}
    for _ in range(3):  # every resolve reads them again: still one line each
        cfg = _resolve(**environ)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(BAD), lines
    for var, (_, applies) in BAD.items():
        (line,) = [ln for ln in lines if ln.split()[1].rstrip(":") == var]
        assert applies in line, line
    assert "x-team" not in "\n".join(lines)  # header values may be secrets: never printed
    assert cfg.otlp("headers", "logs") == "x-team=ml"  # the valid entries are kept
    assert cfg.otlp("protocol", "logs") is None and cfg.otlp("compression", "logs") is None


def test_a_per_signal_value_refused_falls_back_to_the_general_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _resolve(OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="thrift")
    assert cfg.otlp("protocol", "metrics") == "grpc"
    err = capsys.readouterr().err
    assert "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL is not valid" in err
    assert "using OTEL_EXPORTER_OTLP_PROTOCOL's value (grpc) instead" in err


def test_header_names_and_values_that_http_cannot_carry_are_refused() -> None:
    headers, bad = config.parse_otlp_headers("good=1,bad name=2,x=%0D%0Ainjected,=3,k=a%20b")
    assert headers == {"good": "1", "k": "a b"}
    assert len(bad) == 3
