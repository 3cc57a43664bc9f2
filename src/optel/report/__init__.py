"""``optel report``: answers for a tool author from the data the gateway stored.

Sources: the gateway's file exporter output (OTLP JSON lines,
``<prefix>.logs.json``), optel's own ``local`` records (a state folder's
spool), or the ClickHouse table the gateway's ClickHouse exporter fills.
Engines: DuckDB, embedded (``pip install 'optel[report]'``; it is not a
dependency of optel itself, which runs inside other people's programs), or
ClickHouse over HTTP. Output: one self-contained HTML page, or ``--json``
with the same numbers.

Modules, in the order data flows:

- :mod:`.events`: the ``events`` relation every query reads, built from OTLP
  JSON (DuckDB) or from ``otel_logs`` (ClickHouse);
- :mod:`.duck`: DuckDB and its incremental store; :mod:`.clickhouse`;
  :mod:`.local`: the ``local`` records as OTLP JSON;
- :mod:`.queries`: every query, in SQL both engines accept;
- :mod:`.model`: runs them for a period and the one before, assembles the
  numbers; :mod:`.html` and :mod:`.svg`: the page;
- :mod:`.command`: the command line.
"""

from __future__ import annotations


class ReportError(Exception):
    """The report cannot be made as asked (no data, an unknown tool, ...)."""
