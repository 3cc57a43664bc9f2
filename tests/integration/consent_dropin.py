"""The drop-in never sends around consent and never hijacks: real processes,
requests counted on a loopback OTLP/HTTP server. These checks run as rows of
the scenario table in test_consent_trust.py (this module is not collected).

- optel chosen (``OTEL_PYTHON_CONFIGURATOR=optel``) without consent: no SDK
  provider in the process exports, not even the one pytest-opentelemetry
  builds for itself later (0 requests), and ``optel status`` says OFF;
- optel installed but not chosen: a program run by ``opentelemetry-instrument``
  next to ``opentelemetry-distro`` sends exactly what it sends without optel,
  also when optel's configurator entry point happens to be found first.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, _scrubbed_environ, run_cli
from tests.fakes.otlp_server import OtlpServer

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")

SECRET_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
EMAIL = "alice.cooper@example.org"

PLUGIN_TEST = f"""
from opentelemetry import trace

def test_converts():
    tracer = trace.get_tracer("tool.under.test")
    with tracer.start_as_current_span(
        "convert", attributes={{"auth.token": "{SECRET_TOKEN}", "user.email": "{EMAIL}"}}
    ):
        pass
"""

SCRIPT = """
from opentelemetry import metrics, trace

tracer = trace.get_tracer("plain.script")
with tracer.start_as_current_span("plain_work", attributes={"framework": "onnx"}):
    pass
metrics.get_meter("plain.script").create_counter("plain.count").add(1)
print("script done")
"""

# Runs a script the way opentelemetry-instrument does (sitecustomize's
# initialize()), with the configurator entry points in a chosen order:
# "without" leaves optel's out (as if optel were not installed), "first" puts
# it first (the order importlib happened to give on some machine).
RUNNER = """
import runpy, sys
mode, script = sys.argv[1], sys.argv[2]
from opentelemetry.instrumentation.auto_instrumentation import _load
real = _load.entry_points

def ordered(**kw):
    eps = list(real(**kw))
    if kw.get("group") == "opentelemetry_configurator":
        mine = [e for e in eps if e.name == "optel"]
        others = [e for e in eps if e.name != "optel"]
        assert mine, "optel's entry point is not installed"
        eps = others if mode == "without" else mine + others
    return eps

_load.entry_points = ordered
from opentelemetry.instrumentation.auto_instrumentation import initialize
initialize()
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    if not INSTRUMENT.exists():
        pytest.skip("opentelemetry-instrument is not installed (pip install -e '.[dev]')")


def _environ(home: Path, server: OtlpServer, **extra: str) -> dict[str, str]:
    environ = _scrubbed_environ()
    environ.update(
        OPTEL_HOME=str(home),
        PYTHONPATH=str(ROOT / "src"),
        OTEL_EXPORTER_OTLP_ENDPOINT=server.url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="100000",
    )
    environ.update(extra)
    return environ


def _bodies(server: OtlpServer) -> bytes:
    return b"".join(r.raw for r in server.requests)


# -- chosen, without consent: pytest-opentelemetry builds its own provider ---------------


