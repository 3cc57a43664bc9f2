"""The spool: a durable, bounded queue on disk (SQLite in WAL mode).

It is the only hand-off between recording and sending. Each row is one
record rendered for one destination, exactly the bytes that will be sent,
with the app and policy it was recorded under (consent is checked again,
per record, just before sending). A row leaves the spool only when its
destination accepted it, when it ages out, or when the bounds push it out;
every drop is counted in ``stats``.

Several processes may share one spool: senders *claim* rows with a lease,
so two senders do not send the same row, and a sender that dies only lets
its lease expire (at worst a duplicate later, never a loss); a lease held
by a process that no longer exists on this machine is freed at once.

Trouble with the file itself never reaches the host, and is told once:

- corrupt (not a database, malformed): moved aside, a fresh spool started,
  the move noted as the spool's last error (``optel status``);
- cannot be written (read-only or full disk, unopenable folder): this
  process keeps its records in an in-memory spool instead, still sent
  within this run and its exit budget; what was already on disk stays
  there for a later run.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from . import _errors, _fs

SCHEMA = 1

# Bounds of the in-memory spool a process falls back to when the file cannot
# be written: the pipeline's queue bound (pipeline.QUEUE_MAX), and 8 MB.
MEMORY_MAX_RECORDS = 8192
MEMORY_MAX_BYTES = 8_000_000

_DDL = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    policy TEXT NOT NULL,
    signal TEXT NOT NULL,
    destination TEXT NOT NULL,
    payload TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS records_due ON records (destination, next_attempt);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    destination TEXT NOT NULL,
    app TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Limits:
    max_records: int = 10_000
    max_bytes: int = 20_000_000
    max_age_s: float = 7 * 24 * 3600
    max_sent_log: int = 1_000


def limits_from(values: Mapping[str, Any]) -> Limits:
    """The bounds the user's settings (``spool_max_*``) ask for."""
    return Limits(
        max_records=values["spool_max_records"],
        max_bytes=values["spool_max_bytes"],
        max_age_s=values["spool_max_age_hours"] * 3600,
    )


@dataclass(frozen=True)
class NewRecord:
    app: str
    policy: str
    signal: str
    destination: str
    payload: str
    created: float


@dataclass(frozen=True)
class Row:
    id: int
    app: str
    policy: str
    signal: str
    destination: str
    payload: str
    created: float
    attempts: int
    last_error: str | None


_COLUMNS = "id, app, policy, signal, destination, payload, created, attempts, last_error"

T = TypeVar("T")

# sqlite3 messages (https://www.sqlite.org/rescode.html) that mean the file
# cannot take writes now: SQLITE_READONLY, SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN
_UNWRITABLE = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")
# another connection holds the lock: wait or retry later, never a reason to move data
_BUSY = ("locked", "busy")


def _owner_pid(owner: str | None) -> int | None:
    """The process id in a lease owner name (``"<pid>-<random>"``, ``"flush-<pid>"``)."""
    for part in (owner or "").split("-"):
        if part.isdigit():
            return int(part)
    return None


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate a process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR)


