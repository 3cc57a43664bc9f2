"""The distributed store: the report's queries against ClickHouse.

The gateway writes to ClickHouse with the collector's ClickHouse exporter
(``collector-config/gateway-clickhouse.yaml``), which creates and fills
``<database>.otel_logs``. :class:`ClickHouse` runs the very queries of
:mod:`optel.report.queries` over its HTTP interface, with ``events`` being
:data:`optel.report.events.CLICKHOUSE` over that table: nothing is created
on the server, nothing is copied out of it but the answers.
"""

from __future__ import annotations

import re
from typing import Any

from . import ReportError, events

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def relation(database: str, table: str) -> str:
    """``events`` as a subquery over ``database.table`` (the exporter's logs table)."""
    for name in (database, table):
        if not _IDENT.match(name):
            raise ReportError(f"not a plain ClickHouse name: {name!r}")
    return "(" + events.CLICKHOUSE.replace("{table}", f"`{database}`.`{table}`") + ")"


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
    ):
        self.url = url.rstrip("/") + "/"
        self.events = relation(database, table)
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
