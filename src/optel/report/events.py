"""The ``events`` relation: one row per optel event record, whatever the store.

Every query of the report (:mod:`optel.report.queries`) reads only this
relation. It is built from what the gateway stored, by the engine at hand:

- DuckDB (:func:`duckdb_select`): from OTLP JSON lines, the collector's file
  exporter output (``<prefix>.logs.json``) and optel's own ``local``
  records rendered the same way;
- ClickHouse (:data:`CLICKHOUSE`): from the ``otel_logs`` table the
  collector's ClickHouse exporter writes (attributes as ``Map(String,
  String)``, every value as text: ``true``, ``12.5``, ``["a"]``).

Columns (NULL when the record does not carry the fact):

=============  =========  ========================================================
column         type       from
=============  =========  ========================================================
app            VARCHAR    resource ``service.name``
version        VARCHAR    resource ``service.version``
install        VARCHAR    resource ``optel.install.id`` (the anonymous install id)
ts             TIMESTAMP  the record's time, UTC
day            DATE       its UTC day
name           VARCHAR    the event name (``eventName``, else ``event.name``)
success        BOOLEAN    ``optel.success``: set on tracked commands only
duration_ms    DOUBLE     ``optel.duration_ms``
error_type     VARCHAR    ``optel.error.type`` (a failed command)
os             VARCHAR    ``optel.os.type``        (``run_start`` facts)
python         VARCHAR    ``optel.python.version``, major.minor
accelerators   VARCHAR    ``optel.accelerators`` (``nvidia,rocm`` or ``none``)
frameworks     VARCHAR    ``optel.frameworks`` (``torch,onnxruntime`` or ``none``)
exc_type       VARCHAR    ``exception.type``, or ``optel.failure.type`` on repeats
location       VARCHAR    innermost frame of ``exception.stacktrace``
failure_id     VARCHAR    ``optel.failure.id`` (type and frames, hashed by optel)
occurrences    BIGINT     failures this record stands for: ``exception`` 1,
                          ``exception_repeated`` ``optel.failure.count`` - 1, else 0
crash          BOOLEAN    ``optel.crash``
=============  =========  ========================================================

A command is a record with ``success`` set; its name is the command's.
"""

from __future__ import annotations

COLUMNS = (
    "app",
    "version",
    "install",
    "ts",
    "day",
    "name",
    "success",
    "duration_ms",
    "error_type",
    "os",
    "python",
    "accelerators",
    "frameworks",
    "exc_type",
    "location",
    "failure_id",
    "occurrences",
    "crash",
)

# DuckDB column types of the stored table (the store adds ``src``, the file).
DUCKDB_TYPES = {
    "app": "VARCHAR",
    "version": "VARCHAR",
    "install": "VARCHAR",
    "ts": "TIMESTAMP",
    "day": "DATE",
    "name": "VARCHAR",
    "success": "BOOLEAN",
    "duration_ms": "DOUBLE",
    "error_type": "VARCHAR",
    "os": "VARCHAR",
    "python": "VARCHAR",
    "accelerators": "VARCHAR",
    "frameworks": "VARCHAR",
    "exc_type": "VARCHAR",
    "location": "VARCHAR",
    "failure_id": "VARCHAR",
    "occurrences": "BIGINT",
    "crash": "BOOLEAN",
}


def _res(key: str) -> str:
    return f"json_extract_string(rv[list_position(rk, '{key}')], '$.stringValue')"


def _attr(key: str, kind: str = "stringValue") -> str:
    return f"json_extract_string(av[list_position(ak, '{key}')], '$.{kind}')"


def _number(key: str) -> str:
    # a double, or an int (a string in OTLP JSON) when the tool passed one
    value = f"av[list_position(ak, '{key}')]"
    return (
        f"TRY_CAST(coalesce(json_extract_string({value}, '$.doubleValue'),"
        f" json_extract_string({value}, '$.intValue')) AS DOUBLE)"
    )


