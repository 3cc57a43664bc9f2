"""The report's DuckDB store reads only what the gateway appended, re-reads a
file that was replaced, leaves a line still being written for next time,
and gives the same answers as reading everything afresh. Also: optel's own
``local`` records as a source, and the hint when DuckDB is missing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optel.report import model
from optel.report.duck import DuckStore, StoreBusy
from tests.conftest import grant, run_cli, run_python

from . import expected
from .generate import APP, generate

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], int, list]:
    folder = tmp_path_factory.mktemp("store")
    gen = generate(folder / "gw", installs=40, days=20, seed=3, batch=64)
    lines = gen.logs.read_bytes().splitlines(keepends=True)
    assert len(lines) > 10
    return lines, gen.records, gen.events


def _records(lines: list[bytes]) -> int:
    return sum(
        len(rl["scopeLogs"][0]["logRecords"])
        for ln in lines
        for rl in json.loads(ln)["resourceLogs"]
    )


def test_store_reads_only_what_was_appended(source: tuple, tmp_path: Path) -> None:
    lines, total, events = source
    logs, store = tmp_path / "gw.logs.json", tmp_path / "store.duckdb"
    half = len(lines) // 2
    # the collector is in the middle of writing a line: it waits for next time
    logs.write_bytes(b"".join(lines[:half]) + lines[half][:100])
    s = DuckStore(store)
    first = s.ingest([logs])
    assert (first.files, first.records) == (1, _records(lines[:half]))
    assert s.ingest([logs]).files == 0  # nothing new: nothing read
    s.close()
    with open(logs, "ab") as f:
        f.write(lines[half][100:] + b"".join(lines[half + 1 :]))
    s = DuckStore(store)  # a later report, a new process's view of the same file
    second = s.ingest([logs])
    assert second.records == total - first.records and second.stored == total
    stored = model.build(s, APP, days=10)
    s.close()
    fresh = DuckStore(None)
    fresh.ingest([logs])
    again = model.build(fresh, APP, days=10)
    fresh.close()
    assert {k: v for k, v in stored.items() if k != "generated"} == {
        k: v for k, v in again.items() if k != "generated"
    }
    end = max(e.day for e in events)
    start = end.fromordinal(end.toordinal() - 9)
    assert stored["summary"] == expected.summary(events, APP, start, end)


def test_store_reads_a_replaced_or_truncated_file_again(source: tuple, tmp_path: Path) -> None:
    lines, _, _ = source
    logs, store = tmp_path / "gw.logs.json", tmp_path / "store.duckdb"
    logs.write_bytes(b"".join(lines))
    s = DuckStore(store)
    s.ingest([logs])
    # rotated: a new, shorter file under the same name (a new inode)
    logs.unlink()
    logs.write_bytes(b"".join(lines[:3]))
    got = s.ingest([logs])
    assert got.records == got.stored == _records(lines[:3])
    # truncated in place (same inode, smaller): read again too
    with open(logs, "r+b") as f:
        f.truncate(len(lines[0]))
    got = s.ingest([logs])
    assert got.stored == _records(lines[:1])
    s.close()


def test_a_store_in_use_is_refused_with_a_message(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    DuckStore(store).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(store)!r}); print('open', flush=True);"
            " sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreBusy):
            DuckStore(store)
    finally:
        holder.communicate("", timeout=30)


TOOL = """
import optel
t = optel.init(app="localtool", version="0.3.0")
for ok in (True, True, False):
    try:
        with t.track("convert"):
            if not ok:
                raise ValueError("bad input")
    except ValueError:
        pass
with t.track("export"):
    pass
t.shutdown()
"""


def test_local_records_of_a_state_folder(home: Path, tmp_path: Path) -> None:
    grant(home, "localtool")
    for _ in range(2):
        r = run_python(TOOL, home)
        assert r.returncode == 0, r.stderr
    got = run_cli("report", "--home", str(home), "--json", home=tmp_path / "other")
    assert got.returncode == 0, got.stderr
    r = json.loads(got.stdout)
    assert r["tool"] == "localtool"
    s = r["summary"]
    assert (s["active_installs"], s["runs"], s["commands"], s["commands_ok"]) == (1, 2, 8, 6)
    assert (s["failures"], s["installs_failing"]) == (2, 1)
    assert [(c["command"], c["calls"], c["ok"]) for c in r["commands"]] == [
        ("convert", 6, 4),
        ("export", 2, 2),
    ]
    (failure,) = r["failures"]
    assert (failure["exc_type"], failure["occurrences"]) == ("ValueError", 2)
    assert failure["location"].startswith("<string>:") or "<user-code>" in failure["location"]
    # without --home and without files, OPTEL_HOME's own records are read
    own = run_cli("report", "--json", home=home)
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["summary"] == s


def test_without_duckdb_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["duckdb"] = None  # as if not installed
        from optel.cli import main
        sys.exit(main(["report", {str(tmp_path)!r}]))
        """
    )
    r = run_python(code, tmp_path)
    assert r.returncode == 1
    assert (
        r.stderr.strip() == "optel report: optel report needs DuckDB: pip install 'optel[report]'"
    )
