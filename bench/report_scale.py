"""``optel report`` on a million generated records: wall time and peak memory.

The data: tests/report/generate.py's fleet (5,300 installs over 56 days,
cut at ``--records``), written once as the gateway's file exporter writes it
(one OTLP JSON line per batch of 512 records, ~1.25 KB per record) and kept
in ``--data`` for the next run.

Each figure is one ``python -m optel report`` process (wall time, and its
own peak RSS: bench/_peakrss.py):

- floor: DuckDB parsing the file once and nothing else (the least any
  reading of this JSON costs here), as the baseline of the ratios;
- cold: everything read again, nothing kept (``--no-store``);
- first: the same, writing the store;
- warm: the store up to date (what a report costs once the gateway's files
  were read: the goal of at most 10 s applies here);
- appended: 1 % more records in the file since the last report.

With ``--clickhouse`` (not in ``make bench``: it takes minutes), the same
records in ClickHouse (chdb, in process) as the gateway's ClickHouse
exporter stores them: bytes on disk per record, and the report's queries
against that table, for the sizing in collector-config/README.md.

Run: ``.venv/bin/python bench/report_scale.py [--records N] [--clickhouse]``
(``make bench`` runs it too, without ``--clickhouse``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench._peakrss
GOAL_S = 10.0

from bench._peakrss import peak_of  # noqa: E402


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stderr) of one child process."""
    with peak_of(env) as (child_env, peak_mib):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {err[-2000:]}")
        return wall, peak_mib(), err


def _data(folder: Path, records: int) -> Path:
    logs = folder / f"gw-{records}.logs.json"
    if logs.exists():
        return logs
    sys.path.insert(0, str(ROOT))
    from tests.report.generate import generate

    t0 = time.perf_counter()
    gen = generate(folder / "tmp", installs=5300, days=56, keep=False, max_records=records)
    gen.logs.rename(logs)
    print(f"generated {gen.records:,} records, {logs.stat().st_size / 2**20:,.0f} MiB"
          f" in {time.perf_counter() - t0:.0f} s: {logs}")  # fmt: skip
    return logs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "optel-bench-report"))
    ap.add_argument("--clickhouse", action="store_true", help="also measure ClickHouse (chdb)")
    args = ap.parse_args()
    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    logs = _data(folder, args.records)
    work = Path(tempfile.mkdtemp(prefix="optel-report-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPTEL_HOME=str(work / "home"))
    py = sys.executable
    try:
        floor = _run(
            [py, "-c", "import duckdb, sys; duckdb.sql(\"SELECT count(*) FROM read_json_objects("
             f"'{logs}', format='newline_delimited', maximum_object_size=67108864)\").fetchall()"],
            env,
        )  # fmt: skip
        report = [py, "-m", "optel", "report", "--app", "convertkit", "--out", str(work / "r.html")]
        copy = work / logs.name
        shutil.copyfile(logs, copy)  # the store's file: appended to below
        store = ["--store", str(work / "store.duckdb")]
        rows = [("floor: DuckDB parses the file once", floor)]
        rows.append(
            ("cold: read it all, keep nothing", _run([*report, str(logs), "--no-store"], env))
        )
        rows.append(("first: read it all into the store", _run([*report, str(copy), *store], env)))
        rows.append(("warm: store up to date", _run([*report, str(copy), *store], env)))
        # 1 % more, as new records; streamed: a child forked from a big parent
        # would count the parent's pages in its own peak RSS
        with open(logs, "rb") as src:
            total = sum(1 for _ in src)
        with open(logs, "rb") as src, open(copy, "ab") as dst:
            dst.writelines(itertools.islice(src, max(1, total // 100)))
        rows.append(
            ("appended: 1 % new since the last report", _run([*report, str(copy), *store], env))
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = logs.stat().st_size / 2**20
    print(
        f"optel report on {args.records:,} records ({size:,.0f} MiB of OTLP JSON), one process each:"
    )
    base = rows[0][1][0]
    for label, (wall, rss, _) in rows:
        print(f"  {label:42s} {wall:6.1f} s  x{wall / base:4.1f} floor  peak RSS {rss:6.0f} MiB")
    warm = rows[3][1][0]
    verdict = "met" if warm <= GOAL_S else "NOT met"
    print(
        f"  goal: a report in at most {GOAL_S:.0f} s: {verdict} once the store is up to date"
        f" ({warm:.1f} s); reading the JSON the first time costs {rows[2][1][0]:.0f} s"
    )
    if args.clickhouse:
        clickhouse(logs)


CH_LOAD = """
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.report.chstore import ChStore
ch = ChStore(Path({folder!r}), materialized=True)
n = ch.load([Path({logs!r})])
print(json.dumps({{t: ch.bytes_on_disk(t) for t in ("otel_logs", "optel_events")}}))
"""

CH_REPORT = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {src!r})
from pathlib import Path
from optel.report import model
from optel.report.clickhouse import relation
from tests.report.chstore import ChStore
ch = ChStore(Path({folder!r}), materialized=True)
if {view!r}:
    ch.events = relation("optel", "otel_logs")
model.build(ch, "convertkit")
"""


def clickhouse(logs: Path) -> None:
    """The records in chdb as the exporter stores them (and in optel_events, the
    materialized view's table): bytes per record, and the report on each."""
    import json

    work = Path(tempfile.mkdtemp(prefix="optel-report-bench-ch-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    py = sys.executable
    fill = {"root": str(ROOT), "src": str(ROOT / "src"), "folder": str(work), "logs": str(logs)}
    try:
        t0 = time.perf_counter()
        out = subprocess.run(
            [py, "-c", CH_LOAD.format(**fill)], env=env, capture_output=True, text=True, check=True
        )
        load_s = time.perf_counter() - t0
        size = json.loads(out.stdout.strip().splitlines()[-1])
        view = _run([py, "-c", CH_REPORT.format(view=True, **fill)], env)
        table = _run([py, "-c", CH_REPORT.format(view=False, **fill)], env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = size["otel_logs"][0]
    print(f"ClickHouse (chdb {_chdb_version()}), {rows:,} records as the exporter stores them:")
    for table_name, (n, b) in size.items():
        print(
            f"  {table_name:12s} on disk, merged: {b / 2**20:7.1f} MiB, {b / n:5.0f} bytes a record"
        )
    print(
        f"  report over otel_logs (the events subquery): {view[0]:6.1f} s, peak RSS {view[1]:.0f} MiB"
    )
    print(
        f"  report over optel_events (materialized):     {table[0]:6.1f} s, peak RSS {table[1]:.0f} MiB"
    )
    print(f"  (loading took {load_s:.0f} s: the test's Python conversion, not the exporter)")


def _chdb_version() -> str:
    try:
        from importlib.metadata import version

        return version("chdb-core-lite")
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
