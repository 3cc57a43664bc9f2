"""Every query of the report, in one place, in SQL that DuckDB and ClickHouse
both accept.

Each function returns the text of one SELECT over ``events``
(:mod:`optel.report.events`); the engine says what ``events`` is (a table in
DuckDB, a subquery over ``otel_logs`` in ClickHouse). The SQL keeps to what
the two share: CASE, ``count(DISTINCT ...)``, window functions, CTEs,
``date_trunc('week', ...)``, casts to DATE and BIGINT. Where they differ it
avoids the difference:

- percentiles are *nearest rank* (the value at rank ceil(p * n) of the sorted
  calls), computed with ``row_number()``, not the engines' own quantile
  functions (which interpolate differently);
- no outer joins (ClickHouse fills unmatched columns with defaults, not
  NULL); sums may be NULL on no rows (DuckDB) or 0 (ClickHouse): callers
  read both as 0;
- literals are inlined: dates as ``CAST('YYYY-MM-DD' AS DATE)``, the tool
  name checked to be a plain identifier (see :func:`check_app`).

Days are UTC; a week starts on Monday.
"""

from __future__ import annotations

from datetime import date

from . import ReportError

_APP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
EPOCH = date(1970, 1, 1)


def check_app(app: str) -> str:
    """The tool name, if it is one ``optel.init`` accepts (so it needs no escaping)."""
    if not 1 <= len(app) <= 64 or not app[0].isalnum() or not set(app) <= _APP_CHARS:
        raise ReportError(f"a tool name is 1-64 letters, digits, '.', '_' or '-', got {app!r}")
    return app


def day(d: date) -> str:
    return f"CAST('{d.isoformat()}' AS DATE)"


def scope(events: str, app: str, start: date, end: date) -> str:
    """FROM and WHERE for one tool's records in [start, end] (tool names compare
    case-insensitively, as consent does)."""
    return (
        f"FROM {events} AS e WHERE lower(e.app) = '{check_app(app).lower()}'"
        f" AND e.day >= {day(start)} AND e.day <= {day(end)}"
    )


def apps(events: str) -> str:
    return (
        "SELECT app, CAST(count(*) AS BIGINT) AS records, min(day) AS first_day,"
        f" max(day) AS last_day FROM {events} AS e WHERE app IS NOT NULL"
        " GROUP BY app ORDER BY records DESC, app"
    )


def summary(events: str, app: str, start: date, end: date) -> str:
    return f"""
SELECT CAST(count(DISTINCT install) AS BIGINT) AS active_installs,
       CAST(sum(CASE WHEN name = 'run_start' THEN 1 ELSE 0 END) AS BIGINT) AS runs,
       CAST(sum(CASE WHEN success IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS commands,
       CAST(sum(CASE WHEN success THEN 1 ELSE 0 END) AS BIGINT) AS commands_ok,
       CAST(sum(occurrences) AS BIGINT) AS failures,
       CAST(count(DISTINCT CASE WHEN occurrences > 0 THEN install END) AS BIGINT)
           AS installs_failing,
       CAST(sum(CASE WHEN crash THEN 1 ELSE 0 END) AS BIGINT) AS crashes,
       CAST(count(*) AS BIGINT) AS records,
       CAST(sum(CASE WHEN install IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS without_install
{scope(events, app, start, end)}
"""


def new_installs(events: str, app: str, start: date, end: date) -> str:
    """Installs first seen (ever, up to ``end``) within [start, end]."""
    return f"""
SELECT CAST(count(*) AS BIGINT) AS new_installs FROM (
    SELECT install, min(day) AS first_day
    {scope(events, app, EPOCH, end)} AND install IS NOT NULL
    GROUP BY install
) AS f WHERE first_day >= {day(start)}
"""


def daily(events: str, app: str, start: date, end: date) -> str:
    return f"""
SELECT day, CAST(count(DISTINCT install) AS BIGINT) AS installs,
       CAST(sum(CASE WHEN name = 'run_start' THEN 1 ELSE 0 END) AS BIGINT) AS runs
{scope(events, app, start, end)}
GROUP BY day ORDER BY day
"""


def weekly(events: str, app: str, start: date, end: date) -> str:
    return f"""
SELECT CAST(date_trunc('week', day) AS DATE) AS week,
       CAST(count(DISTINCT install) AS BIGINT) AS installs
{scope(events, app, start, end)}
GROUP BY CAST(date_trunc('week', day) AS DATE) ORDER BY week
"""


