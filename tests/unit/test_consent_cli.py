"""The consent commands, and a tool offering them under its own name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from optel import cli, consent
from optel.config import paths


def _status(capsys: pytest.CaptureFixture[str], *argv: str, **kw: str) -> dict:
    capsys.readouterr()
    assert cli.main(["status", "--json", *argv], **kw) == 0
    return json.loads(capsys.readouterr().out)


def test_branded_main_presets_the_app_and_policy(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _status(capsys, prog="mytool telemetry", app="mytool")["app"] == "mytool"
    on = _status(capsys, prog="mytool telemetry", app="mytool", policy="opt-out")
    assert on["enabled"] is True and "opt-out policy" in on["reason"]
    assert cli.main(["opt-out"], prog="mytool telemetry", app="mytool") == 0
    doc = json.loads(Path(paths().consent).read_text())
    assert doc["apps"]["mytool"]["decision"] == "denied" and doc["global"] is None
    assert cli.main(["opt-in", "--global"], prog="mytool telemetry", app="mytool") == 0
    doc = json.loads(Path(paths().consent).read_text())
    assert doc["global"]["decision"] == "granted"
    mine = _status(capsys, prog="mytool telemetry", app="mytool")
    assert (mine["consent"], mine["scope"], mine["source"]) == ("denied", "app", "cli")
    assert _status(capsys, "--global", app="mytool")["enabled"] is True


def test_branded_usage_error_names_the_tool(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["opt-maybe"], prog="mytool telemetry", app="mytool")
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("mytool telemetry: ")


def test_mount_adds_the_commands_to_a_tools_argparse(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="mytool")
    sub = parser.add_subparsers(dest="command")
    convert = sub.add_parser("convert")
    convert.add_argument("model")
    cli.mount(sub, app="mytool", policy="opt-in")

    args = parser.parse_args(["convert", "m.onnx"])
    assert not cli.handles(args)  # the tool's own command stays the tool's
    args = parser.parse_args(["telemetry", "opt-in"])
    assert cli.handles(args)
    assert cli.run(args) == 0
    assert consent.decide("mytool", p=paths()).consent == consent.GRANTED
    assert consent.decide("other", p=paths()).consent == consent.UNSET  # per tool, not global
    capsys.readouterr()
    assert cli.run(parser.parse_args(["telemetry", "status", "--json"])) == 0
    assert json.loads(capsys.readouterr().out)["app"] == "mytool"
    with pytest.raises(ValueError):
        cli.mount(sub, "telemetry2", app="mytool", policy="sometimes")


def test_status_explains_a_corrupt_record_and_lists_it_once_kept_aside(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    Path(paths().consent).write_text("{oops")
    data = _status(capsys, "--app", "mytool")
    assert data["enabled"] is False and "consent.json" in data["problem"]
    capsys.readouterr()
    assert cli.main(["status", "--app", "mytool"]) == 0
    assert "problem:" in capsys.readouterr().out
    assert cli.main(["opt-out"]) == 0
    data = _status(capsys)
    assert data["problem"] is None and len(data["kept_aside"]) == 1
    assert Path(data["kept_aside"][0]).read_text() == "{oops"  # the user's file, kept as it was


def test_opt_out_rotates_the_id_and_empties_the_spool(home: Path) -> None:
    from optel import identity

    assert cli.main(["opt-in"]) == 0
    first = identity.client_id(paths(), create=False)
    assert identity.is_random_id(first)
    assert cli.main(["opt-out"]) == 0
    assert identity.client_id(paths(), create=False) is None
    assert cli.main(["opt-in"]) == 0
    assert identity.client_id(paths(), create=False) not in (None, first)


def test_a_hardware_derived_id_is_never_used(home: Path) -> None:
    import uuid

    from optel import _fs, identity

    hw = str(uuid.uuid1())  # MAC address and time: exactly what must not be sent
    _fs.write_json_atomic(paths().identity, {"schema": 1, "client_id": hw})
    assert identity.client_id(paths(), create=False) is None
    new = identity.client_id(paths())
    assert new != hw and uuid.UUID(new).version == 4


def test_session_ids_differ_between_processes_started_together(home: Path) -> None:
    from tests.conftest import run_python

    code = "from optel import identity; print(identity.session_id())"
    ids = {run_python(code, home).stdout.strip() for _ in range(3)}
    assert len(ids) == 3 and all(i.isdigit() for i in ids)