class Spool:
    """One SQLite database file; safe to use from several threads and processes."""

    def __init__(self, path: str, limits: Limits | None = None, busy_timeout_s: float = 1.0):
        self.path = path
        self.limits = limits or Limits()
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._aside = ""
        self.in_memory = False
        """True once the file could not be written and records are kept in memory."""
        # rows a busy database (another process writing past the busy timeout)
        # did not take: kept, bounded, and written with the next add or at close
        self._unsaved: list[tuple[str, str, str, str, str, int, float]] = []
        self._unsaved_dropped = 0

    # -- connection -----------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        # a forked child must not reuse its parent's connection
        self._pid = os.getpid()
        self._db = None
        if self.in_memory:
            self._db = self._open(":memory:")
            return self._db
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            self._db = self._open(self.path)
        except OSError as exc:  # the folder cannot be made or used
            self._to_memory(exc)
        except sqlite3.DatabaseError as exc:
            if not self._recover(exc):
                raise
        assert self._db is not None
        return self._db

    def _open(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(
            path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # explicit transactions below
            check_same_thread=False,
        )
        try:
            if path != ":memory:":
                try:
                    os.chmod(path, 0o600)
                except OSError:
                    pass
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_DDL)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA),)
            )
            db.execute("SELECT count(*) FROM records").fetchone()  # proves it is readable
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: sqlite3.DatabaseError) -> bool:
        """Make the spool usable again after ``exc``; ``False``: nothing to do but raise."""
        text = str(exc).lower()
        if any(word in text for word in _BUSY):
            return False
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None
        if self.in_memory:
            return False  # the in-memory spool failed: a real bug, let the guard see it
        if isinstance(exc, sqlite3.OperationalError) and any(w in text for w in _UNWRITABLE):
            self._to_memory(exc)
            return True
        self._move_aside(exc)  # not a database, malformed, ...
        try:
            self._db = self._open(self.path)
            self._note(f"spool was unreadable ({exc}); moved aside as {self._aside}")
        except (OSError, sqlite3.DatabaseError) as again:
            self._to_memory(again)
        return True

    def _to_memory(self, exc: BaseException) -> None:
        self.in_memory = True
        # memory is the host's: bounded like the queue, oldest dropped first (counted)
        self.limits = replace(
            self.limits,
            max_records=min(self.limits.max_records, MEMORY_MAX_RECORDS),
            max_bytes=min(self.limits.max_bytes, MEMORY_MAX_BYTES),
        )
        self._db = self._open(":memory:")
        _errors.warn_once(
            "spool-unwritable",
            f"the spool {self.path} cannot be written ({exc}); this run keeps its"
            " records in memory and sends them before it exits",
        )

    def _move_aside(self, exc: Exception) -> None:
        try:
            aside = self._aside = _fs.move_aside(self.path, ("", "-wal", "-shm"))
        except OSError as again:  # cannot even move it: _recover falls back to memory
            aside = self._aside = f"nowhere ({again.__class__.__name__})"
        _errors.warn_once(
            "spool-corrupt",
            f"the spool {self.path} was unreadable ({exc}); moved it to {aside} and started afresh",
        )

    def _note(self, error: str) -> None:
        """Remember ``error`` as the spool's last error (``optel status`` shows it)."""
        assert self._db is not None
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_error', ?)",
            (f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {error[:300]}",),
        )

    def _do(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the connection; once more after recovering from file trouble."""
        with self._lock:
            try:
                return op(self._conn())
            except sqlite3.DatabaseError as exc:
                if not self._recover(exc):
                    raise
            return op(self._conn())

    @staticmethod
    @contextmanager
    def _tx(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def close(self) -> None:
        with self._lock:
            if self._unsaved and self._pid == os.getpid():
                with _errors.guard("spool-close"):
                    self._write([])  # one more try for rows a busy database refused
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- writing --------------------------------------------------------------

    def add(self, records: Sequence[NewRecord]) -> int:
        """Store records in one transaction, then enforce the bounds.

        When other processes keep the database busy past the busy timeout the
        records stay in memory (bounded like the in-memory spool) and go in
        with the next ``add`` or at ``close``: contention never loses them."""
        if not records:
            return 0
        self._write(
            [
                (r.app, r.policy, r.signal, r.destination, r.payload, len(r.payload), r.created)
                for r in records
            ]
        )
        return len(records)

    def _write(self, new: list[tuple[str, str, str, str, str, int, float]]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's rows are the parent's
                self._unsaved, self._unsaved_dropped = [], 0
            rows, self._unsaved = self._unsaved + new, []
            dropped, self._unsaved_dropped = self._unsaved_dropped, 0

            def op(db: sqlite3.Connection) -> None:
                with self._tx(db):
                    db.executemany(
                        "INSERT INTO records"
                        " (app, policy, signal, destination, payload, size, created)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    self._bump(db, "dropped_full", dropped)
                    self._enforce_bounds(db)

            try:
                self._do(op)
            except sqlite3.OperationalError as exc:
                if not any(word in str(exc).lower() for word in _BUSY):
                    raise
                keep = rows[-MEMORY_MAX_RECORDS:]
                self._unsaved = keep
                self._unsaved_dropped = dropped + len(rows) - len(keep)

    def _enforce_bounds(self, db: sqlite3.Connection) -> None:
        lim = self.limits
        cut = time.time() - lim.max_age_s
        n = db.execute("DELETE FROM records WHERE created < ?", (cut,)).rowcount
        self._bump(db, "dropped_age", n)
        count, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM records").fetchone()
        if count > lim.max_records:
            n = db.execute(
                "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id LIMIT ?)",
                (count - lim.max_records,),
            ).rowcount
            self._bump(db, "dropped_full", n)
            size = db.execute("SELECT coalesce(sum(size), 0) FROM records").fetchone()[0]
        if size > lim.max_bytes:
            # oldest first, until under the byte bound
            over, ids = size - lim.max_bytes, []
            for rid, rsize in db.execute("SELECT id, size FROM records ORDER BY id"):
                ids.append(rid)
                over -= rsize
                if over <= 0:
                    break
            self._delete(db, ids)
            self._bump(db, "dropped_full", len(ids))

    @staticmethod
    def _bump(db: sqlite3.Connection, key: str, n: int) -> None:
        if n > 0:
            db.execute(
                "INSERT INTO stats (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (key, n),
            )

    @staticmethod
    def _delete(db: sqlite3.Connection, ids: Iterable[int]) -> int:
        ids = list(ids)
        n = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            n += db.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk).rowcount
        return n

    def count_drop(self, key: str, n: int = 1) -> None:
        self._do(lambda db: self._bump(db, key, n))

    # -- sending ----------------------------------------------------------------

    def claim(
        self, destination: str, owner: str, limit: int, lease_s: float, due_only: bool = True
    ) -> list[Row]:
        """Lease up to ``limit`` due rows of ``destination`` to ``owner``
        (``due_only=False``: also rows still backing off, for ``optel flush``)."""

        def op(db: sqlite3.Connection) -> list[Row]:
            now = time.time()
            due_by = now if due_only else float("inf")
            with self._tx(db):
                self._free_dead_leases(db, now)
                rows = [
                    Row(*r)
                    for r in db.execute(
                        f"SELECT {_COLUMNS} FROM records WHERE destination = ?"
                        " AND next_attempt <= ? AND lease_until < ? ORDER BY id LIMIT ?",
                        (destination, due_by, now, limit),
                    )
                ]
                if rows:
                    marks = ",".join("?" * len(rows))
                    db.execute(
                        f"UPDATE records SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})",
                        [owner, now + lease_s, *[r.id for r in rows]],
                    )
            return rows

        return self._do(op)

    @staticmethod
    def _free_dead_leases(db: sqlite3.Connection, now: float) -> None:
        # A sender killed mid-send (SIGKILL, power cut) leaves its lease behind;
        # when its process is gone its rows are free at once rather than after
        # the lease: at worst the server had them and gets a duplicate.
        owners = [
            o
            for (o,) in db.execute(
                "SELECT DISTINCT lease_owner FROM records WHERE lease_until >= ?", (now,)
            )
        ]
        for owner in owners:
            pid = _owner_pid(owner)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                db.execute(
                    "UPDATE records SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ?",
                    (owner,),
                )

    def ack(self, rows: Sequence[Row], audit: bool = True) -> None:
        """The destination accepted ``rows``: remove them, log them as sent."""
        if not rows:
            return
        now = time.time()

        def op(db: sqlite3.Connection) -> None:
            with self._tx(db):
                self._delete(db, [r.id for r in rows])
                self._bump(db, "sent", len(rows))
                if audit:
                    db.executemany(
                        "INSERT INTO sent (time, destination, app, payload) VALUES (?, ?, ?, ?)",
                        [(now, r.destination, r.app, r.payload) for r in rows],
                    )
                    # bounded: the newest entries only
                    db.execute(
                        "DELETE FROM sent WHERE id <= (SELECT max(id) FROM sent) - ?",
                        (self.limits.max_sent_log,),
                    )

        self._do(op)

    def retry_later(self, rows: Sequence[Row], delay_s: float, error: str) -> None:
        """Keep ``rows`` for another attempt after ``delay_s``."""
        if not rows:
            return

        def op(db: sqlite3.Connection) -> None:
            marks = ",".join("?" * len(rows))
            with self._tx(db):
                db.execute(
                    f"UPDATE records SET attempts = attempts + 1, next_attempt = ?, lease_until = 0,"
                    f" lease_owner = NULL, last_error = ? WHERE id IN ({marks})",
                    [time.time() + delay_s, error[:500], *[r.id for r in rows]],
                )
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_error', ?)",
                    (f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {error[:300]}",),
                )

        self._do(op)

    def release(self, rows: Sequence[Row]) -> None:
        """Give leased rows back untouched (e.g. the exit budget ran out)."""
        if not rows:
            return
        marks = ",".join("?" * len(rows))
        self._do(
            lambda db: db.execute(
                f"UPDATE records SET lease_until = 0, lease_owner = NULL WHERE id IN ({marks})",
                [r.id for r in rows],
            )
        )

    def release_owner(self, owner: str) -> int:
        """Give back every lease ``owner`` holds (its sender was cut off at exit)."""
        return int(
            self._do(
                lambda db: (
                    db.execute(
                        "UPDATE records SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ?",
                        (owner,),
                    ).rowcount
                )
            )
        )

    def drop(self, rows: Sequence[Row], reason: str) -> None:
        """Remove rows that can never be delivered, counting them under ``reason``."""
        if not rows:
            return

        def op(db: sqlite3.Connection) -> None:
            with self._tx(db):
                self._delete(db, [r.id for r in rows])
                self._bump(db, f"dropped_{reason}", len(rows))

        self._do(op)

    def purge(self, app: str | None = None) -> int:
        """Delete what waits (for ``app``, or everything): used by opt-out."""
        if app is None:
            return int(self._do(lambda db: db.execute("DELETE FROM records").rowcount))
        return int(
            self._do(lambda db: db.execute("DELETE FROM records WHERE app = ?", (app,)).rowcount)
        )

    # -- reading ------------------------------------------------------------------

    def pending(self, destination: str | None = None, limit: int = 1000) -> list[Row]:
        """Rows waiting (for ``destination``, or all), oldest first."""
        if destination is None:
            sql, args = f"SELECT {_COLUMNS} FROM records ORDER BY id LIMIT ?", (limit,)
        else:
            sql = f"SELECT {_COLUMNS} FROM records WHERE destination = ? ORDER BY id LIMIT ?"
            args = (destination, limit)  # type: ignore[assignment]
        return self._do(lambda db: [Row(*r) for r in db.execute(sql, args)])

    def sent_log(self, limit: int = 100) -> list[tuple[float, str, str, str]]:
        """The newest ``limit`` entries of the audit log, oldest first."""
        rows = self._do(
            lambda db: list(
                db.execute(
                    "SELECT time, destination, app, payload FROM sent ORDER BY id DESC LIMIT ?",
                    (limit,),
                )
            )
        )
        return rows[::-1]

    def count(self, app: str | None = None) -> int:
        """Records waiting (for ``app``, or all)."""
        if app is None:
            return int(
                self._do(lambda db: db.execute("SELECT count(*) FROM records").fetchone()[0])
            )
        return int(
            self._do(
                lambda db: db.execute(
                    "SELECT count(*) FROM records WHERE app = ?", (app,)
                ).fetchone()[0]
            )
        )

    def stats(self) -> dict[str, int]:
        """Counters: ``sent`` and ``dropped_<reason>``."""
        return self._do(lambda db: dict(db.execute("SELECT key, value FROM stats")))

    def last_error(self) -> str | None:
        """The last delivery or spool error, with its UTC time."""
        row = self._do(
            lambda db: db.execute("SELECT value FROM meta WHERE key = 'last_error'").fetchone()
        )
        if self.in_memory:
            return f"spool {self.path} cannot be written: records kept in memory for this run"
        return row[0] if row else None

    def clear_last_error(self) -> None:
        """Forget the last error: a delivery that then succeeded made it old news."""
        self._do(lambda db: db.execute("DELETE FROM meta WHERE key = 'last_error'"))

    def destinations_due(self) -> list[str]:
        """Destinations with rows waiting."""
        return self._do(
            lambda db: [d for (d,) in db.execute("SELECT DISTINCT destination FROM records")]
        )
