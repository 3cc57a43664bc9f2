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
    off = _status(capsys, prog="mytool telemetry", app="mytool", policy="opt-out")
    assert off["enabled"] is False and "notice has not reached a person" in off["reason"]
    consent.note_notice("mytool", 1, paths())
    on = _status(capsys, prog="mytool telemetry", app="mytool", policy="opt-out")
    assert on["enabled"] is True and "opt-out policy" in on["reason"]
    # the notice tells optel the tool's policy: no --policy needed to be truthful
    plain = _status(capsys, "--app", "mytool")
    assert (plain["enabled"], plain["policy"], plain["policy_known"]) == (True, "opt-out", "seen")
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


# -- what the commands say, and usage errors ----------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["opt-in", "--app", ""], "--app: a tool name must"),
        (["opt-out", "--app", "My Tool!"], "--app: a tool name must"),
        (["opt-in", "--app", "x", "--global"], "--app and --global contradict"),
        (["status", "--app", "-x"], "--app"),
        (["status", "--app", "x" * 65], "--app: a tool name must"),
    ],
)
def test_app_misuse_is_a_usage_error_and_records_nothing(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not home.exists()  # nothing recorded, not even a global decision


def test_a_preset_app_and_global_do_not_contradict(home: Path) -> None:
    assert cli.main(["opt-in", "--global"], prog="t telemetry", app="mytool") == 0
    assert consent.decide("other", p=paths()).enabled  # the global decision


def test_an_app_name_in_another_case_is_the_same_tool(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["opt-in", "--app", "MyTool"]) == 0
    assert consent.decide("mytool", p=paths()).enabled
    out = capsys.readouterr().out
    assert "no tool named MyTool has used optel on this machine yet" in out
    assert cli.main(["opt-out", "--app", "MYTOOL"]) == 0
    assert not consent.decide("MyTool", p=paths()).enabled


def test_status_lists_the_global_decision_every_tool_decision_and_tools_seen(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = paths()
    consent.record(consent.GRANTED, "alpha", p=p)
    consent.record(consent.DENIED, "beta", p=p)
    consent.note_notice("gamma", 2, p)  # an opt-out tool whose notice was shown
    consent.record(consent.GRANTED, p=p)
    data = _status(capsys)
    assert data["global"]["decision"] == "granted"
    assert {k: v["decision"] for k, v in data["decisions"].items()} == {
        "alpha": "granted",
        "beta": "denied",
    }
    tools = {t["app"]: t for t in data["tools"]}
    assert set(tools) == {"alpha", "beta", "gamma"}
    assert (tools["gamma"]["policy"], tools["gamma"]["notice"]["version"]) == ("opt-out", 2)
    assert [tools[a]["enabled"] for a in ("alpha", "beta", "gamma")] == [True, False, True]
    capsys.readouterr()
    assert cli.main(["status"]) == 0
    text = capsys.readouterr().out
    assert "global decision: granted" in text and "per-tool decisions:" in text
    assert "gamma" in text and "v2 shown" in text and "beta" in text


def test_kill_switch_refuses_ga4_validate_and_flush(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTEL_GA4_MEASUREMENT_ID", "G-X")
    monkeypatch.setenv("OPTEL_GA4_API_SECRET", "s3cret")
    monkeypatch.setenv("OPTEL_GA4_ENDPOINT", "http://127.0.0.1:9")  # never reached
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    for argv in (["ga4", "validate"], ["ga4", "validate", "--pending"], ["flush"]):
        capsys.readouterr()
        assert cli.main(argv) == 1
        assert "nothing sent: DO_NOT_TRACK is set" in capsys.readouterr().err


def test_a_closed_pipe_ends_show_quietly(home: Path) -> None:
    """`optel show | head`: no traceback, no 'Broken pipe' line."""
    import subprocess
    import sys

    from tests.conftest import ROOT, _scrubbed_environ

    consent.record(consent.GRANTED, "mytool", p=paths())
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    code = "import optel\nt = optel.init(app='mytool')\nfor i in range(300): t.event('e')\n"
    subprocess.run([sys.executable, "-c", code], env=environ, check=True, timeout=60)
    r = subprocess.run(
        f"'{sys.executable}' -m optel show | head -1; echo rc=${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", env=environ, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.stderr == "", r.stderr
    assert r.stdout.splitlines()[-1] in ("rc=141", "rc=0")  # 0: everything fit the pipe
