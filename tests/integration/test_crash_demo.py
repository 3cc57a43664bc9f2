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
    assert "crash reports in the spool: 1 (type and frames; no message)" in out
    assert "exception.type: RuntimeError" in out
    assert "exception.message: (not sent: free text, off by default)" in out
    assert "out: file:.onnx@home   (a path kind, never the path)" in out  # the path's kind only
    shown = out.split("== what was recorded")[1].split("== what went in")[0]
    assert "/home/alice" not in shown and '"input_path": "file:.onnx@home"' in shown
    assert not home.exists()
