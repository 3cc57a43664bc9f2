"""The distributed store: the report's queries against ClickHouse.

The gateway writes to ClickHouse with the collector's ClickHouse exporter
(``collector-config/gateway-clickhouse.yaml``), which creates and fills
``<database>.otel_logs``. :class:`ClickHouse` runs the very queries of
:mod:`optel.report.queries` over its HTTP interface, with ``events`` being
:data:`optel.report.events.CLICKHOUSE` over that table: nothing is created
on the server, nothing is copied out of it but the answers.

At scale, reading attribute maps for every query costs: :func:`setup_sql`
(``python -m optel.report.clickhouse --database optel``) gives a table
``optel_events`` with the ``events`` columns, typed, and a materialized view
that fills it from every insert into ``otel_logs`` (the same SELECT); then
``optel report --clickhouse URL --events-table optel_events`` reads it.
"""

from __future__ import annotations

import re
from typing import Any

from . import ReportError, events

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _name(*parts: str) -> str:
    for name in parts:
        if not _IDENT.match(name):
            raise ReportError(f"not a plain ClickHouse name: {name!r}")
    return ".".join(f"`{name}`" for name in parts)


def relation(database: str, table: str) -> str:
    """``events`` as a subquery over ``database.table`` (the exporter's logs table)."""
    return "(" + events.CLICKHOUSE.replace("{table}", _name(database, table)) + ")"


TYPES = {
    "app": "LowCardinality(String)",
    "version": "LowCardinality(Nullable(String))",
    "install": "Nullable(String)",
    "ts": "DateTime64(9)",
    "day": "Date",
    "name": "LowCardinality(Nullable(String))",
    "success": "Nullable(Bool)",
    "duration_ms": "Nullable(Float64)",
    "error_type": "LowCardinality(Nullable(String))",
    "os": "LowCardinality(Nullable(String))",
    "python": "LowCardinality(Nullable(String))",
    "accelerators": "LowCardinality(Nullable(String))",
    "frameworks": "LowCardinality(Nullable(String))",
    "exc_type": "Nullable(String)",
    "location": "Nullable(String)",
    "failure_id": "Nullable(String)",
    "occurrences": "Int64",
    "crash": "Nullable(Bool)",
}


def setup_sql(
    database: str,
    logs_table: str = "otel_logs",
    events_table: str = "optel_events",
    ttl_days: int | None = 90,
) -> list[str]:
    """Statements creating ``events_table`` and the view that fills it from
    ``logs_table`` (new rows only; :func:`backfill_sql` copies older ones)."""
    assert set(TYPES) == set(events.COLUMNS)
    cols = ",\n    ".join(f"{c} {TYPES[c]}" for c in events.COLUMNS)
    ttl = f"\nTTL day + INTERVAL {int(ttl_days)} DAY" if ttl_days else ""
    target = _name(database, events_table)
    return [
        f"CREATE TABLE IF NOT EXISTS {target} (\n    {cols}\n) ENGINE = MergeTree\n"
        f"PARTITION BY toYYYYMM(day)\nORDER BY (day, app){ttl}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_name(database, events_table + '_mv')}"
        f" TO {target} AS" + events.CLICKHOUSE.replace("{table}", _name(database, logs_table)),
    ]


def backfill_sql(
    database: str, logs_table: str = "otel_logs", events_table: str = "optel_events"
) -> str:
    """Copies what ``logs_table`` held before the view existed (run once)."""
    return f"INSERT INTO {_name(database, events_table)}" + events.CLICKHOUSE.replace(
        "{table}", _name(database, logs_table)
    )


class ClickHouse:
    """Queries over ClickHouse's HTTP interface (``http://host:8123``)."""

    name = "clickhouse"

    def __init__(
        self,
        url: str,
        database: str = "default",
        table: str = "otel_logs",
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 120.0,
        events_table: str | None = None,
    ):
        self.url = url.rstrip("/") + "/"
        self.events = _name(database, events_table) if events_table else relation(database, table)
        self.auth = (user or "default", password or "") if user or password else None
        self.timeout_s = timeout_s
        self._session: Any = None

    def rows(self, sql: str) -> list[dict[str, Any]]:
        import json

        import requests

        if self._session is None:
            self._session = requests.Session()
        try:
            r = self._session.post(
                self.url,
                params={
                    "default_format": "JSONEachRow",
                    "output_format_json_quote_64bit_integers": "0",
                    "readonly": "1",
                },
                data=sql.encode(),
                auth=self.auth,
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise ReportError(
                f"cannot reach ClickHouse at {self.url}: {type(exc).__name__}"
            ) from None
        if r.status_code != 200:
            raise ReportError(f"ClickHouse answered {r.status_code}: {r.text.strip()[:500]}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def main(argv: list[str] | None = None) -> int:
    """Print the statements that make ``optel_events`` (for clickhouse-client)."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m optel.report.clickhouse",
        description="SQL creating optel_events and the materialized view that fills it",
    )
    p.add_argument("--database", default="optel")
    p.add_argument("--logs-table", default="otel_logs")
    p.add_argument("--events-table", default="optel_events")
    p.add_argument("--ttl-days", type=int, default=90, help="0: keep rows for ever")
    p.add_argument("--backfill", action="store_true", help="also copy the rows already there")
    a = p.parse_args(argv)
    for stmt in setup_sql(a.database, a.logs_table, a.events_table, a.ttl_days or None):
        print(stmt.strip() + ";\n")
    if a.backfill:
        print(backfill_sql(a.database, a.logs_table, a.events_table).strip() + ";")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
