"""The settings file: what a write keeps, and a broken file is never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optel
from optel.config import paths, resolve


def test_a_write_keeps_keys_this_version_does_not_know(home: Path) -> None:
    home.mkdir()
    Path(paths().settings).write_text(
        json.dumps({"_schema": 3, "future_key": 5, "exit_budget_ms": 100})
    )
    optel.settings.update({"flush_interval_ms": 1000})
    doc = json.loads(Path(paths().settings).read_text())
    assert doc == {"_schema": 3, "future_key": 5, "exit_budget_ms": 100, "flush_interval_ms": 1000}
    del optel.settings["exit_budget_ms"]
    assert json.loads(Path(paths().settings).read_text())["future_key"] == 5
    assert resolve()["exit_budget_ms"] == 300  # back to the default


def test_a_broken_settings_file_is_moved_aside_not_overwritten(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    Path(paths().settings).write_text("{broken")
    assert resolve()["exit_budget_ms"] == 300  # unreadable: ignored, with a warning
    optel.settings.update(exit_budget_ms=200)
    aside = list(home.glob("settings.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{broken"
    assert resolve()["exit_budget_ms"] == 200
    assert "kept the unreadable settings file" in capsys.readouterr().err


def test_wrong_values_and_keys_raise_with_a_suggestion(home: Path) -> None:
    with pytest.raises(ValueError, match="did you mean 'exit_budget_ms'"):
        optel.settings.update(exit_budgt_ms=5)
    with pytest.raises(ValueError):
        optel.settings["exit_budget_ms"] = -1
    assert not home.exists()  # validated before anything was written
