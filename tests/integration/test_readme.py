"""Every code block of README.md runs, as pasted.

Each block says its language (``python`` or ``sh``). Python blocks run as a
file named ``mytool`` (so a command mounted under it reads ``mytool
telemetry``), with the arguments an ``<!-- argv: ... -->`` comment before the
block gives; shell blocks run with ``bash -e``, with optel's commands on PATH
and two stand-ins for what a block names but cannot contain: ``mytool`` (a
tool using optel) and ``tool.py`` (a program instrumented with plain
OpenTelemetry). Each block gets a fresh state folder in which every tool has
consent, so the enabled paths run. A block that cannot run here is marked
``<!-- not run: why -->``; that list is short and each entry says why.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, _scrubbed_environ, grant

README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(not run|argv):\s*(.*?)\s*-->\s*$")

MYTOOL = """\
#!{python}
import optel

telemetry = optel.init(app="mytool", version="1.0")


@telemetry.track("convert")
def convert():
    return "converted"


convert()
"""

TOOL_PY = """\
from opentelemetry import trace

with trace.get_tracer("tool").start_as_current_span("convert"):
    pass
"""


class Block:
    def __init__(self, number: int, line: int, language: str, code: str, mark: tuple[str, str]):
        self.number, self.line, self.language, self.code = number, line, language, code
        self.kind, self.note = mark

    def __repr__(self) -> str:
        return f"README.md:{self.line} ({self.language or 'no language'})"


def blocks() -> list[Block]:
    text = README.read_text()
    found = []
    for number, m in enumerate(FENCE.finditer(text)):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        line = text.count("\n", 0, m.start()) + 1
        found.append(
            Block(number, line, m.group(1).strip(), m.group(2), mark.groups() if mark else ("", ""))
        )
    return found


def test_every_block_says_its_language_and_few_are_not_run() -> None:
    found = blocks()
    assert len(found) >= 10
    assert [b for b in found if b.language not in ("python", "sh")] == []
    skipped = [b for b in found if b.kind == "not run"]
    assert len(skipped) <= 2, skipped  # the Makefile's own targets, nothing else
    assert all(len(b.note) > 20 for b in skipped)  # each says why


RUN = [b for b in blocks() if b.kind != "not run"]


@pytest.mark.parametrize("block", RUN, ids=[f"line{b.line}-{b.language}" for b in RUN])
def test_the_block_runs_as_pasted(block: Block, tmp_path: Path) -> None:
    home = tmp_path / "home"
    grant(home)  # every tool may send: the enabled paths run, to the local spool
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    mytool = bin_ / "mytool"
    mytool.write_text(MYTOOL.format(python=sys.executable))
    mytool.chmod(mytool.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "tool.py").write_text(TOOL_PY)
    environ = _scrubbed_environ()
    environ.update(
        OPTEL_HOME=str(home),
        PYTHONPATH=str(ROOT / "src"),
        # the stand-ins first, then optel's commands (the venv running the tests)
        PATH=os.pathsep.join([str(bin_), os.path.dirname(sys.executable), environ["PATH"]]),
    )
    if block.language == "python":
        script = tmp_path / "mytool"
        script.write_text(textwrap.dedent(block.code))
        argv = [sys.executable, str(script), *block.note.split()]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    r = subprocess.run(argv, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{block} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
