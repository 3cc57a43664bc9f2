"""The report's queries against ClickHouse: the same answers as DuckDB from
the same gateway data, stored as the collector's ClickHouse exporter stores
it (tests/report/chstore.py), queried in process (chdb) and through the
HTTP interface ``optel report --clickhouse`` uses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from optel.report import model
from optel.report.duck import DuckStore
from tests.conftest import run_cli
from tests.fakes.serve import serve_http

from .generate import APP, generate

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")
pytest.importorskip(
    "chdb", reason="chdb (in-process ClickHouse) not installed: pip install chdb-core-lite"
)

from .chstore import ChStore, http_handler  # noqa: E402 - needs chdb

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _same(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("engine", "generated")}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DuckStore, ChStore]:
    folder = tmp_path_factory.mktemp("ch")
    gen = generate(folder / "gw", installs=60, days=35, seed=11, keep=False)
    duck = DuckStore(None)
    duck.ingest([gen.logs])
    ch = ChStore(folder)
    assert ch.load([gen.logs]) == gen.records
    yield gen.logs, duck, ch
    duck.close()
    ch.close()


def test_clickhouse_answers_equal_duckdb_answers(stores: tuple[Path, DuckStore, ChStore]) -> None:
    _, duck, ch = stores
    a = model.build(duck, APP, days=14, now=NOW)
    b = model.build(ch, APP, days=14, now=NOW)
    assert a["summary"]["commands"] > 0 and a["failures"] and a["changes"]["failures_new"]
    assert _same(a) == _same(b)
    assert b["engine"] == "clickhouse"


def test_the_materialized_events_table_gives_the_same_answers(
    stores: tuple[Path, DuckStore, ChStore], tmp_path: Path
) -> None:
    logs, duck, first = stores
    # chdb runs one server per process: another database on the same one;
    # the view exists before the inserts, as setup_sql's advice says
    ch = ChStore(first.folder, database="optel_mv", materialized=True)
    try:
        ch.load([logs])
        assert ch.events == "`optel_mv`.`optel_events`"
        assert _same(model.build(ch, APP, days=14, now=NOW)) == _same(
            model.build(duck, APP, days=14, now=NOW)
        )
    finally:  # the session is the fixture's: drop only this database
        ch.session.query("DROP DATABASE IF EXISTS optel_mv")


def test_optel_report_over_clickhouses_http_interface(
    stores: tuple[Path, DuckStore, ChStore], tmp_path: Path
) -> None:
    logs, duck, ch = stores
    with serve_http(http_handler(ch)) as server:
        r = run_cli(
            "report", "--clickhouse", server.url, "--database", ch.database, "--app", APP,
            "--json", home=tmp_path,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["engine"] == "clickhouse"
    assert _same(got) == _same(model.build(duck, APP, now=NOW))


def test_clickhouse_errors_are_one_line(tmp_path: Path) -> None:
    from tests.integration.collector import free_port

    down = run_cli(
        "report", "--clickhouse", f"http://127.0.0.1:{free_port()}", "--app", APP, home=tmp_path
    )
    assert down.returncode == 1 and "cannot reach ClickHouse" in down.stderr
    assert "Traceback" not in down.stderr
    bad = run_cli("report", "--clickhouse", "http://x", "--database", "a;b", home=tmp_path)
    assert bad.returncode == 1 and "not a plain ClickHouse name" in bad.stderr
