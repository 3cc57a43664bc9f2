"""``optel report``: the command line of the report (registered by :mod:`optel.cli`).

::

    optel report GATEWAY_FILES_OR_FOLDERS [--app TOOL] [--days 28 | --since DAY] [--until DAY]
                 [--out report.html] [--json] [--store FILE | --no-store]
    optel report --home STATE_FOLDER ...             optel's own ``local`` records
    optel report --clickhouse http://host:8123 [--database optel] [--table otel_logs] ...

Exit status: 0 done, 2 a usage error, 1 the report could not be made (no
data, DuckDB not installed, the store busy, ClickHouse unreachable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

INSTALL_HINT = "optel report needs DuckDB: pip install 'optel[report]'"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``report`` to an argparse subparsers object; returns its parser."""
    p = sub.add_parser(
        "report",
        help="answers from the gateway's data: one HTML page (or --json)",
        description=(
            "Read what the gateway stored (its file exporter's *.logs.json files, or ClickHouse)"
            " or optel's own local records, and write one self-contained HTML page for a tool"
            " and period: active installs, versions, platforms, commands, failures, changes."
        ),
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="PATH",
        help="gateway output files, or folders holding *.logs.json files",
    )
    p.add_argument("--home", help="also read the local records of this optel state folder")
    p.add_argument("--app", help="the tool (default: the only one in the data)")
    p.add_argument("--days", type=int, default=28, help="period length in days (default 28)")
    p.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument(
        "--until", type=date.fromisoformat, help="last day (default: the tool's latest record)"
    )
    p.add_argument("--out", help="HTML file to write (default: optel-report-TOOL.html)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    p.add_argument("--store", help="DuckDB file keeping what was read (default: a cache file)")
    p.add_argument("--no-store", action="store_true", help="read everything again, keep nothing")
    p.add_argument("--clickhouse", metavar="URL", help="query ClickHouse (HTTP interface) instead")
    p.add_argument("--database", default="default", help="ClickHouse database (default: default)")
    p.add_argument(
        "--table", default="otel_logs", help="ClickHouse logs table (default: otel_logs)"
    )
    p.add_argument(
        "--events-table",
        help="read this table, filled by the view python -m optel.report.clickhouse makes",
    )
    p.set_defaults(func=run)
    return p


def log_files(inputs: list[str]) -> list[Path]:
    """The files to read: files as given, folders searched for *.logs.json
    (and the rotated *.logs-<time>.json)."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = {*path.glob("*.logs.json"), *path.glob("*.logs-*.json")}
            out.extend(sorted(found))
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(2, "no such file or folder", item)
    return out


def default_store(files: list[Path]) -> Path:
    """A cache file per set of inputs, in OPTEL_HOME or the per-user cache folder."""
    key = hashlib.sha1("\n".join(sorted(str(f.resolve()) for f in files)).encode()).hexdigest()
    home = os.environ.get("OPTEL_HOME", "").strip()
    if home:
        base = Path(home).expanduser() / "report-cache"
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("optel", appauthor=False)) / "report"
    return base / f"{key[:16]}.duckdb"


def _usage(args: argparse.Namespace, message: str) -> int:
    sys.stderr.write(f"{getattr(args, 'prog', 'optel')} report: {message}\n")
    return 2


def _fail(message: str) -> int:
    sys.stderr.write(f"optel report: {message}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    from . import ReportError
    from .model import build

    if args.days < 1:
        return _usage(args, f"--days must be at least 1, got {args.days}")
    if args.store and args.no_store:
        return _usage(args, "--store and --no-store contradict each other; choose one")
    if args.clickhouse and (args.inputs or args.home):
        return _usage(args, "--clickhouse reads ClickHouse only; drop the files and --home")
    engine: Any
    note = ""
    try:
        if args.clickhouse:
            from .clickhouse import ClickHouse

            engine = ClickHouse(
                args.clickhouse, args.database, args.table, events_table=args.events_table
            )
        else:
            files = log_files(args.inputs)
            home = args.home
            if not files and home is None:
                home = os.environ.get("OPTEL_HOME") or None
                if home is None:
                    from ..config import paths

                    home = paths().data_dir
            try:
                import duckdb  # noqa: F401 - an optional extra: say how to get it
            except ImportError:
                return _fail(INSTALL_HINT)
            from .duck import DuckStore, StoreBusy

            store = None
            if files and not args.no_store:
                store = Path(args.store) if args.store else default_store(files)
            try:
                engine = DuckStore(store)
            except StoreBusy as exc:
                return _fail(f"{exc}; wait for it, or use --store elsewhere or --no-store")
            got = engine.ingest(files)
            local = 0
            if home is not None:
                from . import local as local_source

                local = engine.add_local(local_source.lines(home))
            kept = f" (store {store}: {got.stored:,} records)" if store else ""
            note = f"read {got.records:,} new records from {len(files)} file(s){kept}" + (
                f", {local:,} local records from {home}" if home is not None else ""
            )
        try:
            report = build(engine, args.app, args.days, args.until, args.since)
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                close()
    except ReportError as exc:
        return _fail(str(exc))
    if note:
        sys.stderr.write(f"optel report: {note}\n")
    if args.json:
        print(json.dumps(report, indent=2))
        if not args.out:
            return 0
    from .html import render

    out = Path(args.out or f"optel-report-{report['tool']}.html")
    out.write_text(render(report), encoding="utf-8")
    p = report["period"]
    sys.stderr.write(f"optel report: {report['tool']}, {p['start']} to {p['end']}: wrote {out}\n")
    return 0
