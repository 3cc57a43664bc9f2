"""An unmodified OpenTelemetry-instrumented script, run by opentelemetry-instrument,
gets optel in the middle with one variable (OTEL_PYTHON_CONFIGURATOR=optel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _scrubbed_environ, run_cli

SCRIPT = """
from opentelemetry import trace

tracer = trace.get_tracer("legacy.script")
with tracer.start_as_current_span(
    "legacy_work", attributes={"framework": "onnx", "user.email": "alice@example.com"}
):
    pass
print("script done")
"""

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def _run(home: Path, tmp_path: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not INSTRUMENT.exists():
        pytest.skip("opentelemetry-instrument is not installed (pip install -e '.[dev]')")
    script = tmp_path / "legacy.py"
    script.write_text(SCRIPT)
    environ = _scrubbed_environ()
    # exporters named: an installed distro (opentelemetry-distro sets otlp by
    # default) must not route these spans elsewhere or wait on a dead port
    environ.update(
        OPTEL_HOME=str(home),
        OTEL_SERVICE_NAME="scripttool",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    environ.update(extra)
    environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, str(script)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _spans(home: Path) -> list[dict]:
    shown = json.loads(run_cli("show", "--json", home=home).stdout)
    return [i["payload"] for i in shown if i["signal"] == "span"]


def test_one_variable_puts_optel_in_the_middle(home: Path, tmp_path: Path) -> None:
    run_cli("opt-in", "--app", "scripttool", home=home)
    r = _run(
        home,
        tmp_path,
        {"OTEL_PYTHON_CONFIGURATOR": "optel", "OPTEL_ALLOWED_ATTRIBUTES": "framework"},
    )
    assert r.returncode == 0, r.stderr
    assert "script done" in r.stdout
    spans = _spans(home)
    assert [s["name"] for s in spans] == ["legacy_work"]
    assert spans[0]["attributes"] == {"framework": "onnx"}  # user.email never kept
    assert spans[0]["resource"]["service.name"] == "scripttool"


def test_without_the_variable_optel_stays_out(home: Path, tmp_path: Path) -> None:
    run_cli("opt-in", "--app", "scripttool", home=home)
    r = _run(home, tmp_path, {})
    assert r.returncode == 0, r.stderr
    assert _spans(home) == []


def test_without_consent_nothing_is_recorded(home: Path, tmp_path: Path) -> None:
    r = _run(home, tmp_path, {"OTEL_PYTHON_CONFIGURATOR": "optel"})
    assert r.returncode == 0, r.stderr
    assert "script done" in r.stdout
    assert not home.exists()
