"""Ctrl-C while a tool's exit waits on a slow collector: no traceback from optel.

Real processes and a real SIGINT: the tool ends, optel's exit sends to a
collector that accepts the connection and never answers (within an 8 s
budget), and the signal arrives once that connection is open, so it lands
in optel's exit wait. The host's own Ctrl-C stays the host's.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ROOT, _scrubbed_environ, grant, run_cli
from tests.fakes.serve import tcp_server

TOOL = """
import sys, time, optel
t = optel.init(app="tool")
t.event("used")
print("ending", flush=True)
if sys.argv[1] == "busy":
    time.sleep(60)  # the host's own work, interrupted by the user
"""

PLAIN = """
import sys, time
print("ending", flush=True)
if sys.argv[1] == "busy":
    time.sleep(60)
"""


@pytest.fixture
def black_hole() -> Iterator[tuple[str, threading.Event]]:
    """A collector that accepts and never answers; the event is set at the first connection."""
    held: list[socket.socket] = []
    connected = threading.Event()

    def hold(conn: socket.socket) -> None:
        held.append(conn)
        connected.set()

    with tcp_server(hold) as (host, port):
        yield f"http://{host}:{port}", connected
    for conn in held:
        conn.close()


def _start(
    code: str, home: Path, arg: str, endpoint: str, budget_ms: int = 8000
) -> subprocess.Popen[str]:
    environ = _scrubbed_environ()
    environ.update(OPTEL_HOME=str(home), PYTHONPATH=str(ROOT / "src"),
                   OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OPTEL_EXIT_BUDGET_MS=str(budget_ms))  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), arg],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline() == "ending\n"
    return p


def test_ctrl_c_during_the_exit_wait_ends_it_quietly(
    home: Path, black_hole: tuple[str, threading.Event]
) -> None:
    url, connected = black_hole
    grant(home)
    p = _start(TOOL, home, "done", url)
    assert connected.wait(30), "the exit never sent"  # optel's exit is waiting on it now
    time.sleep(0.3)
    sent_at = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    took = time.monotonic() - sent_at
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert p.returncode == 0  # the tool's own exit status, as without the Ctrl-C
    assert took < 5.0, f"exit went on for {took:.1f} s after Ctrl-C (budget 8 s)"
    status = run_cli("status", "--json", "--app", "tool", home=home)
    assert '"pending": 0' not in status.stdout  # not sent: kept for the next run


def test_the_hosts_own_ctrl_c_is_unchanged(
    home: Path, black_hole: tuple[str, threading.Event]
) -> None:
    url, _ = black_hole
    grant(home)
    results = []
    for code in (PLAIN, TOOL):
        p = _start(code, home, "busy", url, budget_ms=500)
        time.sleep(0.5)  # in the host's sleep
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        results.append((p.returncode, err))
    (plain_rc, plain_err), (tool_rc, tool_err) = results
    assert tool_rc == plain_rc == -signal.SIGINT  # Python ends by SIGINT, with and without optel
    for err in (plain_err, tool_err):  # the host's traceback, from the host's line
        assert err.startswith("Traceback") and err.rstrip().endswith("KeyboardInterrupt"), err
        assert err.count('File "') == 1 and 'File "<string>", line' in err, err
    assert len(tool_err.splitlines()) == len(plain_err.splitlines()), tool_err
