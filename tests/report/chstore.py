"""ClickHouse for the tests, in process (chdb), holding what the gateway's
ClickHouse exporter would have written.

:func:`load` turns OTLP JSON log lines (the file exporter's output) into
rows of ``otel_logs`` the way clickhouseexporter v0.161.0 does
(``internal/util.go`` AttributesToMap: every attribute value as
``pcommon.Value.AsString()``: ``true``, ``42``, ``12.5``, JSON for arrays),
in a table with that exporter's logs columns, types, codecs, partitioning and
order (``internal/sqltemplates/logs_table.sql``; its skipping indexes and
materialized k8s columns left out).
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

OTEL_LOGS = """
CREATE TABLE IF NOT EXISTS {db}.otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1))
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


def as_string(value: dict[str, Any]) -> str:
    """An OTLP JSON AnyValue as the collector's ``Value.AsString()`` writes it."""
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return "true" if value["boolValue"] else "false"
    if "intValue" in value:
        return str(int(value["intValue"]))
    if "doubleValue" in value:
        f = float(value["doubleValue"])
        if math.isnan(f) or math.isinf(f):
            return {True: "Infinity", False: "-Infinity"}[f > 0] if math.isinf(f) else "NaN"
        # ES6 number formatting, as Go's float64AsString: shortest round trip,
        # integers without ".0" (Python's repr gives the same digits)
        return str(int(f)) if f.is_integer() and abs(f) < 1e21 else repr(f)
    if "arrayValue" in value:
        return json.dumps(
            [_raw(v) for v in value["arrayValue"].get("values", [])], separators=(",", ":")
        )
    return ""


def _raw(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    return None


def _map(attributes: list[dict[str, Any]]) -> dict[str, str]:
    return {a["key"]: as_string(a.get("value", {})) for a in attributes}


def rows(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """otel_logs rows of OTLP JSON log lines (one export request per line)."""
    for line in lines:
        if not line.strip():
            continue
        for rl in json.loads(line).get("resourceLogs", []):
            res = _map(rl.get("resource", {}).get("attributes", []))
            for sl in rl.get("scopeLogs", []):
                scope = sl.get("scope", {})
                for rec in sl.get("logRecords", []):
                    t = int(rec.get("timeUnixNano") or 0) or int(rec.get("observedTimeUnixNano", 0))
                    yield {
                        "ts_ns": t,
                        "SeverityText": rec.get("severityText", ""),
                        "SeverityNumber": int(rec.get("severityNumber", 0)),
                        "ServiceName": res.get("service.name", ""),
                        "ResourceAttributes": res,
                        "ScopeName": scope.get("name", ""),
                        "ScopeVersion": scope.get("version", ""),
                        "LogAttributes": _map(rec.get("attributes", [])),
                        "EventName": rec.get("eventName", ""),
                    }


class ChStore:
    """An in-process ClickHouse (chdb) with ``otel_logs``; an engine for the report."""

    name = "clickhouse"

    def __init__(self, folder: Path, database: str = "optel", materialized: bool = False):
        """``materialized``: also the ``optel_events`` table and its view
        (:func:`optel.report.clickhouse.setup_sql`), and report from it."""
        from chdb import session

        from optel.report.clickhouse import relation, setup_sql

        self.folder = folder
        self.session = session.Session(str(folder / "chdb"))
        self.database = database
        self.session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.session.query(OTEL_LOGS.format(db=database))
        self.events = relation(database, "otel_logs")
        if materialized:
            for stmt in setup_sql(database):
                self.session.query(stmt)
            self.events = f"`{database}`.`optel_events`"

    def load(self, files: Iterable[Path]) -> int:
        n = 0
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
            for path in files:
                with open(path, encoding="utf-8") as f:
                    for row in rows(f):
                        tmp.write(json.dumps(row) + "\n")
                        n += 1
        try:
            self.session.query(
                f"INSERT INTO {self.database}.otel_logs (Timestamp, SeverityText, SeverityNumber,"
                " ServiceName, ResourceAttributes, ScopeName, ScopeVersion, LogAttributes,"
                " EventName) SELECT fromUnixTimestamp64Nano(ts_ns, 'UTC'), SeverityText,"
                " SeverityNumber, ServiceName, ResourceAttributes, ScopeName, ScopeVersion,"
                f" LogAttributes, EventName FROM file('{tmp.name}', JSONEachRow,"
                " 'ts_ns Int64, SeverityText String, SeverityNumber UInt8, ServiceName String,"
                " ResourceAttributes Map(String, String), ScopeName String, ScopeVersion String,"
                " LogAttributes Map(String, String), EventName String')"
            )
        finally:
            Path(tmp.name).unlink()
        return n

    def bytes_on_disk(self, table: str = "otel_logs") -> tuple[int, int]:
        """(rows, bytes on disk) of ``table``'s active parts, after merging them."""
        self.session.query(f"OPTIMIZE TABLE {self.database}.{table} FINAL")
        (row,) = self.rows(
            "SELECT sum(rows) AS n, sum(bytes_on_disk) AS b FROM system.parts"
            f" WHERE database = '{self.database}' AND table = '{table}' AND active"
        )
        return int(row["n"]), int(row["b"])

    def rows(self, sql: str) -> list[dict[str, Any]]:
        res = self.session.query(
            sql + " SETTINGS output_format_json_quote_64bit_integers = 0", "JSONEachRow"
        )
        return [json.loads(line) for line in res.bytes().decode().splitlines() if line.strip()]

    def close(self) -> None:
        self.session.close()


def http_handler(store: ChStore) -> type[BaseHTTPRequestHandler]:
    """A stand-in for ClickHouse's HTTP interface: POST / with the SQL as the
    body, settings as query parameters; answers from ``store`` (chdb)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            params = dict(parse_qsl(urlsplit(self.path).query))
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            settings = ", ".join(
                f"{k} = {v}"
                for k, v in params.items()
                if k in ("readonly", "output_format_json_quote_64bit_integers")
            )
            try:
                with lock:
                    res = store.session.query(
                        f"{sql} SETTINGS {settings}" if settings else sql,
                        params.get("default_format", "TabSeparated"),
                    )
                body, status = res.bytes(), 200
            except Exception as exc:  # ClickHouse answers 500 with the error text
                body, status = str(exc).encode(), 500
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
