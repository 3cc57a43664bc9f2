"""The spool: a durable, bounded queue on disk (SQLite in WAL mode).

It is the only hand-off between recording and sending. Each row is one
record rendered for one destination, exactly the bytes that will be sent,
with the app and policy it was recorded under (consent is checked again,
per record, just before sending). A row leaves the spool only when its
destination accepted it, when it ages out, or when the bounds push it out;
every drop is counted in ``stats``.

Several processes may share one spool: senders *claim* rows with a lease,
so two senders do not send the same row, and a sender that dies only lets
its lease expire (at worst a duplicate later, never a loss).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from . import _errors

SCHEMA = 1

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


class Spool:
    """One SQLite database file; safe to use from several threads and processes."""

    def __init__(self, path: str, limits: Limits | None = None, busy_timeout_s: float = 1.0):
        self.path = path
        self.limits = limits or Limits()
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()

    # -- connection -----------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is not None and self._pid == os.getpid():
            return self._db
        # a forked child must not reuse its parent's connection
        self._pid = os.getpid()
        self._db = None
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            self._move_aside(exc)
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # explicit transactions below
            check_same_thread=False,
        )
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_DDL)
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA),)
        )
        db.execute("SELECT count(*) FROM records").fetchone()  # proves it is readable
        return db

    def _move_aside(self, exc: Exception) -> None:
        aside = f"{self.path}.corrupt-{int(time.time())}"
        for suffix in ("", "-wal", "-shm"):
            try:
                os.replace(self.path + suffix, aside + suffix)
            except OSError:
                pass
        _errors.warn_once(
            "spool-corrupt",
            f"the spool {self.path} was unreadable ({exc}); moved it to {aside} and started afresh",
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- writing --------------------------------------------------------------

    def add(self, records: Sequence[NewRecord]) -> int:
        """Store records in one transaction, then enforce the bounds."""
        if not records:
            return 0
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO records (app, policy, signal, destination, payload, size, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.app, r.policy, r.signal, r.destination, r.payload, len(r.payload), r.created)
                        for r in records
                    ],
                )
                self._enforce_bounds(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(records)

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
        with self._lock:
            self._bump(self._conn(), key, n)

    # -- sending ----------------------------------------------------------------

    def claim(
        self, destination: str, owner: str, limit: int, lease_s: float, due_only: bool = True
    ) -> list[Row]:
        """Lease up to ``limit`` due rows of ``destination`` to ``owner``
        (``due_only=False``: also rows still backing off, for ``optel flush``)."""
        now = time.time()
        due_by = now if due_only else float("inf")
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
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
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return rows

    def ack(self, rows: Sequence[Row], audit: bool = True) -> None:
        """The destination accepted ``rows``: remove them, log them as sent."""
        if not rows:
            return
        now = time.time()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                self._delete(db, [r.id for r in rows])
                self._bump(db, "sent", len(rows))
                if audit:
                    db.executemany(
                        "INSERT INTO sent (time, destination, app, payload) VALUES (?, ?, ?, ?)",
                        [(now, r.destination, r.app, r.payload) for r in rows],
                    )
                    db.execute(
                        "DELETE FROM sent WHERE id <= (SELECT max(id) FROM sent) - ?",
                        (self.limits.max_sent_log,),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def retry_later(self, rows: Sequence[Row], delay_s: float, error: str) -> None:
        """Keep ``rows`` for another attempt after ``delay_s``."""
        if not rows:
            return
        with self._lock:
            db = self._conn()
            marks = ",".join("?" * len(rows))
            db.execute(
                f"UPDATE records SET attempts = attempts + 1, next_attempt = ?, lease_until = 0,"
                f" lease_owner = NULL, last_error = ? WHERE id IN ({marks})",
                [time.time() + delay_s, error[:500], *[r.id for r in rows]],
            )
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_error', ?)",
                (f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {error[:300]}",),
            )

    def release(self, rows: Sequence[Row]) -> None:
        """Give leased rows back untouched (e.g. the exit budget ran out)."""
        if not rows:
            return
        with self._lock:
            db = self._conn()
            marks = ",".join("?" * len(rows))
            db.execute(
                f"UPDATE records SET lease_until = 0, lease_owner = NULL WHERE id IN ({marks})",
                [r.id for r in rows],
            )

    def release_owner(self, owner: str) -> int:
        """Give back every lease ``owner`` holds (its sender was cut off at exit)."""
        with self._lock:
            return self._conn().execute(
                "UPDATE records SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ?",
                (owner,),
            ).rowcount

    def drop(self, rows: Sequence[Row], reason: str) -> None:
        """Remove rows that can never be delivered, counting them under ``reason``."""
        if not rows:
            return
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                self._delete(db, [r.id for r in rows])
                self._bump(db, f"dropped_{reason}", len(rows))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def purge(self, app: str | None = None) -> int:
        """Delete what waits (for ``app``, or everything): used by opt-out."""
        with self._lock:
            db = self._conn()
            if app is None:
                return db.execute("DELETE FROM records").rowcount
            return db.execute("DELETE FROM records WHERE app = ?", (app,)).rowcount

    # -- reading ------------------------------------------------------------------

    def pending(self, destination: str | None = None, limit: int = 1000) -> list[Row]:
        with self._lock:
            db = self._conn()
            if destination is None:
                cur = db.execute(f"SELECT {_COLUMNS} FROM records ORDER BY id LIMIT ?", (limit,))
            else:
                cur = db.execute(
                    f"SELECT {_COLUMNS} FROM records WHERE destination = ? ORDER BY id LIMIT ?",
                    (destination, limit),
                )
            return [Row(*r) for r in cur]

    def sent_log(self, limit: int = 100) -> list[tuple[float, str, str, str]]:
        with self._lock:
            cur = self._conn().execute(
                "SELECT time, destination, app, payload FROM sent ORDER BY id DESC LIMIT ?", (limit,)
            )
            return list(cur)[::-1]

    def count(self, app: str | None = None) -> int:
        with self._lock:
            db = self._conn()
            if app is None:
                return int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            return int(db.execute("SELECT count(*) FROM records WHERE app = ?", (app,)).fetchone()[0])

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn().execute("SELECT key, value FROM stats"))

    def last_error(self) -> str | None:
        with self._lock:
            row = self._conn().execute("SELECT value FROM meta WHERE key = 'last_error'").fetchone()
            return row[0] if row else None

    def destinations_due(self) -> list[str]:
        with self._lock:
            return [d for (d,) in self._conn().execute("SELECT DISTINCT destination FROM records")]
