"""Delivery across real processes sharing one OPTEL_HOME: six at once, one
SIGKILLed after spooling, one SIGKILLed mid-send, and a forked child.

Every span name is unique per process and index, so the receiver's list of
names shows at once what was lost (missing) and what was sent twice.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from optel import env
from tests.conftest import ROOT, _scrubbed_environ, run_cli
from tests.fakes.faults import black_hole, refused
from tests.fakes.otlp_server import OtlpServer


def _popen(code: str, home: Path, extra_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    environ = _scrubbed_environ()
    environ[env.OPTEL_HOME] = str(home)
    environ["PYTHONPATH"] = str(ROOT / "src")
    environ.update(extra_env)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _names(server: OtlpServer) -> Counter[str]:
    return Counter(s.name for s in server.spans())


def _query(home: Path, sql: str, *args: object) -> int:
    db = sqlite3.connect(f"file:{home / 'spool.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute(sql, args).fetchone()[0])
    finally:
        db.close()


def _pending(home: Path) -> int:
    return _query(home, "SELECT count(*) FROM entries")


# -- six processes, one spool ------------------------------------------------------

PROCS, SPANS = 6, 150

RECORDER = """
import os, sys, time, optel
proc, go = sys.argv[1], sys.argv[2]
t = optel.init(app="multitool", allowed_attributes=["proc"])
deadline = time.monotonic() + 20
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.005)  # start together: the six workers contend for the spool
for i in range(N_SPANS):
    with t.tracer.start_as_current_span(f"p{proc}-{i}", attributes={"proc": proc}):
        pass
    if i % 25 == 24:
        time.sleep(0.03)  # let the workers spool and send while others record
""".replace("N_SPANS", str(SPANS))


def test_six_processes_share_one_home_every_record_once(home: Path) -> None:
    run_cli("opt-in", "--app", "multitool", home=home)
    go = home / "go"
    with OtlpServer() as server:
        extra = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            "OPTEL_FLUSH_INTERVAL_MS": "50",  # workers claim and ack all through the run
            # a long budget: the exit send finishes, so a duplicate could only
            # come from two senders sharing a row, which is what is tested here
            "OPTEL_EXIT_BUDGET_MS": "5000",
        }
        procs = [_popen(RECORDER, home, extra, str(k), str(go)) for k in range(PROCS)]
        time.sleep(0.3)
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert "Traceback" not in err and "optel:" not in err, err
        leftover = _pending(home)
        if leftover:  # an exit send cut short: the next flush takes the rest
            assert run_cli("flush", home=home, extra_env=extra).returncode == 0
        names = _names(server)
    expected = {f"p{k}-{i}" for k in range(PROCS) for i in range(SPANS)}
    assert set(names) == expected, sorted(expected - set(names))[:10]
    assert [n for n, c in names.items() if c > 1] == []
    assert _pending(home) == 0
    # they really went out from several processes, not one flush at the end (each
    # process has its own connection; a batch holds 512, so one sender may carry
    # another's records)
    assert server.connections >= 2 and len(server.accepted()) >= 2


# -- SIGKILL -----------------------------------------------------------------------

KILLED = """
import sys, time, optel
t = optel.init(app="killed")
for i in range(20):
    with t.tracer.start_as_current_span(f"k-{i}"):
        pass
t.flush(0)  # spooled: from here on the records are on disk
print("spooled", flush=True)
time.sleep(120)
"""


def _wait_for_line(p: subprocess.Popen[str], line: str) -> None:
    assert p.stdout is not None
    got = p.stdout.readline().strip()
    assert got == line, (got, p.stderr.read() if p.poll() is not None and p.stderr else "")


def _kill(p: subprocess.Popen[str]) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert p.returncode == -signal.SIGKILL


def test_records_spooled_before_a_sigkill_are_delivered_by_optel_flush(home: Path) -> None:
    run_cli("opt-in", "--app", "killed", home=home)
    with refused() as down:
        p = _popen(KILLED, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": down})
        _wait_for_line(p, "spooled")
        _kill(p)
    assert _pending(home) == 20
    with OtlpServer() as server:
        r = run_cli("flush", home=home, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
        assert r.returncode == 0, r.stdout + r.stderr
    assert _names(server) == Counter(f"k-{i}" for i in range(20))
    assert _pending(home) == 0


def _leased(home: Path) -> int:
    return _query(
        home,
        "SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL AND lease_until > ?",
        time.time(),
    )


def test_a_sender_killed_mid_send_loses_nothing(home: Path) -> None:
    """The worker holds a 60 s lease on its batch while a black hole keeps it
    waiting; SIGKILL leaves that lease behind. A later run of a different tool
    (or ``optel flush``) frees it at once because the owner process is gone."""
    run_cli("opt-in", "--app", "killed", home=home)
    with black_hole() as hole:
        # the worker's first send starts after one interval and waits up to one
        p = _popen(
            KILLED, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": hole, "OPTEL_FLUSH_INTERVAL_MS": "2000"}
        )
        _wait_for_line(p, "spooled")
        deadline = time.monotonic() + 15
        while _leased(home) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _leased(home) == 20  # mid-send: the whole batch is out on lease
        _kill(p)
    assert _leased(home) == 20  # the dead sender's lease is still recorded
    with OtlpServer() as server:
        r = run_cli("flush", home=home, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
        assert r.returncode == 0, r.stdout + r.stderr
    assert _names(server) == Counter(f"k-{i}" for i in range(20))
    assert _pending(home) == 0


# -- fork --------------------------------------------------------------------------

FORKER = """
import os, sys, threading, optel
t = optel.init(app="forker")
def workers():
    return sum(th.name == "optel-worker" and th.is_alive() for th in threading.enumerate())
with t.tracer.start_as_current_span("before-fork"):
    pass  # queued in the parent when it forks: the child must not send it too
pid = os.fork()  # from the main thread
if pid == 0:
    for i in range(5):
        with t.tracer.start_as_current_span(f"child-{i}"):
            pass
    print("child", workers(), flush=True)
    sys.exit(0)  # a normal exit: optel's exit hook runs in the child too
for i in range(5):
    with t.tracer.start_as_current_span(f"parent-{i}"):
        pass
_, status = os.waitpid(pid, 0)
print("parent", workers(), os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_forked_child_records_and_delivers_without_a_second_parent_worker(home: Path) -> None:
    run_cli("opt-in", "--app", "forker", home=home)
    with OtlpServer() as server:
        extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
        p = _popen(FORKER, home, extra)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "Traceback" not in err, err
        if _pending(home):
            run_cli("flush", home=home, extra_env=extra)
        names = _names(server)
    lines = sorted(out.split("\n"))[1:]
    assert lines == ["child 1", "parent 1 0"], out  # one worker each, none copied
    expected = ["before-fork"] + [f"{who}-{i}" for who in ("child", "parent") for i in range(5)]
    assert names == Counter(expected)
