"""``optel status`` lists the tools with records waiting from counts SQLite
makes (Spool.apps), not by reading every waiting row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from optel import cli, config, env
from optel.spool import NewRecord, Spool


def _add(spool: Spool, app: str, n: int, policy: str = "opt-in", dests: int = 1) -> None:
    body = '{"signal":"event","name":"used"}'
    names = ("otlp", "ga4")[:dests]
    spool.add([NewRecord(app, policy, "event", names, body, time.time()) for _ in range(n)])


def test_apps_counts_deliveries_per_tool_whatever_the_case_of_its_name(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.sqlite3"))
    _add(spool, "Tool", 3)
    _add(spool, "TOOL", 2, policy="opt-out", dests=2)  # the newest, for two destinations
    _add(spool, "other", 1)
    spool.ack(spool.claim("otlp", "1-a", 1, 60))  # one of Tool's sent: in the sent log
    _add(spool, "gone", 1)
    spool.ack([r for r in spool.claim("otlp", "1-a", 100, 60) if r.app == "gone"])
    assert spool.apps() == {"tool": ("opt-out", 6), "other": ("opt-in", 1), "gone": (None, 0)}
    assert sum(n for _, n in spool.apps().values()) == spool.waiting()
    spool.close()


def test_status_lists_waiting_tools_without_reading_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env.OPTEL_HOME, str(tmp_path))
    spool = Spool(config.paths().spool)
    _add(spool, "MyTool", 40, dests=2)
    _add(spool, "mytool", 10, policy="opt-out")
    spool.close()

    def no(*args: object, **kw: object) -> None:
        raise AssertionError("status read every waiting row")

    monkeypatch.setattr(Spool, "pending", no)
    monkeypatch.setattr(Spool, "sent_log", no)
    data = cli.status_data(None)
    (tool,) = [t for t in data["tools"] if t["app"] == "mytool"]
    assert tool["pending"] == 90 and tool["policy"] == "opt-out"
    assert data["pending"] == 90
    assert cli.status_data("MYTOOL")["pending"] == 90
