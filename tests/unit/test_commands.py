"""Messages name the command the user types: a tool's own (``mytool telemetry
opt-out``) when it offers optel's commands, else ``optel``'s; author-only
commands stay off a tool's list."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import optel
from optel import cli, commands, consent
from optel.config import paths
from optel.consent.prompt import question_text


def test_without_a_tool_command_messages_name_optel() -> None:
    assert commands.command("opt-out", "mytool") == "optel opt-out --app mytool"
    assert commands.command("opt-out", "mytool", every_tool=True) == "optel opt-out"
    assert commands.command("opt-in") == "optel opt-in"


def test_a_registered_tool_command_is_named_for_its_app_only() -> None:
    commands.register("MyTool", "mytool  telemetry")
    assert commands.command("opt-out", "mytool") == "mytool telemetry opt-out"
    assert commands.command("opt-out", "mytool", every_tool=True) == (
        "mytool telemetry opt-out --global"
    )
    assert commands.command("opt-in", None, every_tool=True) == "mytool telemetry opt-in --global"
    assert commands.command("opt-out", "othertool") == "optel opt-out --app othertool"
    commands.register("othertool", "othertool telemetry")
    # two tools in one process: a message about every tool names optel itself
    assert commands.command("opt-in", None, every_tool=True) == "optel opt-in"


def test_notice_question_and_reasons_name_the_tool_command() -> None:
    before = consent.notice_text("mytool")
    assert "'optel opt-out --app mytool'" in before and "'optel opt-out'" in before
    commands.register("mytool", "mytool telemetry")
    notice = consent.notice_text("mytool")
    assert "'mytool telemetry opt-out'" in notice
    assert "'mytool telemetry opt-out --global'" in notice
    assert "'mytool telemetry show'" in notice and "'mytool telemetry describe'" in notice
    assert "optel" not in notice
    question = question_text("mytool", "opt-in", 10)
    assert "'mytool telemetry opt-in' / 'mytool telemetry opt-out'" in question
    assert "optel" not in question
    off = consent.decide("mytool", "opt-in", p=paths())
    assert "run 'mytool telemetry opt-in'" in off.reason
    consent.note_notice("mytool", 1, paths())  # opt-out: on once its notice reached a person
    on = consent.decide("mytool", "opt-out", p=paths())
    assert "'mytool telemetry opt-out' turns it off" in on.reason


class _Terminal:
    """stderr on a terminal: the opt-out notice counts only where a person sees it."""

    text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_init_telemetry_command_names_it_in_the_notice(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    t = optel.init(app="mytool", policy="opt-out", telemetry_command="mytool telemetry")
    assert "mytool telemetry opt-out" in t.reason
    assert "Turn it off with 'mytool telemetry opt-out'" in err.text
    with pytest.raises(ValueError, match="telemetry_command"):
        optel.init(app="mytool", telemetry_command=["mytool", "telemetry"])  # type: ignore[arg-type]
    optel.init(app="other", telemetry_command="")  # an unset variable: not set
    assert commands.prefix("other") is None


def _tool() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mytool")
    sub = parser.add_subparsers(dest="command")
    cli.mount(sub, app="mytool")
    return parser


def test_argparse_mount_lists_no_author_commands(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _tool()
    with pytest.raises(SystemExit):
        parser.parse_args(["telemetry", "--help"])
    listed = capsys.readouterr().out
    assert "opt-out" in listed and "settings" in listed
    assert "demo" not in listed and "ga4" not in listed
    for author_only in ("demo", "ga4"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["telemetry", author_only])
        assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    assert "demo" in capsys.readouterr().out  # optel's own command lists them


def test_argparse_mount_messages_name_the_tool(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _tool()
    args = parser.parse_args(["telemetry", "opt-in"])
    assert cli.handles(args) and cli.run(args) == 0
    assert "'mytool telemetry opt-out' withdraws it" in capsys.readouterr().out
    args = parser.parse_args(["telemetry", "opt-in", "--global"])
    assert cli.run(args) == 0
    assert "'mytool telemetry opt-out --global' withdraws it" in capsys.readouterr().out
    args = parser.parse_args(["telemetry"])  # alone: the help, not an error
    assert cli.handles(args) and cli.run(args) == 0
    assert "usage: mytool telemetry" in capsys.readouterr().out
    assert not cli.handles(parser.parse_args([]))


def test_optel_alone_shows_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: optel") and "opt-out" in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"optel {optel.__version__}"


def test_click_and_typer_mounts_refuse_wrong_arguments() -> None:
    import click
    import typer

    import optel.click
    import optel.typer

    with pytest.raises(TypeError, match="click.Group"):
        optel.click.mount(typer.Typer(), app="mytool")
    with pytest.raises(TypeError, match="typer.Typer"):
        optel.typer.mount(click.Group(), app="mytool")
    with pytest.raises(ValueError, match="policy"):
        optel.click.mount(click.Group(), app="mytool", policy="opt-maybe")
    with pytest.raises(ValueError, match="app"):
        optel.typer.mount(typer.Typer(), app="")
    assert commands.prefix("mytool") is None  # nothing registered by a refused call


def test_click_mount_runs_under_the_group_in_process(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import click

    import optel.click

    group = click.Group("mytool")
    optel.click.mount(group, app="mytool", prog="mytool telemetry")
    with pytest.raises(SystemExit) as exc:
        group.main(["telemetry", "opt-in"], prog_name="mytool")
    assert exc.value.code == 0
    assert "'mytool telemetry opt-out' withdraws it" in capsys.readouterr().out
    assert consent.decide("mytool", p=paths()).consent == consent.GRANTED


def test_an_unreadable_settings_file_names_the_tool_command(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optel import config

    home.mkdir(parents=True)
    (home / "settings.json").write_text("{not json")
    commands.register("mytool", "mytool telemetry")
    config.resolve()
    assert "run 'mytool telemetry settings reset'" in capsys.readouterr().err
