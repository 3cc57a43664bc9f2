"""Delivery seen from the user's side, through real processes and loopback servers:
``optel status`` (pending, dropped, last error), ``optel show --sent`` (the
payload as sent), a later run delivering older records in the background,
and a damaged or unwritable spool survived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import run_cli, run_python
from tests.fakes.faults import refused
from tests.fakes.otlp_server import OtlpServer, from_otlp_json

TOOL = """
import optel
t = optel.init(app="healthtool", allowed_attributes=["step"])
for i in range(3):
    with t.tracer.start_as_current_span(f"step-{i}", attributes={"step": i}):
        pass
"""


def _status(home: Path) -> dict[str, Any]:
    r = run_cli("status", "--json", home=home)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def _ok(r: Any) -> None:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_status_shows_pending_dropped_and_the_last_error(home: Path) -> None:
    run_cli("opt-in", home=home)
    with OtlpServer(default=(503, {"Retry-After": "30"})) as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
        _ok(run_python(TOOL, home, env))  # a long budget: the exit send surely tries
        status = _status(home)
    assert status["pending"] == 3
    assert "http_503" in status["last_error"]
    with OtlpServer(default=(400, {})) as server:
        r = run_cli("flush", home=home, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
    assert r.returncode == 0, r.stdout + r.stderr
    status = _status(home)
    assert status["pending"] == 0
    assert status["dropped"] == {"http_400": 3}
    text = run_cli("status", home=home).stdout
    assert "dropped:      http_400=3" in text and "last error:" in text


def test_show_sent_lists_each_payload_exactly_as_it_went_out(home: Path) -> None:
    run_cli("opt-in", home=home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
        _ok(run_python(TOOL, home, env))
    assert _status(home)["pending"] == 0
    r = run_cli("show", "--sent", "--json", home=home)
    sent = [item for item in json.loads(r.stdout) if item["destination"] == "otlp"]
    assert len(sent) == 3 and all(item["app"] == "healthtool" for item in sent)
    wire = {s.name: s for s in server.spans()}
    for item in sent:
        logged = from_otlp_json(item["payload"], ExportTraceServiceRequest)
        span = logged.resource_spans[0].scope_spans[0].spans[0]
        assert span == wire[span.name]  # the audit log holds the very span the server got
    assert "3 record(s) sent" in run_cli("show", "--sent", home=home).stdout


LATER_RUN = """
import json, os, sqlite3, sys, time, optel
t = optel.init(app="othertool")  # a different tool, recording nothing
spool = os.path.join(os.environ["OPTEL_HOME"], "spool.sqlite3")
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    db = sqlite3.connect(spool)
    left = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    db.close()
    if left == 0:
        break
    time.sleep(0.05)
print(json.dumps({"left_before_exit": left}))
"""


def test_a_later_run_sends_older_records_in_the_background(home: Path) -> None:
    run_cli("opt-in", home=home)
    with refused() as down:
        _ok(run_python(TOOL, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": down}))
    assert _status(home)["pending"] == 3  # offline: kept
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_FLUSH_INTERVAL_MS": "200"}
        r = run_python(LATER_RUN, home, env)
        _ok(r)
    # sent by the later run's worker while it ran, not by its exit
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"left_before_exit": 0}
    assert sorted(s.name for s in server.spans()) == ["step-0", "step-1", "step-2"]


def test_a_corrupt_spool_is_moved_aside_with_one_warning(home: Path) -> None:
    run_cli("opt-in", home=home)
    (home / "spool.sqlite3").write_bytes(b"\x00garbage, not SQLite\x00" * 500)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
        r = run_python(TOOL, home, env)
    _ok(r)
    assert r.stderr.count("optel:") == 1 and "moved it to" in r.stderr
    assert sorted(s.name for s in server.spans()) == ["step-0", "step-1", "step-2"]
    assert list(home.glob("spool.sqlite3.corrupt-*"))
    assert "moved aside" in _status(home)["last_error"]


def test_an_unwritable_spool_still_sends_this_runs_records(home: Path) -> None:
    run_cli("opt-in", home=home)
    (home / "spool.sqlite3").mkdir()  # SQLite cannot open it: like a read-only disk
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
        r = run_python(TOOL, home, env)
    _ok(r)
    assert r.stderr.count("optel:") == 1 and "cannot be written" in r.stderr
    assert sorted(s.name for s in server.spans()) == ["step-0", "step-1", "step-2"]


HARD_KILLED = """
import time, optel
t = optel.init(app="healthtool")
for i in range(10):
    with t.tracer.start_as_current_span(f"k-{i}"):
        pass
print("recorded", flush=True)
time.sleep(60)  # never exits by itself: SIGKILL, no exit hooks run
"""


def test_records_reach_the_disk_without_an_exit_and_survive_sigkill(home: Path) -> None:
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, _scrubbed_environ

    run_cli("opt-in", home=home)
    environ = _scrubbed_environ()
    environ.update(
        OPTEL_HOME=str(home),
        PYTHONPATH=str(ROOT / "src"),
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OPTEL_FLUSH_INTERVAL_MS="600000",  # no send cycle: only the drain tick writes the spool
    )
    p = subprocess.Popen(
        [sys.executable, "-c", HARD_KILLED], env=environ, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "recorded"
        spooled, deadline = 0, time.monotonic() + 15
        while spooled < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                db = sqlite3.connect(f"file:{home / 'spool.sqlite3'}?mode=ro", uri=True, timeout=5)
                try:
                    spooled = db.execute("SELECT count(*) FROM entries").fetchone()[0]
                finally:
                    db.close()
            except sqlite3.OperationalError:
                pass  # not created yet, or its tables not yet
        assert spooled == 10
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    with OtlpServer() as server:
        r = run_cli("flush", home=home, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(s.name for s in server.spans()) == [f"k-{i}" for i in range(10)]


DURING_RUN = """
import json, time, optel
t = optel.init(app="healthtool", allowed_attributes=["step"])
for i in range(600):
    with t.tracer.start_as_current_span("step", attributes={"step": i}):
        pass
time.sleep(3)  # the tool's own work (I/O), well within the 5 s flush interval
print(json.dumps({"end": time.time()}), flush=True)
"""


def test_records_leave_during_the_run_once_512_are_spooled(home: Path) -> None:
    """The README: the sender sends as soon as 512 new records are spooled, so
    records leave during the run (not only every flush_interval_ms, 5 s)."""
    run_cli("opt-in", home=home)
    with OtlpServer() as server:
        r = run_python(DURING_RUN, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
        _ok(r)
        end = json.loads(r.stdout.strip().splitlines()[-1])["end"]
        during = sum(
            len(s.spans)
            for req in server.accepted()
            if req.at < end
            for group in req.message.resource_spans
            for s in group.scope_spans
        )
    assert during >= 512, during
