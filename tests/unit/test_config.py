"""Settings (optel.config): the precedence written in its docstring, validation,
suggestions for mistyped keys, and ``optel.settings``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import optel
from optel import cli, config, env


def store(home: Path, **values: object) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps(values))


def test_docstring_states_the_precedence() -> None:
    doc = config.__doc__ or ""
    assert "defaults  <  settings file  <  environment  <  init() arguments" in doc
    assert "OPTEL_DESTINATIONS" in doc


def test_defaults_then_file_then_environment_then_init_arguments(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.resolve()["exit_budget_ms"] == 300
    assert config.resolve().sources["exit_budget_ms"] == "default"
    store(home, exit_budget_ms=400)
    cfg = config.resolve()
    assert (cfg["exit_budget_ms"], cfg.sources["exit_budget_ms"]) == (400, "file")
    monkeypatch.setenv(env.OPTEL_EXIT_BUDGET_MS, "500")
    cfg = config.resolve()
    assert (cfg["exit_budget_ms"], cfg.sources["exit_budget_ms"]) == (500, "env")
    cfg = config.resolve({"exit_budget_ms": 600})
    assert (cfg["exit_budget_ms"], cfg.sources["exit_budget_ms"]) == (600, "init")
    cfg = config.resolve({"exit_budget_ms": None})  # None: the tool did not choose
    assert cfg["exit_budget_ms"] == 500


def test_optel_destinations_overrides_the_tools_choice(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(home, destinations="ga4")
    assert config.resolve({"destinations": "local"})["destinations"] == ("local",)
    monkeypatch.setenv(env.OPTEL_DESTINATIONS, "otlp")
    cfg = config.resolve({"destinations": "local"})
    assert (cfg["destinations"], cfg.sources["destinations"]) == (("otlp",), "env")
    monkeypatch.setenv(env.OPTEL_DESTINATIONS, "none")
    assert config.resolve({"destinations": "ga4"}).destinations() == ()


def test_bad_file_and_environment_values_are_skipped_with_a_warning(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store(home, exit_budget_ms="lots", flush_interval_ms=1000)
    monkeypatch.setenv(env.OPTEL_DEBUG, "maybe")
    cfg = config.resolve()
    assert cfg["exit_budget_ms"] == 300 and cfg["flush_interval_ms"] == 1000
    assert cfg["debug"] is False
    err = capsys.readouterr().err
    assert "exit_budget_ms" in err and "OPTEL_DEBUG" in err


def test_bad_init_values_raise_at_once(home: Path) -> None:
    with pytest.raises(ValueError):
        config.resolve({"exit_budget_ms": -1})
    with pytest.raises(ValueError):
        optel.init(app="mytool", destinations="carrier-pigeon")


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("exit_budget", "exit_budget_ms"),
        ("destination", "destinations"),
        ("otlp_endpont", "otlp_endpoint"),
    ],
)
def test_a_mistyped_key_gets_a_suggestion(home: Path, typo: str, meant: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{meant}'"):
        optel.settings.update({typo: "1"})
    assert not home.exists()


def test_settings_mapping_update_and_reset(home: Path) -> None:
    optel.settings.update({"exit_budget_ms": 250, "destinations": "otlp,local"})
    assert optel.settings["exit_budget_ms"] == 250
    assert optel.settings.stored()["destinations"] == ("otlp", "local")
    with pytest.raises(ValueError):
        optel.settings.update({"exit_budget_ms": 1, "spool_max_records": "x"})
    assert optel.settings["exit_budget_ms"] == 250  # all or nothing
    optel.settings.reset()
    assert optel.settings["exit_budget_ms"] == 300 and optel.settings.stored() == {}
    assert "ga4_region" in optel.settings


def test_cli_settings_set_show_and_reset(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["settings", "exit_budget_ms=700"]) == 0
    assert "set exit_budget_ms: now 700, from settings" in capsys.readouterr().out
    assert cli.main(["settings"]) == 0
    assert re.search(r"^exit_budget_ms +700 +settings +most", capsys.readouterr().out, re.M)
    assert cli.main(["settings", "exit_budgt_ms=1"]) == 2
    assert "did you mean 'exit_budget_ms'" in capsys.readouterr().err
    assert cli.main(["settings", "reset"]) == 0
    assert config.resolve()["exit_budget_ms"] == 300
