"""Crash capture in real processes: the traceback the user sees is unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, _scrubbed_environ, run_cli, run_python

# The same script runs with and without optel (USE_OPTEL), so the traceback
# differs only if optel changes it. Line numbers stay identical.
CRASH = """
import os, sys
if os.environ.get("USE_OPTEL"):
    import optel
    t = optel.init(app="crashtool", version="1.0", capture_crashes=True)
    print("enabled", t.enabled, file=sys.stdout)
def load(path):
    raise FileNotFoundError(f"cannot open {path} for alice@example.com")
load("/home/alice/models/resnet.onnx")
"""

THREAD_CRASH = """
import os, sys, threading
if os.environ.get("USE_OPTEL"):
    import optel
    t = optel.init(app="crashtool", capture_crashes=True)
def work():
    raise ValueError("thread failed on /home/alice/data.csv")
th = threading.Thread(target=work, name="worker-1")
th.start()
th.join()
print("main continues")
"""


def _run_file(script: Path, home: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a script file, so the traceback carries a real path and source lines."""
    environ = _scrubbed_environ()
    environ.update(OPTEL_HOME=str(home), PYTHONPATH=str(ROOT / "src"), **extra)
    return subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=60
    )


def _reports(home: Path) -> list[dict]:
    shown = json.loads(run_cli("show", "--json", home=home).stdout)
    return [i["payload"] for i in shown if i["payload"].get("name") == "exception"]


def test_unhandled_exception_prints_the_same_bytes_and_spools_one_report(
    home: Path, tmp_path: Path
) -> None:
    assert run_cli("opt-in", "--app", "crashtool", home=home).returncode == 0
    script = tmp_path / "crashtool.py"
    script.write_text(CRASH)
    plain = _run_file(script, home, {})
    t0 = time.monotonic()
    with_optel = _run_file(script, home, {"USE_OPTEL": "1", "OPTEL_EXIT_BUDGET_MS": "300"})
    elapsed = time.monotonic() - t0
    assert with_optel.stdout == "enabled True\n"
    assert plain.returncode == with_optel.returncode == 1
    assert "FileNotFoundError: cannot open /home/alice/models/resnet.onnx" in plain.stderr
    assert 'load("/home/alice/models/resnet.onnx")' in plain.stderr  # source lines shown
    assert with_optel.stderr == plain.stderr  # byte for byte
    assert elapsed < 10  # a hard bound: start-up plus the exit budget, never a hang
    (report,) = _reports(home)
    attrs = report["attributes"]
    assert attrs["optel.crash"] is True and attrs["optel.crash.thread"] == "main"
    assert attrs["exception.type"] == "FileNotFoundError"
    assert "exception.message" not in attrs  # free text: off by default
    assert "alice" not in json.dumps(report)
    assert attrs["exception.stacktrace"] == "<user-code>:9 in <module>\n<user-code>:8 in load"


def test_thread_crash_prints_the_same_bytes_and_is_reported(home: Path) -> None:
    assert run_cli("opt-in", "--app", "crashtool", home=home).returncode == 0
    plain = run_python(THREAD_CRASH, home)
    with_optel = run_python(THREAD_CRASH, home, {"USE_OPTEL": "1"})
    assert plain.returncode == with_optel.returncode == 0
    assert "ValueError: thread failed on /home/alice/data.csv" in plain.stderr
    assert with_optel.stderr == plain.stderr
    assert with_optel.stdout == plain.stdout == "main continues\n"
    (report,) = _reports(home)
    assert report["attributes"]["optel.crash.thread"] == "thread"
    assert "alice" not in json.dumps(report)


def test_a_tool_hook_installed_before_optel_still_runs(home: Path) -> None:
    run_cli("opt-in", "--app", "crashtool", home=home)
    r = run_python(
        """
        import sys
        def mine(t, v, tb):
            print("tool hook:", t.__name__)
        sys.excepthook = mine
        import optel
        optel.init(app="crashtool", capture_crashes=True)
        raise RuntimeError("boom")
        """,
        home,
    )
    assert r.stdout == "tool hook: RuntimeError\n"
    assert r.stderr == ""
    assert len(_reports(home)) == 1


def test_without_consent_the_crash_is_untouched_and_nothing_is_written(home: Path) -> None:
    plain = run_python(CRASH, home)
    off = run_python(CRASH, home, {"USE_OPTEL": "1"})
    assert off.stdout == "enabled False\n"
    assert off.stderr == plain.stderr
    assert not home.exists()


def test_crash_report_is_delivered_at_exit_within_the_budget(home: Path, tmp_path: Path) -> None:
    from tests.fakes.ga4_server import FakeGA4

    run_cli("opt-in", "--app", "crashtool", home=home)
    script = tmp_path / "crashtool.py"
    script.write_text(CRASH)
    with FakeGA4() as ga4:
        r = _run_file(
            script,
            home,
            {
                "USE_OPTEL": "1",
                "OPTEL_GA4_MEASUREMENT_ID": "G-CRASH",
                "OPTEL_GA4_API_SECRET": "s3cr3t-for-tests",
                "OPTEL_GA4_ENDPOINT": ga4.url,
                "OPTEL_FLUSH_INTERVAL_MS": "600000",  # only the exit hook sends
                "OPTEL_EXIT_BUDGET_MS": "2000",
            },
        )
        events = ga4.events()
    assert r.returncode == 1
    crashes = [e for e in events if e["params"].get("optel_crash") in (True, "true")]
    assert len(crashes) == 1, events
    assert "alice" not in json.dumps(events)
    assert ga4.messages() == []
    left = json.loads(run_cli("status", "--json", home=home).stdout)
    assert left["pending"] == 0


def test_usage_failure_log_and_crash_records_pass_ga4_validation(home: Path) -> None:
    from tests.fakes.ga4_server import FakeGA4

    run_cli("opt-in", "--app", "crashtool", home=home)
    with FakeGA4() as ga4:
        r = run_python(
            """
            import logging, optel
            t = optel.init(app="crashtool", version="1.0", capture_crashes=True,
                           capture_logs=True)

            @t.track("convert", params=["framework"])
            def convert(path, framework="onnx"):
                if "bad" in path:
                    raise ValueError(f"bad model {path}")

            convert("/home/alice/a.onnx")
            for _ in range(3):
                try:
                    convert("/home/alice/bad.onnx", framework="tflite")
                except ValueError:
                    pass
            logging.getLogger("crashtool").warning("slow disk at /home/alice")
            raise RuntimeError("crash in /home/alice/x")
            """,
            home,
            {
                "OPTEL_GA4_MEASUREMENT_ID": "G-CRASH",
                "OPTEL_GA4_API_SECRET": "s3cr3t-for-tests",
                "OPTEL_GA4_ENDPOINT": ga4.url,
                "OPTEL_FLUSH_INTERVAL_MS": "600000",
                "OPTEL_EXIT_BUDGET_MS": "2000",
            },
        )
        events = ga4.events()
        messages = ga4.messages()
    assert r.returncode == 1
    assert messages == []
    names = sorted({e["name"] for e in events})
    for expected in ("convert", "exception", "exception_repeated", "run_start", "run_end"):
        assert expected in names, names
    # one failure report per distinct failure, one for the crash: usage events keep their name
    assert [e["name"] for e in events].count("exception") == 2
    assert [e["name"] for e in events].count("convert") == 4
    assert "alice" not in json.dumps(events)
