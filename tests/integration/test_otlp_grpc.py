"""OTEL_EXPORTER_OTLP_PROTOCOL=grpc: optel delivers over gRPC to the real collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_python
from tests.integration.collector import Collector, attrs, build, spans


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


def test_grpc_delivery_to_the_gateway(binary: Path, home: Path, tmp_path: Path) -> None:
    run_cli("opt-in", home=home)
    gw = Collector(binary, tmp_path / "grpc.json")
    try:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{gw.grpc_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OPTEL_EXIT_BUDGET_MS": "10000",  # about the protocol, not the budget
        }
        r = run_python(
            """
            import optel
            t = optel.init(app="grpctool", allowed_attributes=["framework"])
            with t.tracer.start_as_current_span("grpc_convert", attributes={"framework": "onnx"}):
                pass
            """,
            home,
            env,
        )
        assert r.returncode == 0, r.stderr
        status = json.loads(run_cli("status", "--json", home=home, extra_env=env).stdout)
        assert status["pending"] == 0, status
    finally:
        gw.stop()
    found = [span for _, span in spans(gw.lines())]
    assert [s["name"] for s in found] == ["grpc_convert"]
    assert attrs(found[0]) == {"framework": "onnx"}


def test_grpc_unavailable_keeps_the_records(home: Path) -> None:
    from tests.integration.collector import free_port

    run_cli("opt-in", home=home)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    r = run_python("import optel\nt = optel.init(app='grpctool')\nt.event('used')\n", home, env)
    assert r.returncode == 0, r.stderr
    assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] >= 1
