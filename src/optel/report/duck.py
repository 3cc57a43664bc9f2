"""The embedded engine: DuckDB, with an incremental store of what was read.

Reading OTLP JSON is the expensive part of a report (about 40 s for a million
records on a busy 2-core machine; the queries then take about a second), and
the gateway's files only grow. So :class:`DuckStore` keeps the ``events``
rows it has read in a DuckDB database file, with how far it read each input
file, and on the next report reads only what was appended. A file that
shrank or was replaced is read again from the start. ``path=None`` keeps
everything in memory (nothing written).

Input files are read in chunks of complete lines (a line the collector is
still writing waits for the next report), which also bounds memory.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import events

SCHEMA = 1  # bump when the stored columns change: the store is then rebuilt
CHUNK_BYTES = 64 << 20


class StoreBusy(Exception):
    """Another process has the store open."""


@dataclass
class Ingested:
    files: int = 0  # input files with new complete lines this time
    records: int = 0  # event rows added this time
    stored: int = 0  # event rows in the store afterwards


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_size


class DuckStore:
    """``events`` in DuckDB: stored rows of gateway files, plus this run's local ones."""

    name = "duckdb"

    def __init__(self, path: Path | None, threads: int | None = None):
        import duckdb

        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path) if path is not None else ":memory:")
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(f"{path} is in use by another process") from None
            raise
        # Streaming inserts without keeping input order use far less memory.
        self.con.execute("SET preserve_insertion_order = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._prepare()
        self.events = "events"

    def _prepare(self) -> None:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        found = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None or found[0] != str(SCHEMA):
            con.execute("DROP TABLE IF EXISTS stored_events")
            con.execute("DROP TABLE IF EXISTS sources")
            con.execute("DELETE FROM meta")
            con.execute("INSERT INTO meta VALUES ('schema', ?)", [str(SCHEMA)])
        cols = ", ".join(f"{c} {t}" for c, t in events.DUCKDB_TYPES.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS stored_events (src VARCHAR, {cols})")
        con.execute(
            "CREATE TABLE IF NOT EXISTS sources (path VARCHAR PRIMARY KEY, inode UBIGINT,"
            " done UBIGINT)"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE local_events ({cols})")
        names = ", ".join(events.COLUMNS)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW events AS SELECT {names} FROM stored_events"
            f" UNION ALL SELECT {names} FROM local_events"
        )

    # -- reading --------------------------------------------------------------------------

    def _insert(self, table: str, json_file: Path, src: str | None, longest: int) -> int:
        # DuckDB sizes its read buffers by maximum_object_size: the longest line
        # there is, not a generous constant (1 GiB cost 4.5 GB of memory)
        source = (
            f"read_json_objects({_quote(str(json_file))}, format = 'newline_delimited',"
            f" maximum_object_size = {max(longest + 1024, 1 << 20)})"
        )
        prefix = f"{_quote(src)} AS src, " if src is not None else ""
        before = self._count(table)
        self.con.execute(
            f"INSERT INTO {table} SELECT {prefix}* FROM ({events.duckdb_select(source)})"
        )
        return self._count(table) - before

    def _count(self, table: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def ingest(self, files: Iterable[Path]) -> Ingested:
        """Read what is new in ``files`` (OTLP JSON log lines) into the store."""
        out = Ingested()
        for path in files:
            added = self._ingest_file(path.resolve())
            if added:
                out.files += 1
                out.records += added
        out.stored = self._count("stored_events")
        return out

    def _ingest_file(self, path: Path) -> int:
        con = self.con
        key = str(path)
        inode, size = _file_identity(path)
        row = con.execute("SELECT inode, done FROM sources WHERE path = ?", [key]).fetchone()
        done, again = 0, False
        if row is not None:
            if row[0] == inode and row[1] <= size:
                done = int(row[1])
            else:  # replaced or truncated: read it again from the start
                again = True
        if done == size and not again:
            return 0
        added = 0
        con.execute("BEGIN TRANSACTION")
        try:
            if again:
                con.execute("DELETE FROM stored_events WHERE src = ?", [key])
            with open(path, "rb") as f:
                f.seek(done)
                while True:
                    chunk = f.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    end = chunk.rfind(b"\n")
                    if end < 0:
                        if len(chunk) < CHUNK_BYTES:
                            break  # a line still being written: next time
                        chunk += f.readline()  # a line longer than a chunk
                        if not chunk.endswith(b"\n"):
                            break
                        end = len(chunk) - 1
                    f.seek(done + end + 1)
                    added += self._insert_bytes(chunk[: end + 1], key)
                    done += end + 1
            con.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", [key, inode, done])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return added

    def _insert_bytes(self, data: bytes, src: str) -> int:
        longest = max(map(len, data.split(b"\n")))
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            tmp.write(data)
        try:
            return self._insert("stored_events", Path(tmp.name), src, longest)
        finally:
            os.unlink(tmp.name)

    def add_local(self, lines: Sequence[str]) -> int:
        """This run's own records (not stored): OTLP JSON lines, one request each."""
        if not lines:
            return 0
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tmp:
            tmp.write("\n".join(lines) + "\n")
        try:
            return self._insert("local_events", Path(tmp.name), None, max(map(len, lines)) * 4)
        finally:
            os.unlink(tmp.name)

    # -- queries --------------------------------------------------------------------------

    def rows(self, sql: str) -> list[dict[str, Any]]:
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self) -> None:
        self.con.close()
