"""``optel report`` on generated gateway output: every number in ``--json`` and
in the page equals the same number computed independently, in plain Python,
from the generator's ground truth (tests/report/expected.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

from . import expected
from .generate import APP, OTHER_APP, Generated, generate
from .page import raw, read, rows

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")

DAYS = 21


@dataclass
class Made:
    gen: Generated
    start: date
    end: date
    report: dict[str, Any]
    html: str
    want: dict[str, Any]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    folder = tmp_path_factory.mktemp("report")
    gen = generate(folder / "gw", installs=120, days=45, seed=5)
    end = gen.start + timedelta(days=gen.days - 1)
    start = end - timedelta(days=DAYS - 1)
    out = folder / "page.html"
    r = run_cli(
        "report", str(gen.logs.parent), "--app", APP.upper(), "--days", str(DAYS),
        "--no-store", "--json", "--out", str(out), home=folder / "home",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    want = expected.report(gen.events, APP, start, end)
    return Made(gen, start, end, json.loads(r.stdout), out.read_text(), want)


def test_the_generated_fleet_has_what_every_chart_needs(made: Made) -> None:
    names = {e.name for e in made.gen.events}
    assert {"run_start", "run_end", "exception", "exception_repeated", "model_converted"} <= names
    assert {e.app for e in made.gen.events} == {APP, OTHER_APP}
    w = made.want
    assert len(w["versions"]) >= 3 and w["versions_new"] == ["2.5.0"]
    assert len(w["commands"]) == 4 and all(c["failed"] > 0 for c in w["commands"])
    assert w["failures_new"] and w["failures_rising"]
    assert any(v > 0 for v in (w["summary"]["crashes"], w["summary"]["new_installs"]))


def test_json_numbers_equal_the_independent_computation(made: Made) -> None:
    r, w = made.report, made.want
    assert r["tool"] == APP
    assert r["period"] == {
        "start": made.start.isoformat(),
        "end": made.end.isoformat(),
        "days": DAYS,
    }
    assert r["summary"] == w["summary"]
    assert r["previous_summary"] == w["previous_summary"]
    assert r["active_installs"]["daily"] == w["daily"]
    assert r["active_installs"]["weekly"] == w["weekly"]
    assert r["versions"]["period"] == w["versions"]
    assert r["versions"]["order"] == w["versions_daily"]["order"]
    assert r["versions"]["daily"] == w["versions_daily"]["daily"]
    assert r["mix"] == w["mix"]
    assert r["commands"] == w["commands"]
    assert r["failures"] == w["failures"]
    assert r["failure_groups"] == w["failure_groups"]
    c = r["changes"]
    assert c["versions_new"] == w["versions_new"]
    assert c["failures_new"] == w["failures_new"]
    assert c["failures_gone"] == w["failures_gone"]
    assert c["failures_rising"] == w["failures_rising"]
    before = {x["command"]: x for x in w["previous_commands"]}
    for x in c["commands"]:
        assert x["calls"]["current"] - x["calls"]["previous"] == x["calls"]["delta"]
        assert x["p95_ms"]["previous"] == before[x["command"]]["p95_ms"]
    for s in c["summary"]:
        assert (s["current"], s["previous"]) == (
            w["summary"][s["metric"]],
            w["previous_summary"][s["metric"]],
        )


def test_page_numbers_equal_the_independent_computation(made: Made) -> None:
    page, w = read(made.html), made.want
    for key, (now, before) in page.cards.items():
        assert (now, before) == (raw(w["summary"][key]), raw(w["previous_summary"][key])), key
    assert len(page.cards) == 8
    t = page.tables
    assert t["t-daily"] == rows(w["daily"], ("day", "installs", "runs"))
    assert t["t-weekly"] == rows(w["weekly"], ("week", "installs", "days"))
    assert t["t-versions"] == rows(w["versions"], ("version", "installs", "first_seen", "new"))
    order = w["versions_daily"]["order"]
    assert t["t-versions-daily"] == [
        [d["day"], *(raw(d["installs"][v]) for v in order)] for d in w["versions_daily"]["daily"]
    ]
    for dim in ("os", "python", "accelerators", "frameworks"):
        assert t[f"t-mix-{dim}"] == rows(w["mix"][dim], ("value", "installs", "share")), dim
    keys = ("command", "calls", "ok", "failed", "success_rate", "installs", "p50_ms", "p95_ms")
    assert t["t-commands"] == rows(w["commands"], keys)
    fkeys = ("exc_type", "location", "occurrences", "installs")
    assert t["t-failures"] == rows(w["failures"], (*fkeys, "first_day", "last_day", "new"))
    assert t["t-failures-new"] == rows(w["failures_new"], fkeys)
    assert t["t-failures-gone"] == rows(w["failures_gone"], fkeys)
    assert t["t-failures-rising"] == rows(w["failures_rising"], (*fkeys, "previous"))
    assert page.text["versions-new"] == ", ".join(w["versions_new"])
    changes = {row[0]: row[1:3] for row in t["t-changes"]}
    assert changes["active installs"] == [
        raw(w["summary"]["active_installs"]),
        raw(w["previous_summary"]["active_installs"]),
    ]


def test_page_is_self_contained(made: Made) -> None:
    html = made.html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    lowered = html.lower()
    for needle in ("<script", "http://", "https://", "<link", "@import", "url("):
        assert needle not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', ""), needle
    assert html.count('<figure class="chart"') == 10


def test_the_other_tool_and_the_period_are_honoured(made: Made, tmp_path: Path) -> None:
    r = run_cli(
        "report", str(made.gen.logs), "--app", OTHER_APP, "--since", made.start.isoformat(),
        "--until", made.end.isoformat(), "--no-store", "--json", home=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    other = json.loads(r.stdout)
    assert other["summary"] == expected.summary(made.gen.events, OTHER_APP, made.start, made.end)


def test_usage_errors_name_the_fix(made: Made, tmp_path: Path) -> None:
    logs = str(made.gen.logs)
    several = run_cli("report", logs, "--no-store", "--json", home=tmp_path)
    assert several.returncode == 1
    assert "choose one with --app" in several.stderr and OTHER_APP in several.stderr
    unknown = run_cli("report", logs, "--app", "nosuch", "--no-store", home=tmp_path)
    assert unknown.returncode == 1 and "no records of 'nosuch'" in unknown.stderr
    assert run_cli("report", logs, "--days", "0", home=tmp_path).returncode == 2
    both = run_cli("report", logs, "--store", str(tmp_path / "s"), "--no-store", home=tmp_path)
    assert both.returncode == 2 and "choose one" in both.stderr
    missing = run_cli("report", str(tmp_path / "nothing.json"), home=tmp_path)
    assert missing.returncode == 1 and "nothing.json" in missing.stderr
