"""A child forked from a tool with optel running says nothing of optel's on its way out.

The child may neither use nor close the SQLite connection it inherits
(https://www.sqlite.org/howtocorrupt.html, section 2.6). Python 3.13's sqlite3
warns when a connection is freed unclosed, so the dropped one printed
"ResourceWarning: unclosed database" in a child run with warnings shown
(``-X dev``, ``-W error``, a test runner's settings)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import grant, run_python

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="sqlite3 warns of a connection freed unclosed from Python 3.13 (make pythons runs it)",
)

TOOL = """
import json, os, sys
import optel, optel.testing
t = optel.init(app="mytool", version="1")
t.event("parent", n=1)
t.flush(5)
pid = os.fork()
if pid == 0:
    t.event("child", n=2)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
t.flush(5)
names = sorted(json.loads(r.payload).get("name", "") for r in optel.testing.pending())
print(json.dumps([os.waitstatus_to_exitcode(status), names]))
"""


def test_a_forked_child_keeps_its_parents_connection_unused_and_unfreed(home: Path) -> None:
    grant(home, "mytool")
    out = run_python(
        TOOL,
        home,
        {
            "OPTEL_DESTINATIONS": "local",
            "PYTHONWARNINGS": "error::ResourceWarning",  # shown, as -X dev or -W error show it
        },
    )
    assert out.returncode == 0, out.stderr
    code, names = json.loads(out.stdout)
    assert code == 0
    assert "child" in names and "parent" in names, names  # the child still records
    assert "ResourceWarning" not in out.stderr, out.stderr
    assert "unclosed" not in out.stderr, out.stderr
