"""The report page in a real browser: headless Chromium (Debian's package, put
there by ``make chromium``) loads it from disk, finds every chart drawn, and
logs no console error (a fetch the page's CSP blocks would be one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

from . import browser
from .generate import APP, generate

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")
CHARTS = {
    "chart-daily",
    "chart-weekly",
    "chart-versions",
    "chart-mix-os",
    "chart-mix-python",
    "chart-mix-accelerators",
    "chart-mix-frameworks",
    "chart-commands",
    "chart-durations",
    "chart-failures",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = browser.find()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    gen = generate(folder / "gw", installs=80, days=35, seed=9, keep=False)
    out = folder / "report.html"
    r = run_cli("report", str(gen.logs), "--app", APP, "--no-store", "--out", str(out), home=folder)
    assert r.returncode == 0, r.stderr
    return out


def test_every_chart_is_drawn_and_the_console_is_clean(chromium: str, page: Path) -> None:
    got = browser.load(page)
    assert got.errors == []
    assert {c["id"] for c in got.charts} == CHARTS
    for chart in got.charts:
        assert chart["visible"] and chart["width"] > 100 and chart["height"] > 40, chart
        assert not chart["empty"] and chart["marks"] > 0, chart
    assert got.title.startswith(f"{APP}: usage report")
    assert got.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(got.screenshot) > 20_000


def test_the_check_sees_errors_when_there_are_some(chromium: str, tmp_path: Path) -> None:
    # a check that cannot fail proves nothing: a blocked fetch and a throwing script
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><meta http-equiv='Content-Security-Policy'"
        " content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
        '<figure class="chart" id="chart-x"><svg class="plot" width="10" height="10"></svg>'
        '</figure><img src="http://192.0.2.1/x.png"><script>throw new Error("boom")</script>'
        "</body></html>"
    )
    got = browser.load(bad)
    assert any("Content Security Policy" in e for e in got.errors), got.errors
    assert any("boom" in e for e in got.errors), got.errors
    assert got.charts == [
        {"id": "chart-x", "width": 10, "height": 10, "empty": False, "marks": 0, "visible": True}
    ]