def _pytest_with_plugin(home: Path, tmp_path: Path, server: OtlpServer, **extra: str) -> Any:
    (tmp_path / "test_tool.py").write_text(PLUGIN_TEST)
    environ = _environ(
        home,
        server,
        OTEL_SERVICE_NAME="pytool",
        OTEL_TRACES_EXPORTER="otlp_proto_http",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **extra,
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    if extra.get("OTEL_PYTHON_CONFIGURATOR"):
        argv = [str(INSTRUMENT), *argv]
    r = subprocess.run(argv, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert "1 passed" in r.stdout, r.stdout + r.stderr
    return r


def check_chosen_without_consent(home: Path, tmp_path: Path) -> tuple[int, str]:
    """pytest with pytest-opentelemetry under opentelemetry-instrument, optel
    chosen, no consent: 0 requests (the plugin alone sends)."""
    _needs("pytest_opentelemetry")
    with OtlpServer() as plain:  # the control: pytest-opentelemetry alone exports
        _pytest_with_plugin(home, tmp_path, plain)
    assert len(plain.requests) >= 1 and SECRET_TOKEN.encode() in _bodies(plain)
    with OtlpServer() as server:
        _pytest_with_plugin(home, tmp_path, server, OTEL_PYTHON_CONFIGURATOR="optel")
    assert server.requests == [], "a provider exported without consent"
    assert not home.exists()  # nothing written for a tool without consent
    status = json.loads(run_cli("status", "--json", "--app", "pytool", home=home).stdout)
    assert (status["enabled"], status["consent"], status["pending"]) == (False, "unset", 0)
    return len(server.requests), (
        f"plugin alone: {len(plain.requests)} request(s) with the token; status: OFF"
    )


def check_chosen_with_consent(home: Path, tmp_path: Path) -> tuple[int, str]:
    """The same with consent: the spans go through optel, scrubbed."""
    _needs("pytest_opentelemetry")
    run_cli("opt-in", "--app", "pytool", home=home)
    with OtlpServer() as server:
        _pytest_with_plugin(
            home, tmp_path, server, OTEL_PYTHON_CONFIGURATOR="optel", OPTEL_EXIT_BUDGET_MS="5000"
        )
    names = {s.name for s in server.spans()}
    assert "convert" in names, names
    body = _bodies(server)
    assert SECRET_TOKEN.encode() not in body and EMAIL.encode() not in body
    return len(server.requests), "no token, no e-mail on the wire"


def _plain(mode: str, home: Path, tmp_path: Path) -> tuple[list[tuple[str, str]], str]:
    """Requests (path, span or metric names) and stderr of the script run under
    auto-instrumentation: "real" through opentelemetry-instrument itself, or
    the runner with optel's entry point left out ("without") or put first."""
    script = tmp_path / "plain.py"
    script.write_text(SCRIPT)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    with OtlpServer() as server:
        environ = _environ(
            home,
            server,
            OTEL_SERVICE_NAME="plainprog",
            OTEL_TRACES_EXPORTER="otlp_proto_http",
            OTEL_METRICS_EXPORTER="otlp_proto_http",
            OTEL_LOGS_EXPORTER="none",
        )
        if mode == "real":
            argv = [str(INSTRUMENT), sys.executable, str(script)]
        else:
            argv = [sys.executable, str(runner), mode, str(script)]
        r = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "script done" in r.stdout, r.stderr
        seen = []
        for req in server.requests:
            text = str(req.message)
            names = sorted(n for n in ("plain_work", "plain.count") if n in text)
            seen.append((req.path, ",".join(names)))
    return sorted(seen), r.stderr


def check_not_chosen(home: Path, tmp_path: Path) -> tuple[int, str]:
    """optel installed, not chosen, next to opentelemetry-distro: the same
    requests (and warnings) as without optel, also when optel's entry point
    is found first."""
    _needs("opentelemetry.distro")
    without, err_without = _plain("without", home, tmp_path)
    first, err_first = _plain("first", home, tmp_path)
    real, _ = _plain("real", home, tmp_path)
    assert without == [("/v1/metrics", "plain.count"), ("/v1/traces", "plain_work")]
    assert first == without, f"optel first: {first}, without optel: {without}"
    assert real == without, f"as installed: {real}, without optel: {without}"
    assert err_first == err_without  # not even a different warning
    assert not home.exists()  # optel did nothing at all
    return (
        len(first),
        f"without optel {len(without)}, optel's entry point first {len(first)}, as installed {len(real)}",
    )


def check_not_chosen_no_other_configurator(home: Path, tmp_path: Path) -> tuple[int, str]:
    """No other configurator installed: optel's, found first, configures nothing,
    as opentelemetry-instrument without any configurator does."""
    code = textwrap.dedent(
        """
        import os
        from optel.autoconf import OptelConfigurator
        from opentelemetry import trace
        import opentelemetry.util._importlib_metadata as m
        m.entry_points = lambda **kw: []
        OptelConfigurator().configure()
        print(type(trace.get_tracer_provider()).__name__, os.environ.get("OTEL_SDK_DISABLED"))
        """
    )
    environ = {**_scrubbed_environ(), "PYTHONPATH": str(ROOT / "src"), "OPTEL_HOME": str(home)}
    r = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ["ProxyTracerProvider", "None"], r.stderr
    return 0, "tracer provider stays the API's proxy"
