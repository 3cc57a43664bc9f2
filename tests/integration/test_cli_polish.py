"""The command line a person expects, run as a person runs it (real processes,
the terminal ones on a pseudo-terminal): settings as an aligned table that
names the key at fault, status without nested parentheses, show that opens
with the true total and its counts, flush with progress, the endpoint in its
errors and sane --timeout values, ga4 validate that says it could not
connect."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import pytest

from optel import config
from tests.conftest import ROOT, _scrubbed_environ, run_cli, run_on_terminal, run_python
from tests.fakes.otlp_server import OtlpServer


def _free_port() -> int:
    """A loopback port nobody listens on (taken, then given back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _on_terminal(args: list[str], home: Path, **extra: str) -> tuple[int, str]:
    """``python -m optel ARGS`` on a pseudo-terminal: its exit status and output."""
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    environ.update(extra)
    return run_on_terminal([sys.executable, "-m", "optel", *args], environ, timeout=120)


def _backlog(home: Path, n: int, **extra: str) -> None:
    """``n`` events of the tool 'bulk' waiting in the spool (consent granted)."""
    assert run_cli("opt-in", "--app", "bulk", home=home).returncode == 0
    r = run_python(
        f"""
        import optel
        t = optel.init(app="bulk", allowed_attributes=["step"], exit_budget_ms=5000,
                       max_events_per_minute=100000, max_events_per_run=100000)
        for i in range({n}):
            t.event("step_done" if i % 3 else "step_started", step="s")
        """,
        home,
        extra,
    )
    assert r.returncode == 0, r.stderr


# -- settings ----------------------------------------------------------------------------


def test_settings_help_lists_every_key(home: Path) -> None:
    r = run_cli("settings", "--help", home=home)
    assert r.returncode == 0
    for name, setting in config.SETTINGS.items():
        if not setting.signal:
            assert f"  {name}: " in r.stdout, name
            assert setting.env in r.stdout, setting.env
    assert "KEY= unsets" in r.stdout and "otlp_<signal>_<setting>" in r.stdout


def test_settings_is_an_aligned_table_and_names_the_key_at_fault(home: Path) -> None:
    r = run_cli("settings", home=home)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line][:-1]  # the last: how to change
    header = lines[0]
    assert header.split() == ["KEY", "VALUE", "FROM", "MEANING"]
    columns = [header.index(word) for word in ("VALUE", "FROM", "MEANING")]
    rows = {}
    for line in lines[1:]:
        key = line.split()[0]
        rows[key] = line
        for column in columns:  # every value starts in its column
            assert line[column - 2 : column] == "  " and line[column] != " ", line
    assert rows["otlp_endpoint"].split()[1:3] == ["-", "default"]  # unset: '-'
    assert rows["exit_budget_ms"].split()[1:3] == ["300", "default"]

    r = run_cli("settings", "exit_budget_ms=500", "destinations=otlp", home=home)
    assert r.returncode == 0, r.stderr
    assert "set exit_budget_ms: now 500, from settings" in r.stdout
    r = run_cli("settings", "exit_budget_ms=", home=home)  # KEY= unsets that key only
    assert r.returncode == 0 and "unset exit_budget_ms: now 300, from default" in r.stdout
    stored = json.loads((home / "settings.json").read_text())
    assert "exit_budget_ms" not in stored and stored["destinations"] == ["otlp"]
    r = run_cli("settings", "destinations=", home=home, extra_env={"OPTEL_DESTINATIONS": "ga4"})
    assert "unset destinations: now ga4, from environment" in r.stdout
    assert "OPTEL_DESTINATIONS in the environment wins" in r.stdout
    stored = json.loads((home / "settings.json").read_text())
    assert "destinations" not in stored

    for args, says in (
        (["spool_max_records=lots"], "settings: spool_max_records: expected a whole number"),
        (["exit_budget_ms=-1"], "settings: exit_budget_ms:"),
        (["exit_budgt_ms=1"], "unknown setting 'exit_budgt_ms' (did you mean 'exit_budget_ms'?)"),
        (["destinations"], "expected KEY=VALUE, got 'destinations'"),
    ):
        r = run_cli("settings", *args, home=home)
        assert r.returncode == 2 and says in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1  # one line
    assert json.loads((home / "settings.json").read_text()) == stored  # refused: unchanged


# -- status --------------------------------------------------------------------------------


def _depth(line: str) -> int:
    deepest = depth = 0
    for ch in line:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    return deepest


