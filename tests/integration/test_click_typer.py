"""A real Click tool and a real Typer tool, run as their users run them, with
optel's commands under the tool's own name (``mytool telemetry ...``) and
optel's messages naming the tool's commands, not ``optel``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, _scrubbed_environ, run_on_terminal

CLICK_TOOL = """
    import click
    import optel
    import optel.click

    # init runs before mount here, so it is told the command itself
    telemetry = optel.init(
        app="clicktool", version="1.0", policy="opt-out", telemetry_command="clicktool telemetry"
    )


    @click.group()
    def cli():
        "A sample Click tool."


    @cli.command()
    @click.argument("path")
    @click.option("--framework", default="onnx")
    @click.option("--dry-run", is_flag=True)
    @telemetry.track("convert", params=["framework"])
    def convert(path, framework, dry_run):
        if dry_run:
            click.echo("nothing to do")
            click.get_current_context().exit(0)  # a normal exit: a success
        click.echo(f"converted {path} to {framework}")


    optel.click.mount(cli, app="clicktool", policy="opt-out")

    if __name__ == "__main__":
        cli()
"""

TYPER_TOOL = """
    import typer
    import optel
    import optel.typer

    app = typer.Typer(help="A sample Typer tool.")
    optel.typer.mount(app, app="typertool", policy="opt-out")  # before init: it names the command
    telemetry = optel.init(app="typertool", version="1.0", policy="opt-out")


    @app.command()
    @telemetry.track("convert", params=["framework"])
    def convert(path: str, framework: str = "onnx", dry_run: bool = False):
        if dry_run:
            typer.echo("nothing to do")
            raise typer.Exit(0)  # a normal exit: a success
        typer.echo(f"converted {path} to {framework}")


    if __name__ == "__main__":
        app()
"""


class Tool:
    """A tool script named like its command (``clicktool``), run by path."""

    def __init__(self, name: str, source: str, folder: Path, home: Path):
        self.name = name
        self.path = folder / name
        self.path.write_text(textwrap.dedent(source))
        self.home = home

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        environ = _scrubbed_environ()
        environ.update(OPTEL_HOME=str(self.home), PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
        return subprocess.run(
            [sys.executable, str(self.path), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def on_terminal(self, *args: str) -> str:
        """Run it on a pseudo-terminal (where an opt-out notice reaches a person); its output."""
        environ = _scrubbed_environ()
        environ.update(OPTEL_HOME=str(self.home), PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
        code, out = run_on_terminal([sys.executable, str(self.path), *args], environ)
        assert code == 0, out
        return out

    def consent(self) -> dict:
        return json.loads((self.home / "consent.json").read_text())


@pytest.fixture(params=["click", "typer"])
def tool(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Tool:
    pytest.importorskip(request.param)
    source = CLICK_TOOL if request.param == "click" else TYPER_TOOL
    return Tool(f"{request.param}tool", source, tmp_path, home)


def test_the_telemetry_commands_work_under_the_tool_name(tool: Tool) -> None:
    me = f"{tool.name} telemetry"

    # opt-out policy: the first run's notice (on a terminal, where a person sees
    # it) names the tool's own commands
    out = tool.on_terminal("convert", "model.onnx")
    assert "converted model.onnx to onnx" in out
    assert f"Turn it off with '{me} opt-out'" in out, out
    assert f"'{me} opt-out --global'" in out and "optel opt-out" not in out

    r = tool("--help")
    assert r.returncode == 0 and "telemetry" in r.stdout, r.stdout + r.stderr
    r = tool("telemetry", "--help")
    assert r.returncode == 0, r.stderr
    assert f"usage: {me}" in r.stdout
    for command in ("status", "opt-in", "opt-out", "show", "flush", "settings"):
        assert command in r.stdout
    assert "demo" not in r.stdout and "ga4" not in r.stdout  # author-only

    r = tool("telemetry", "status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"telemetry for {tool.name}: ON")
    assert f"'{me} opt-out' turns it off" in r.stdout
    status = json.loads(tool("telemetry", "status", "--json").stdout)
    assert (status["app"], status["consent"], status["enabled"]) == (tool.name, "unset", True)

    r = tool("telemetry", "opt-in")
    assert r.returncode == 0, r.stderr
    assert f"consent granted for {tool.name}; '{me} opt-out' withdraws it" in r.stdout
    assert tool.consent()["apps"][tool.name]["decision"] == "granted"

    assert tool("convert", "model.onnx", "--framework", "tflite").returncode == 0
    r = tool("convert", "model.onnx", "--dry-run")
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stderr
    r = tool("telemetry", "show", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    calls = [
        row["payload"]["attributes"]
        for row in rows
        if row["app"] == tool.name and row["payload"].get("name") == "convert"
    ]
    assert [(c["framework"], c["optel.success"]) for c in calls] == [
        ("onnx", True),
        ("tflite", True),
        ("onnx", True),  # the dry run exited normally: a success, no failure report
    ]
    assert not [row for row in rows if row["payload"].get("name") == "exception"]
    r = tool("telemetry", "show")  # each run of the tool adds its run_start and run_end
    assert r.returncode == 0 and re.match(r"\d+ record\(s\) waiting to be sent", r.stdout)

    r = tool("telemetry", "opt-out")
    assert r.returncode == 0, r.stderr
    deleted = re.search(f"consent withdrawn for {tool.name}; deleted (\\d+) waiting", r.stdout)
    assert deleted and int(deleted.group(1)) >= len(rows), r.stdout
    assert tool.consent()["apps"][tool.name]["decision"] == "denied"
    assert tool.consent()["global"] is None  # the tool's own decision only
    status = json.loads(tool("telemetry", "status", "--json").stdout)
    assert (status["consent"], status["enabled"], status["pending"]) == ("denied", False, 0)

    r = tool("telemetry", "demo")
    assert r.returncode == 2
    assert f"{me}: argument COMMAND: invalid choice: 'demo'" in r.stderr
    r = tool("telemetry")
    assert r.returncode == 0 and f"usage: {me}" in r.stdout  # alone: the help


def test_global_decisions_from_the_tool_say_so(tool: Tool) -> None:
    me = f"{tool.name} telemetry"
    r = tool("telemetry", "opt-in", "--global")
    assert r.returncode == 0, r.stderr
    assert f"for every optel tool; '{me} opt-out --global' withdraws it" in r.stdout
    assert tool.consent()["global"]["decision"] == "granted"
    r = tool("telemetry", "opt-out", "--global")
    assert r.returncode == 0 and "withdrawn for every optel tool" in r.stdout
    assert tool.consent()["global"]["decision"] == "denied"


def test_help_and_telemetry_commands_record_no_run(tool: Tool) -> None:
    """A decorated command that is not called starts no run: ``mytool --help``
    and ``mytool telemetry status`` add no run_start/run_end (they did, since the
    run started when the decorator was applied)."""

    def names() -> list[str]:
        rows = json.loads(tool("telemetry", "show", "--json").stdout)
        return [row["payload"].get("name") for row in rows if row["app"] == tool.name]

    assert tool("telemetry", "opt-in").returncode == 0
    for args in (("--help",), ("convert", "--help"), ("telemetry", "status"), ()):
        r = tool(*args)
        assert r.returncode in (0, 2), r.stderr  # a group without a command: usage, exit 2
    assert names() == []
    assert tool("convert", "model.onnx").returncode == 0
    found = names()
    assert found.count("run_start") == 1 and found.count("run_end") == 1, found
    assert found.count("convert") == 1, found