def versions_daily(events: str, app: str, start: date, end: date) -> str:
    return f"""
SELECT day, version, CAST(count(DISTINCT install) AS BIGINT) AS installs
{scope(events, app, start, end)} AND version IS NOT NULL
GROUP BY day, version ORDER BY day, version
"""


def versions(events: str, app: str, start: date, end: date) -> str:
    """Installs per version in [start, end], and when each version was first seen."""
    return f"""
WITH seen AS (
    SELECT version AS v, min(day) AS first_day
    {scope(events, app, EPOCH, end)} AND version IS NOT NULL
    GROUP BY version
), used AS (
    SELECT version AS v, CAST(count(DISTINCT install) AS BIGINT) AS installs
    {scope(events, app, start, end)} AND version IS NOT NULL
    GROUP BY version
)
SELECT used.v AS version, used.installs AS installs, seen.first_day AS first_day
FROM used INNER JOIN seen ON used.v = seen.v
ORDER BY version
"""


def mix(events: str, app: str, start: date, end: date) -> str:
    """Installs per combination of OS, Python, accelerators and frameworks, each
    install counted once with the facts of its latest ``run_start`` in [start,
    end]. One scan; the caller adds up the margins (accelerators and
    frameworks are sets such as ``torch,onnxruntime``: each member counts)."""
    return f"""
SELECT os, python, accelerators, frameworks, CAST(count(*) AS BIGINT) AS installs
FROM (
    SELECT install, os, python, accelerators, frameworks,
           row_number() OVER (PARTITION BY install ORDER BY ts DESC) AS rn
    {scope(events, app, start, end)} AND name = 'run_start' AND install IS NOT NULL
) AS x
WHERE rn = 1
GROUP BY os, python, accelerators, frameworks
"""


def commands(events: str, app: str, start: date, end: date) -> str:
    """Calls, successful calls and installs per command."""
    return f"""
SELECT name AS command, CAST(count(*) AS BIGINT) AS calls,
       CAST(sum(CASE WHEN success THEN 1 ELSE 0 END) AS BIGINT) AS ok,
       CAST(count(DISTINCT install) AS BIGINT) AS installs
{scope(events, app, start, end)} AND success IS NOT NULL
GROUP BY name
"""


def durations(events: str, app: str, start: date, end: date) -> str:
    """p50 and p95 duration of each command's successful calls (nearest rank:
    the value at rank ceil(p * n) of the n durations sorted)."""
    return f"""
SELECT command, CAST(count(*) AS BIGINT) AS n,
       min(CASE WHEN rn >= ceil(50 * cnt / 100.0) THEN duration_ms END) AS p50_ms,
       min(CASE WHEN rn >= ceil(95 * cnt / 100.0) THEN duration_ms END) AS p95_ms
FROM (
    SELECT name AS command, duration_ms,
           row_number() OVER (PARTITION BY name ORDER BY duration_ms) AS rn,
           count(*) OVER (PARTITION BY name) AS cnt
    {scope(events, app, start, end)} AND success AND duration_ms IS NOT NULL
) AS ranked
GROUP BY command
"""


def failures(events: str, app: str, start: date, end: date) -> str:
    """Failures by exception type and innermost frame: occurrences (repeats in a
    run included), installs affected, first and last day in [start, end]."""
    return f"""
WITH ids AS (
    SELECT failure_id AS fid, min(exc_type) AS ftype, min(location) AS floc
    {scope(events, app, EPOCH, end)} AND name = 'exception' AND failure_id IS NOT NULL
    GROUP BY failure_id
), hits AS (
    SELECT ids.ftype AS ftype, ids.floc AS floc, e.install AS install,
           e.occurrences AS n, e.day AS d
    FROM {events} AS e INNER JOIN ids ON e.failure_id = ids.fid
    WHERE lower(e.app) = '{check_app(app).lower()}' AND e.day >= {day(start)}
      AND e.day <= {day(end)} AND e.occurrences > 0
)
SELECT ftype AS exc_type, floc AS location, CAST(sum(n) AS BIGINT) AS occurrences,
       CAST(count(DISTINCT install) AS BIGINT) AS installs,
       min(d) AS first_day, max(d) AS last_day
FROM hits GROUP BY ftype, floc
ORDER BY occurrences DESC, installs DESC, exc_type NULLS LAST, location NULLS LAST
"""
