"""``OPTEL_DEBUG=1`` is a preview, before any decision and whatever it is: each
record is printed to stderr as every configured destination would send it,
and nothing is sent (the loopback GA4 and OTLP fakes see no connection) or
written (the state folder is byte for byte what it was, or still absent)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, _scrubbed_environ, grant, run_cli, run_on_terminal
from tests.fakes.ga4_server import FakeGA4
from tests.fakes.otlp_server import OtlpServer

TOOL = """
    import sys
    import optel

    t = optel.init(
        app="previewtool", version="2.0", policy=sys.argv[1],
        attributes={"framework": ("onnx", "tflite"), "dataset": optel.Hashed},
        prompt=True,  # a preview asks nothing
    )
    print("enabled", t.enabled, "preview", t.preview)

    @t.track("convert", params=["framework"])
    def convert(framework):
        with t.tracer.start_as_current_span("load_model"):
            t.event("model_converted", framework=framework, dataset="imagenet-private")
        print("hashed", optel.hashed("alice"))

    convert("onnx")
    try:
        raise ValueError("secret /home/alice/x")
    except ValueError as exc:
        t.error(exc)
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (ns)."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            st = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), folder)] = (st.st_size, st.st_mtime_ns)
    return out


def _run_on_terminal(argv: list[str], environ: dict[str, str]) -> str:
    code, out = run_on_terminal(argv, environ)
    assert code == 0, out
    return out


@pytest.mark.parametrize("policy", ["opt-in", "opt-out"])
@pytest.mark.parametrize("state", ["no decision", "granted", "denied", "DO_NOT_TRACK", "terminal"])
def test_debug_previews_and_sends_or_writes_nothing(
    tmp_path: Path, home: Path, policy: str, state: str
) -> None:
    if state in ("granted", "denied"):
        run_cli("opt-in" if state == "granted" else "opt-out", "--app", "previewtool", home=home)
    before = _snapshot(home)
    tool = tmp_path / "previewtool.py"
    tool.write_text(textwrap.dedent(TOOL))
    with FakeGA4() as ga4, OtlpServer() as otlp:
        environ = _scrubbed_environ()
        environ.update(
            OPTEL_HOME=str(home),
            PYTHONPATH=str(ROOT / "src"),
            OPTEL_DEBUG="1",
            OPTEL_GA4_MEASUREMENT_ID="G-TEST",
            OPTEL_GA4_API_SECRET="s3cr3t",
            OPTEL_GA4_ENDPOINT=ga4.url,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
            OPTEL_EXIT_BUDGET_MS="2000",  # room to send, were anything sent
        )
        if state == "DO_NOT_TRACK":
            environ["DO_NOT_TRACK"] = "1"
        argv = [sys.executable, str(tool), policy]
        if state == "terminal":  # where an opt-out notice would reach a person (and be recorded)
            out = err = _run_on_terminal(argv, environ)
        else:
            r = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            out, err = r.stdout, r.stderr
        assert (ga4.hits, otlp.requests) == ([], [])
        assert (ga4.connections, otlp.connections) == (0, 0)
    assert "enabled False preview True" in out  # nothing may leave: enabled is false
    assert "a preview of what previewtool would send (OPTEL_DEBUG)" in err
    assert "nothing is sent or written" in err
    ga4_lines = [line for line in err.splitlines() if line.startswith("optel debug [ga4] ")]
    otlp_lines = [line for line in err.splitlines() if line.startswith("optel debug [otlp] ")]
    shown = "\n".join(ga4_lines)
    for name in ("run_start", "convert", "model_converted", "exception", "run_end"):
        assert f'"name":"{name}"' in shown, name
    assert otlp_lines and any("load_model" in line for line in otlp_lines)
    assert "imagenet-private" not in err and '"dataset":"h:' in shown  # hashed, salt in memory
    assert "secret" not in shown and "/home/alice" not in err
    assert "Turn it off" not in err  # no notice: a preview is not the decision's moment
    assert "hashed h:" in out
    assert _snapshot(home) == before  # nothing written, not even the notice or a run count
    if state not in ("granted", "denied"):
        assert not home.exists()


def test_debug_preview_hashes_like_the_real_run(home: Path) -> None:
    """With a salt on disk a preview uses it, so it shows the hash that would be sent."""
    grant(home, "previewtool")
    code = "import optel; t = optel.init(app='previewtool'); print(optel.hashed('alice'))"
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}

    def run(**extra: str) -> str:
        r = subprocess.run(
            [sys.executable, "-c", code], env={**environ, **extra}, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    real = run()
    assert real.startswith("h:")
    before = _snapshot(home)
    assert run(OPTEL_DEBUG="1") == real
    assert _snapshot(home) == before
