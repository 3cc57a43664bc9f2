"""The demo's crash step: the original traceback, unchanged, and one scrubbed report."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_demo_crash_step(home: Path) -> None:
    r = run_cli("demo", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "RuntimeError: unsupported opset 99 in /home/alice/models/corrupt.onnx" in out
    assert "identical, byte for byte, to a run with telemetry off: yes" in out
    assert "crash reports in the spool: 1 (scrubbed)" in out
    assert "exception.message: unsupported opset 99 in <home>/models/corrupt.onnx" in out
    assert not home.exists()