def duckdb_select(source: str) -> str:
    """DuckDB SELECT of the :data:`COLUMNS` from OTLP JSON log lines.

    ``source`` is a relation with one JSON export request per row in column
    ``json`` (``read_json_objects(...)``). Each log record is located by JSON
    paths; attributes are looked up by key in their ``[{key, value}]`` lists.
    """
    return f"""
WITH rl AS (
    SELECT unnest(json_extract(json, '$.resourceLogs[*]')) AS rl FROM {source}
), rec AS (
    SELECT json_extract_string(rl, '$.resource.attributes[*].key') AS rk,
           json_extract(rl, '$.resource.attributes[*].value') AS rv,
           unnest(json_extract(rl, '$.scopeLogs[*].logRecords[*]')) AS r
    FROM rl
), flat AS (
    SELECT rk, rv,
           json_extract_string(r, '$.attributes[*].key') AS ak,
           json_extract(r, '$.attributes[*].value') AS av,
           json_extract_string(r, ['$.timeUnixNano', '$.observedTimeUnixNano', '$.eventName']) AS tn
    FROM rec
), typed AS (
    SELECT
        {_res("service.name")} AS app,
        {_res("service.version")} AS version,
        {_res("optel.install.id")} AS install,
        make_timestamp(CAST(coalesce(nullif(tn[1], '0'), tn[2]) AS BIGINT) // 1000) AS ts,
        coalesce(nullif(tn[3], ''), {_attr("event.name")}) AS name,
        TRY_CAST({_attr("optel.success", "boolValue")} AS BOOLEAN) AS success,
        {_number("optel.duration_ms")} AS duration_ms,
        {_attr("optel.error.type")} AS error_type,
        {_attr("optel.os.type")} AS os,
        nullif(regexp_extract({_attr("optel.python.version")}, '^(\\d+\\.\\d+)', 1), '') AS python,
        {_attr("optel.accelerators")} AS accelerators,
        {_attr("optel.frameworks")} AS frameworks,
        coalesce({_attr("exception.type")}, {_attr("optel.failure.type")}) AS exc_type,
        regexp_extract({_attr("exception.stacktrace")}, '([^\\n]*)$', 1) AS stack_tail,
        {_attr("optel.failure.id")} AS fid,
        TRY_CAST({_attr("optel.failure.count", "intValue")} AS BIGINT) AS repeats,
        TRY_CAST({_attr("optel.crash", "boolValue")} AS BOOLEAN) AS crash
    FROM flat
)
SELECT app, version, install, ts, CAST(ts AS DATE) AS day, name, success, duration_ms,
       error_type, os, python, accelerators, frameworks, exc_type,
       CASE WHEN name = 'exception' THEN nullif(stack_tail, '') END AS location,
       CASE WHEN name = 'exception' THEN coalesce(fid, exc_type || ' @ ' || coalesce(stack_tail, ''))
            ELSE fid END AS failure_id,
       CASE WHEN name = 'exception' THEN 1
            WHEN name = 'exception_repeated' THEN greatest(coalesce(repeats, 1) - 1, 0)
            ELSE 0 END AS occurrences,
       crash
FROM typed
"""


# ClickHouse: the same columns from the exporter's ``otel_logs`` table (its
# schema at clickhouseexporter v0.161.0). Map lookups of a missing key give
# '' in ClickHouse, hence the nullIf; days are UTC whatever the server's zone.
CLICKHOUSE = r"""
SELECT
    ServiceName AS app,
    nullIf(ResourceAttributes['service.version'], '') AS version,
    nullIf(ResourceAttributes['optel.install.id'], '') AS install,
    Timestamp AS ts,
    toDate(Timestamp, 'UTC') AS day,
    if(EventName != '', EventName, nullIf(LogAttributes['event.name'], '')) AS name,
    if(mapContains(LogAttributes, 'optel.success'),
       LogAttributes['optel.success'] = 'true', NULL) AS success,
    toFloat64OrNull(LogAttributes['optel.duration_ms']) AS duration_ms,
    nullIf(LogAttributes['optel.error.type'], '') AS error_type,
    nullIf(LogAttributes['optel.os.type'], '') AS os,
    nullIf(extract(LogAttributes['optel.python.version'], '^(\\d+\\.\\d+)'), '') AS python,
    nullIf(LogAttributes['optel.accelerators'], '') AS accelerators,
    nullIf(LogAttributes['optel.frameworks'], '') AS frameworks,
    coalesce(nullIf(LogAttributes['exception.type'], ''),
             nullIf(LogAttributes['optel.failure.type'], '')) AS exc_type,
    if(name = 'exception',
       nullIf(arrayElement(splitByChar('\n', LogAttributes['exception.stacktrace']), -1), ''),
       NULL) AS location,
    if(name = 'exception',
       coalesce(nullIf(LogAttributes['optel.failure.id'], ''),
                concat(exc_type, ' @ ', coalesce(location, ''))),
       nullIf(LogAttributes['optel.failure.id'], '')) AS failure_id,
    toInt64(multiIf(name = 'exception', 1,
                    name = 'exception_repeated',
                    greatest(coalesce(toInt64OrNull(LogAttributes['optel.failure.count']), 1) - 1, 0),
                    0))
        AS occurrences,
    if(mapContains(LogAttributes, 'optel.crash'),
       LogAttributes['optel.crash'] = 'true', NULL) AS crash
FROM {table}
"""
