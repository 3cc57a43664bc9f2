"""``make demo`` ends with the tool author's view: a report page of its runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")


def test_the_demo_ends_with_a_report_page(home: Path) -> None:
    r = run_cli("demo", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    found = re.search(
        r"report of these runs \(optel report --home (\S+)\):\n  open (\S+)", r.stdout
    )
    assert found, r.stdout[-2000:]
    demo_home, page = Path(found.group(1)), Path(found.group(2))
    assert page.read_text().count('<figure class="chart"') == 10
    got = run_cli("report", "--home", str(demo_home), "--json", home=home)
    rep = json.loads(got.stdout)
    assert rep["tool"] == "democonvert"
    s = rep["summary"]
    assert (s["active_installs"], s["runs"], s["commands"], s["crashes"]) == (1, 1, 1, 1)
    assert {f["exc_type"] for f in rep["failures"]} == {"FileNotFoundError", "RuntimeError"}
