"""A full disk and a read-only disk, for real: OPTEL_HOME on a tiny tmpfs.

Needs ``mount`` (root or CAP_SYS_ADMIN, as in the project's container);
skipped, saying so, where it is not permitted. Root ignores file modes, so
a read-only *mount* is the honest way to get a read-only state folder.

Either way the tool's run is unaffected (exit 0, no traceback), optel says
so in one line, and this run's records still reach the collector from the
in-memory spool within the exit budget.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from optel import testing
from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

TOOL = """
import optel
t = optel.init(app="disktool", allowed_attributes=["blob"])
for i in range(50):
    with t.tracer.start_as_current_span(f"d-{i}", attributes={"blob": "x" * 2000}):
        pass
print("done", flush=True)
"""


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    r = _mount("-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(where))
    if r.returncode != 0:
        pytest.skip(f"mount not permitted here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _fill(folder: Path) -> None:
    """Write until the file system says it is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


def _run(home: Path, server: OtlpServer) -> subprocess.CompletedProcess[str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "5000"}
    r = run_python(TOOL, home, env)
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def _optel_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("optel:")]


def test_a_full_disk_is_survived_and_this_runs_records_still_go_out(disk: Path) -> None:
    home = disk / "optel"
    assert run_cli("opt-in", "--app", "disktool", home=home).returncode == 0
    with OtlpServer() as server:
        _run(home, server)  # a first run creates the spool while there is room
        before = len(server.spans())
        _fill(disk)
        r = _run(home, server)
        names = [s.name for s in server.spans()][before:]
    lines = _optel_lines(r.stderr)
    assert len(lines) == 1 and "cannot be written" in lines[0], r.stderr
    assert sorted(names) == sorted(f"d-{i}" for i in range(50))


def test_a_read_only_state_folder_is_survived(disk: Path) -> None:
    home = disk / "optel"
    assert run_cli("opt-in", "--app", "disktool", home=home).returncode == 0
    with OtlpServer() as server:
        _run(home, server)
        before = len(server.spans())
        r = _mount("-o", "remount,ro", str(disk))
        if r.returncode != 0:
            pytest.skip(f"remount read-only not permitted: {r.stderr.strip()}")
        with pytest.raises(OSError):
            (home / "probe").write_text("x")  # really read-only, even for root
        r = _run(home, server)
        names = [s.name for s in server.spans()][before:]
    lines = _optel_lines(r.stderr)
    assert len(lines) == 1 and "cannot be written" in lines[0], r.stderr
    assert sorted(names) == sorted(f"d-{i}" for i in range(50))
    assert os.path.exists(home / "spool.sqlite3")  # the earlier file left as it was


def test_with_the_disk_full_and_no_collector_the_warning_says_what_is_lost(disk: Path) -> None:
    # it said "sends them before it exits" whether or not anything could be sent
    home = disk / "optel"
    assert run_cli("opt-in", "--app", "disktool", home=home).returncode == 0
    with OtlpServer() as server:
        _run(home, server)  # the spool exists, and holds nothing
    _fill(disk)
    r = run_python(TOOL, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr
    (line,) = _optel_lines(r.stderr)
    assert "cannot be written" in line, line
    assert line.endswith(
        "sends them while it runs and as it exits; what is not sent by then is lost"
    )
    # and so it is: nothing of that run waits for a later one
    assert testing.pending(home) == []
    assert "last error:   spool" in run_cli("status", home=home).stdout