@pytest.mark.parametrize(
    "setup",
    [
        "nothing",
        "granted",
        "global refusal",
        "opt-out tool never shown its notice",
        "CI",
        "broken consent file",
    ],
)
def test_status_lines_have_no_nested_parentheses(home: Path, setup: str) -> None:
    extra: dict[str, str] = {}
    if setup == "granted":
        run_cli("opt-in", "--app", "mytool", home=home)
    elif setup == "global refusal":
        run_cli("opt-in", "--app", "mytool", home=home)
        run_cli("opt-out", home=home)
    elif setup == "opt-out tool never shown its notice":
        run_python("import optel; optel.init(app='mytool', policy='opt-out')", home)
        run_cli("opt-in", "--app", "other", home=home)
    elif setup == "CI":
        extra = {"CI": "true"}
    elif setup == "broken consent file":
        home.mkdir(mode=0o700)
        (home / "consent.json").write_text("{not json")
    for args in (["status"], ["status", "--app", "mytool"], ["status", "--app", "mytool",
                                                            "--policy", "opt-out"]):  # fmt: skip
        r = run_cli(*args, home=home, extra_env=extra)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert re.match(r"telemetry for .*: (ON|OFF)$", lines[0]), lines[0]
        assert lines[1].startswith("why:          ") and not lines[1].endswith(")" * 2)
        for line in lines:
            assert _depth(line) <= 1, line


# -- show ----------------------------------------------------------------------------------


def test_show_opens_with_the_true_total_and_its_counts(home: Path) -> None:
    _backlog(home, 250)  # more than the 200 payloads show prints at most
    r = run_cli("show", home=home)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("250 record(s) waiting to be sent; spool: ")
    assert "by tool:        bulk 250" in lines
    assert "by signal:      event 250" in lines
    assert "by destination: local 250" in lines
    table = {tuple(line.split()[:4]): line.split()[4] for line in lines if line.startswith("bulk")}
    assert table == {
        ("bulk", "event", "step_done", "local"): "166",
        ("bulk", "event", "step_started", "local"): "84",
    }
    assert "{" not in r.stdout  # no payload without --full
    assert "--full" in lines[-1]

    r = run_cli("show", "--full", "--limit", "3", home=home)
    assert r.stdout.startswith("250 record(s) waiting")
    assert r.stdout.count('"name": "step_') == 3
    assert "(the first 3 of 250; --limit N shows more)" in r.stdout
    rows = json.loads(run_cli("show", "--json", "--limit", "3", home=home).stdout)
    assert len(rows) == 3 and rows[0]["payload"]["name"] == "step_started"
    r = run_cli("show", "--limit", "0", home=home)
    assert r.returncode == 2 and "--limit: must be at least 1" in r.stderr


# -- flush ---------------------------------------------------------------------------------


def test_flush_shows_progress_on_a_terminal_and_clears_the_last_error(home: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    _backlog(home, 600, OPTEL_DESTINATIONS="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=dead)

    # nobody listens: the error names where it tried, and the status keeps it
    r = run_cli("flush", "--timeout", "10", home=home,
                extra_env={"OPTEL_DESTINATIONS": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": dead})  # fmt: skip
    assert r.returncode == 1
    assert re.search(rf"  otlp at {dead}/v1/\w+.*: connection_error", r.stdout), r.stdout
    assert "sending:" not in r.stderr  # not a terminal: no progress line
    assert "last error:" in run_cli("status", home=home).stdout

    with OtlpServer() as collector:
        code, out = _on_terminal(
            ["flush"], home, OPTEL_DESTINATIONS="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=collector.url
        )
        assert code == 0, out
        assert len(collector.requests) >= 2  # in steps
    steps = re.findall(r"sending: ([\d,]+) of 600 \(\d+%\)", out)
    assert len(steps) >= 2 and steps[-1] == "600", out
    assert "sent 600, retry later 0, dropped 0, held back 0; 0 waiting" in out
    status = run_cli("status", home=home)
    assert "last error:" not in status.stdout  # the success made it history


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "abc", "86401", ""])
def test_flush_refuses_a_timeout_that_makes_no_sense(home: Path, value: str) -> None:
    r = run_cli("flush", "--timeout", value, home=home)
    assert r.returncode == 2
    assert "argument --timeout:" in r.stderr and r.stderr.count("\n") == 1


# -- ga4 validate ------------------------------------------------------------------------------


def test_ga4_validate_says_it_could_not_connect(home: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    r = run_cli(
        "ga4", "validate", home=home,
        extra_env={"OPTEL_GA4_MEASUREMENT_ID": "G-1", "OPTEL_GA4_API_SECRET": "s",
                   "OPTEL_GA4_ENDPOINT": dead},
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stdout.startswith(
        f"nothing validated: could not connect to GA4's validation server at {dead}/debug/mp/collect"
    ), r.stdout
    assert "validated 0" not in r.stdout and "s\n" not in r.stdout.split("at ")[-1]
