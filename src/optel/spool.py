"""The spool: a durable, bounded queue on disk (SQLite in WAL mode).

It is the only hand-off between recording and sending. Each *entry* is one
anonymized record, kept once as compact JSON (cheap to write: a burst
reaches the disk fast, and no destination code runs on the way in), with
the app and policy it was recorded under (consent is checked again, per
record, just before sending). Each entry has one *delivery* per
destination; destinations render the record when they send it, with the
same code ``optel show`` uses. A delivery leaves only when its destination
accepted it, and an entry leaves with its last delivery, when it ages out,
or when the bounds push it out; every drop is counted in ``stats``.

Several processes may share one spool: senders *claim* deliveries with a
lease, so two senders do not send the same record, and a sender that dies
only lets its lease expire (at worst a duplicate later, never a loss); a
lease held by a process that no longer exists on this machine is freed at
once.

Trouble with the file itself never reaches the host, and is told once:

- corrupt (not a database, malformed): moved aside, a fresh spool started,
  the move noted as the spool's last error (``optel status``);
- cannot be written (read-only or full disk, unopenable folder): this
  process keeps its records in an in-memory spool instead, still sent
  within this run and its exit budget; what was already on disk stays
  there for a later run;
- a symbolic link (dangling or not), a FIFO, socket or device, itself or
  its ``-wal``/``-shm``: never opened, written through or moved aside (it
  is not ours); in memory as above.

What is deleted is overwritten (``secure_delete``); at opt-out
:meth:`Spool.purge` deletes a tool's (or every) record and its sent log,
and :meth:`Spool.wipe` leaves no copy in the files.

Schema 1 (optel before the entries/deliveries split) kept one row per record
*and* destination, holding the payload already rendered. Its rows are moved
into schema 2 when a spool is opened: each becomes an entry marked
``rendered`` (sent as it is, never rendered again) with one delivery. The
old table stays (empty), so an older optel still running beside this one
keeps working, and what it adds is moved at the next open.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import os
import sqlite3
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence, TypeVar

from . import _errors, _fs

SCHEMA = 2

# A connection copies SQLite's write-ahead log into the database itself (a
# sync of both files, on the committing thread) once the log holds this many
# pages, 1000 by default (https://www.sqlite.org/c3ref/wal_autocheckpoint.html).
# That took about 7 us of every record's write in a 10,000-record burst; the
# pipeline copies the log on a thread of its own instead (Spool.checkpoint),
# so a writer does it only past this (16 MB of 4 KB pages), when nothing else
# has. After a copy the log file is cut back to LOG_KEEP_BYTES
# (https://www.sqlite.org/pragma.html#pragma_journal_size_limit).
LOG_PAGES = 4096
LOG_KEEP_BYTES = 4_000_000

# Bounds of the in-memory spool a process falls back to when the file cannot
# be written: the host's memory, so a few MB at most.
MEMORY_MAX_RECORDS = 8192
MEMORY_MAX_BYTES = 8_000_000

# what becomes of the records of a run whose spool is in memory, as its warning says
_MEMORY_FATE = "sends them while it runs and as it exits; what is not sent by then is lost"

AGE_CHECK_S = 60.0  # records age in hours: look for old ones at most once a minute

# The totals (records, bytes) let the bounds be checked without scanning the
# table. Every statement that adds or removes entries goes through _insert and
# _remove_entries, which keep them (and the entry/delivery link) true in bulk:
# per-row triggers made acknowledging a batch 2.5x slower.
_DDL = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    policy TEXT NOT NULL,
    signal TEXT NOT NULL,
    body TEXT NOT NULL,
    rendered INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    entry INTEGER NOT NULL,
    destination TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (entry, destination)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries (lease_owner)
    WHERE lease_owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, entries, bytes) VALUES (0, 0, 0);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    destination TEXT NOT NULL,
    app TEXT NOT NULL,
    payload TEXT NOT NULL,
    record INTEGER NOT NULL DEFAULT 0,
    n INTEGER NOT NULL DEFAULT 1
);
"""

# what a row of the audit log (``sent``) holds
# a payload as sent; a record; a JSON array of records (their bodies as strings);
# records a line each
SENT_RENDERED, SENT_RECORD, SENT_RECORDS, SENT_LINES = 0, 1, 2, 3


def _dumps(record: Any) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


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


class NewRecord(NamedTuple):
    """One anonymized record to keep until each of ``destinations`` took it.
    (A named tuple: one is made per record recorded; a frozen dataclass took
    1.18 us to make, this 0.37 us, by ``python -m timeit``.)"""

    app: str
    policy: str
    signal: str
    destinations: tuple[str, ...]
    body: str
    """The record as compact JSON; destinations render it when they send it."""
    created: float


class Row(NamedTuple):
    """One delivery waiting: a record (``id`` is its entry) for one destination.
    (A named tuple: a claim makes hundreds at once, and a frozen dataclass
    took half of the time of reading a batch.)"""

    id: int
    app: str
    policy: str
    signal: str
    destination: str
    payload: str
    """The anonymized record as JSON; or, when ``rendered``, a payload already
    rendered for ``destination`` (spooled by an older optel), sent as it is."""
    created: float
    attempts: int
    last_error: str | None
    rendered: bool = False


_COLUMNS = (
    "e.id AS id, e.app AS app, e.policy AS policy, e.signal AS signal,"
    " d.destination AS destination, e.body AS body, e.created AS created,"
    " d.attempts AS attempts, d.last_error AS last_error, e.rendered AS rendered"
)
_JOIN = "deliveries d JOIN entries e ON e.id = d.entry"


def _row(r: Sequence[Any]) -> Row:
    return Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]))


# The rows a query selects, packed by SQLite into one row: each column's
# values joined into one text (RS, 0x1e, between texts; a comma between
# numbers). sqlite3 lets go of the GIL around every step (every row fetched),
# and while the host's thread is busy (a burst) taking it back can wait up to
# the switch interval (5 ms): fetching a batch of 512 rows one by one took
# 0.7-2.7 s then, against 2-14 ms packed, with another process keeping one of
# the machine's two cores busy (idle, the two were close).
# All the aggregates of one query see the rows in one order, so the columns
# line up. RS is a control character, which compact JSON never holds raw; a
# text that holds one anyway (a row not written by optel) makes its column
# longer than the count, and the rows are then fetched one by one.
_RS = "\x1e"
_INF = float("inf")
_PACKED = (
    "count(*), group_concat(id), group_concat(app, char(30)), group_concat(policy, char(30)),"
    " group_concat(signal, char(30)), group_concat(destination, char(30)),"
    " group_concat(body, char(30)), group_concat(printf('%!.17g', created)),"
    " group_concat(attempts), group_concat(ifnull('=' || last_error, ''), char(30)),"
    " group_concat(rendered)"
)


def _unpack(packed: Sequence[Any] | None) -> list[Row] | None:
    """Rows from a :data:`_PACKED` row; ``None`` when its columns do not split
    into as many values as it counted (a text holding the separator)."""
    if not packed or not packed[0]:
        return []
    count = packed[0]
    try:
        ids, apps, policies, signals, dests, bodies, created, attempts, errors, rendered = (
            text.split("," if i in (0, 6, 7, 9) else _RS) for i, text in enumerate(packed[1:])
        )
        columns = (
            list(map(int, ids)), apps, policies, signals, dests, bodies,
            list(map(float, created)), list(map(int, attempts)),
            [e[1:] if e else None for e in errors], [r != "0" for r in rendered],
        )  # fmt: skip
    except (AttributeError, ValueError):  # a NULL column; a number that is not one
        return None
    if any(len(c) != count for c in columns):
        return None
    rows = list(map(Row, *columns))
    rows.sort(key=_oldest_first)  # the order group_concat keeps is not promised
    return rows


_oldest_first = operator.itemgetter(0, 4)  # (id, destination)


def _select_rows(db: sqlite3.Connection, where: str, args: Sequence[Any]) -> list[Row]:
    """The rows of ``SELECT ... FROM deliveries JOIN entries WHERE``, oldest record
    first, in as few steps as possible (see :data:`_PACKED`); ``where`` may end
    in ``ORDER BY d.entry ... LIMIT``."""
    select = f"SELECT {_COLUMNS} FROM {_JOIN} WHERE {where}"
    rows = _unpack(db.execute(f"SELECT {_PACKED} FROM ({select})", args).fetchone())
    if rows is None:
        rows = [_row(r) for r in db.execute(select, args)]
    return rows


T = TypeVar("T")

# sqlite3 messages (https://www.sqlite.org/rescode.html) that mean the file
# cannot take writes now: SQLITE_READONLY, SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN
_UNWRITABLE = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")
# another connection holds the lock: wait or retry later, never a reason to move data
_BUSY = ("locked", "busy")


def _busy(exc: BaseException) -> bool:
    """Is ``exc`` SQLite saying another connection holds the lock (locked, busy)?"""
    text = str(exc).lower()
    return any(word in text for word in _BUSY)


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


def _marks(n: int) -> str:
    return ",".join("?" * n)


# Bound parameters one statement may hold (SQLITE_MAX_VARIABLE_NUMBER: 32766
# since SQLite 3.32, 999 before).
_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_WINDOWS = sqlite3.sqlite_version_info >= (3, 25, 0)  # window functions


def _insert_many(db: sqlite3.Connection, into: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert ``rows`` with as few statements as the parameter limit allows;
    the rowid of the last one.

    Why so few statements: sqlite3 lets go of the GIL around each step (each
    row of ``executemany``, each statement), and while the host's thread is
    busy (a burst) taking it back waits up to the switch interval (5 ms); a
    multi-row statement steps once."""
    last = 0
    if not rows:
        return last
    width = len(rows[0])
    per = max(1, min(2000, _MAX_PARAMS // width))
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        part = rows[i : i + per]
        cur = db.execute(
            f"INSERT INTO {into} VALUES {','.join([one] * len(part))}",
            [v for row in part for v in row],
        )
        last = cur.lastrowid or 0
    return last


def _id_sets(ids: Sequence[int]) -> Iterator[tuple[str, list[Any]]]:
    """``ids`` as the right side of ``IN`` and its parameters: all of them in one
    JSON parameter (``json_each``), so the statement's text, and SQLite's
    prepared statement, is the same whatever the count (preparing a new
    statement lets go of the GIL like a step: see :func:`_insert_many`); or,
    where SQLite has no JSON functions, a list of marks per chunk."""
    if _json_each():
        yield "(SELECT value FROM json_each(?))", [json.dumps(list(ids))]
        return
    for chunk in _chunks(ids):
        yield f"({_marks(len(chunk))})", list(chunk)


@functools.cache
def _json_each() -> bool:
    """Does this SQLite have ``json_each`` (asked once)?"""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("SELECT value FROM json_each('[1]')").fetchall()
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


def _chunks(items: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def not_ours(path: str) -> str | None:
    """Why the file at ``path`` (or its ``-wal``/``-shm``) must not be used as a
    spool, or ``None``. A symbolic link is refused whatever it points at (SQLite
    follows links: it would write optel's tables into another program's
    database, or create the file a dangling link names, and put its log next
    to the target), and so is a FIFO, socket or device (a FIFO would block)."""
    for suffix in ("", "-wal", "-shm"):
        name = path + suffix
        try:
            st = os.lstat(name)
        except OSError:  # missing (created as a regular file), or the open says why
            continue
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(name)
            except OSError:
                target = "?"
            return f"{name} is a symbolic link to {target}"
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            # (a folder is simply a spool that cannot be written: SQLite says so)
            return f"{name} is not a regular file"
    return None


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
        self._next_age_check = 0.0
        self._last_lease = 0.0  # each claim's lease ends at its own time: it names the claim
        self._changed = 0  # rows written or removed since the last checkpoint
        self._checkpointing = threading.Lock()
        self.in_memory = False
        """True once the file could not be written and records are kept in memory."""
        self.refused: str | None = None
        """Why the file at ``path`` is not used at all (a link, a FIFO, a device)."""
        # records a busy database (another process writing past the busy timeout)
        # did not take: kept, bounded, and written with the next add or at close
        self._unsaved: list[NewRecord] = []
        self._unsaved_dropped = 0

    @property
    def lock(self) -> threading.RLock:
        """Held while this spool talks to SQLite (a fork waits for it: see the pipeline)."""
        return self._lock

    @property
    def checkpoint_lock(self) -> threading.Lock:
        """Held while :meth:`checkpoint` copies the log (a fork waits for it too)."""
        return self._checkpointing

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
        problem = not_ours(self.path)
        if problem:
            self._refuse(problem)
            assert self._db is not None
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
        """A connection set up (WAL, tables, migration). Connections of several
        processes (a tool's worker, ``optel status``, a test) opening a new
        spool at once can find it locked, and SQLite does not always wait for
        that (switching to WAL: 9 of 180 concurrent opens failed so): tried
        again until the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                return self._open_once(path)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _open_once(self, path: str) -> sqlite3.Connection:
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
                db.execute(f"PRAGMA wal_autocheckpoint={LOG_PAGES}")
                db.execute(f"PRAGMA journal_size_limit={LOG_KEEP_BYTES}")
                # what is deleted (sent, dropped, purged at opt-out) is overwritten
                # with zeros, not left in free pages (the default of some builds only)
                db.execute("PRAGMA secure_delete=ON")
            db.executescript(_DDL)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA),)
            )
            db.execute("SELECT entries FROM totals").fetchone()  # proves it is readable
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: sqlite3.DatabaseError) -> bool:
        """Make the spool usable again after ``exc``; ``False``: nothing to do but raise."""
        if _busy(exc):
            return False
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None
        if self.in_memory:
            return False  # the in-memory spool failed: a real bug, let the guard see it
        text = str(exc).lower()
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

    def _memory(self) -> None:
        self.in_memory = True
        # memory is the host's: bounded like the queue, oldest dropped first (counted)
        self.limits = replace(
            self.limits,
            max_records=min(self.limits.max_records, MEMORY_MAX_RECORDS),
            max_bytes=min(self.limits.max_bytes, MEMORY_MAX_BYTES),
        )
        self._db = self._open(":memory:")

    def _to_memory(self, exc: BaseException) -> None:
        self._memory()
        _errors.warn_once(
            "spool-unwritable",
            f"the spool {self.path} cannot be written ({exc}); this run keeps its"
            f" records in memory and {_MEMORY_FATE}",
        )

    def _refuse(self, problem: str) -> None:
        """Not a file optel may use as its spool: never opened, written through
        or moved aside (it is not ours); this run keeps its records in memory."""
        self.refused = problem
        self._memory()
        _errors.warn_once(
            "spool-refused",
            f"not using the spool: {problem}; optel never writes through a link nor into a"
            f" file it did not make, so this run keeps its records in memory and {_MEMORY_FATE}",
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

    def open(self, wait_s: float | None = None) -> bool:
        """Connect now (creating the file and its tables), not at the first write.
        ``wait_s``: how long another connection's lock is waited for, instead of
        the busy timeout; ``False`` when it was held that long (left for later)."""
        if wait_s is None:
            self._do(lambda db: None)
            return True
        with self._lock:
            usual, self._busy_timeout_s = self._busy_timeout_s, wait_s
            try:
                db = self._conn()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                return False
            finally:
                self._busy_timeout_s = usual
            db.execute(f"PRAGMA busy_timeout = {int(usual * 1000)}")
            return True

    @property
    def changed(self) -> int:
        """Records this process wrote or removed since the last :meth:`checkpoint`."""
        return self._changed

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database now, without waiting for
        anyone (the pipeline calls it on a thread of its own; one already under
        way does it, and this returns): the last connection to close copies
        what is left, and at exit that time is the host's (a burst's log took
        50-100 ms to copy at close)."""
        if self.in_memory or not_ours(self.path):
            return
        if not self._checkpointing.acquire(blocking=False):
            return
        try:
            self._changed = 0
            # a connection of its own: the writing one goes on meanwhile
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # busy or unwritable: the next quiet moment, or the close, does it
            finally:
                db.close()  # not the last connection (ours is open): no checkpoint here
        finally:
            self._checkpointing.release()

    def close(self) -> None:
        with self._lock:
            if self._unsaved and self._pid == os.getpid():
                with _errors.guard("spool-close"):
                    self._write([])  # one more try for records a busy database refused
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- writing --------------------------------------------------------------

    def add(self, records: Sequence[NewRecord]) -> int:
        """Store records in one transaction, then enforce the bounds.

        When other processes keep the database busy past the busy timeout the
        records stay in memory (bounded like the in-memory spool) and go in
        with the next ``add`` or at ``close``: contention never loses them."""
        records = [r for r in records if r.destinations]  # none wants it: nothing to keep
        if not records:
            return 0
        self._write(records)
        return len(records)

    @property
    def unsaved(self) -> int:
        """Records a busy database has not taken yet (written with the next add)."""
        return len(self._unsaved)

    def _write(self, new: list[NewRecord]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's records are the parent's
                self._unsaved, self._unsaved_dropped = [], 0
            records, self._unsaved = self._unsaved + new, []
            dropped, self._unsaved_dropped = self._unsaved_dropped, 0

            def op(db: sqlite3.Connection) -> None:
                self._changed += len(records)
                with self._tx(db):
                    totals = self._insert(db, records)
                    self._bump(db, "dropped_full", dropped)
                    self._enforce_bounds(db, totals)

            try:
                self._do(op)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                keep = records[-MEMORY_MAX_RECORDS:]
                self._unsaved = keep
                self._unsaved_dropped = dropped + len(records) - len(keep)

    @staticmethod
    def _insert(db: sqlite3.Connection, records: Sequence[NewRecord]) -> tuple[int, int] | None:
        """Insert ``records``; the totals after it, when SQLite could say at once."""
        if not records:
            return None
        # Inside one transaction (this connection holds the write lock) the
        # ids come out consecutive: the deliveries go in with one call too.
        rows = [(r.app, r.policy, r.signal, r.body, len(r.body), r.created) for r in records]
        last = _insert_many(db, "entries (app, policy, signal, body, size, created)", rows)
        first = last - len(records) + 1
        _insert_many(
            db,
            "deliveries (entry, destination)",
            [(first + i, d) for i, r in enumerate(records) for d in r.destinations],
        )
        added = (len(rows), sum(r[4] for r in rows))
        if _RETURNING:
            got = db.execute(
                "UPDATE totals SET entries = entries + ?, bytes = bytes + ? WHERE id = 0"
                " RETURNING entries, bytes",
                added,
            ).fetchone()
            return (int(got[0]), int(got[1])) if got else None
        db.execute("UPDATE totals SET entries = entries + ?, bytes = bytes + ? WHERE id = 0", added)
        return None

    def _enforce_bounds(
        self, db: sqlite3.Connection, totals: tuple[int, int] | None = None
    ) -> None:
        lim = self.limits
        now = time.time()
        if now >= self._next_age_check:
            self._next_age_check = now + AGE_CHECK_S
            n, _ = _remove_entries(db, "created < ?", (now - lim.max_age_s,))
            self._bump(db, "dropped_age", n)
            totals = None if n else totals
        if totals is None:
            totals = db.execute("SELECT entries, bytes FROM totals").fetchone()
        count, size = totals
        if count > lim.max_records:
            n, gone = _remove_entries(
                db,
                "id IN (SELECT id FROM entries ORDER BY id LIMIT ?)",
                (count - lim.max_records,),
            )
            self._bump(db, "dropped_full", n)
            size -= gone
        if size > lim.max_bytes:
            # oldest first, until under the byte bound
            over, last = size - lim.max_bytes, None
            for rid, rsize in db.execute("SELECT id, size FROM entries ORDER BY id"):
                last = rid
                over -= rsize
                if over <= 0:
                    break
            if last is not None:
                n, _ = _remove_entries(db, "id <= ?", (last,))
                self._bump(db, "dropped_full", n)

    @staticmethod
    def _bump(db: sqlite3.Connection, key: str, n: int) -> None:
        if n > 0:
            db.execute(
                "INSERT INTO stats (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (key, n),
            )

    def count_drop(self, key: str, n: int = 1) -> None:
        self._do(lambda db: self._bump(db, key, n))

    # -- sending ----------------------------------------------------------------

    def claim(
        self, destination: str, owner: str, limit: int, lease_s: float, due_only: bool = True
    ) -> list[Row]:
        """Lease up to ``limit`` due deliveries to ``destination`` to ``owner``
        (``due_only=False``: also those still backing off, for ``optel flush``)."""

        def op(db: sqlite3.Connection) -> list[Row]:
            now = time.time()
            due_by = now if due_only else float("inf")
            # One statement leases the batch (atomic on its own), a second reads
            # it back by its lease, which no other claim shares: few statements,
            # since each lets go of the GIL (see _insert_many), and a claim while
            # the host's thread is busy waits for it each time.
            until = self._last_lease = max(now + lease_s, math.nextafter(self._last_lease, _INF))
            lease = (
                "UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE destination = ?"
                " AND entry IN (SELECT entry FROM deliveries WHERE destination = ?"
                " AND next_attempt <= ? AND lease_until < ? ORDER BY entry LIMIT ?)"
            )
            args = (owner, until, destination, destination, due_by, now)
            taken = db.execute(lease, (*args, limit)).rowcount
            if taken < limit and self._free_dead_leases(db, now):
                taken += db.execute(lease, (*args, limit - taken)).rowcount
            if not taken:
                return []
            return _select_rows(
                db,
                "d.destination = ? AND d.lease_owner = ? AND d.lease_until = ? ORDER BY d.entry",
                (destination, owner, until),
            )

        return self._do(op)

    @staticmethod
    def _free_dead_leases(db: sqlite3.Connection, now: float) -> int:
        """Free the leases of senders whose process is gone; how many.

        A sender killed mid-send (SIGKILL, power cut) leaves its lease behind;
        when its process is gone its rows are free at once rather than after
        the lease: at worst the server had them and gets a duplicate. (Looked
        for when a claim finds fewer rows than it asked for.)"""
        owners = [
            o
            for (o,) in db.execute(
                "SELECT DISTINCT lease_owner FROM deliveries"
                " WHERE lease_owner IS NOT NULL AND lease_until >= ?",
                (now,),
            )
        ]
        freed = 0
        for owner in owners:
            pid = _owner_pid(owner)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                freed += db.execute(
                    "UPDATE deliveries SET lease_until = 0, lease_owner = NULL"
                    " WHERE lease_owner = ?",
                    (owner,),
                ).rowcount
        return freed

    def _each_destination(
        self, db: sqlite3.Connection, rows: Sequence[Row], sql: str, *args: Any
    ) -> int:
        """Run ``sql`` (ending in ``destination = ? AND entry IN``) for ``rows``."""
        by_dest: dict[str, list[int]] = {}
        for r in rows:
            by_dest.setdefault(r.destination, []).append(r.id)
        n = 0
        for dest, ids in by_dest.items():
            for marks, params in _id_sets(ids):
                n += db.execute(f"{sql} {marks}", [*args, dest, *params]).rowcount
        return n

    def ack(self, rows: Sequence[Row], audit: bool = True) -> None:
        """The destination accepted ``rows``: remove them, log them as sent."""
        if not rows:
            return
        now = time.time()

        def op(db: sqlite3.Connection) -> None:
            with self._tx(db):
                if audit:
                    self._log_sent(db, rows, now)
                n = self._done(db, rows)
                self._bump(db, "sent", n)

        self._do(op)

    def _log_sent(self, db: sqlite3.Connection, rows: Sequence[Row], now: float) -> None:
        """Add ``rows`` to the audit log: records of one app and destination as one
        row (their bodies a line each, nothing parsed or escaped), a payload an
        older optel rendered as a row of its own. The log keeps at least the
        newest ``max_sent_log`` records (:meth:`sent_log` shows no more): whole
        rows go, so it holds at most a batch's worth more (each ack rewrote its
        oldest batch before, and that cost more than the rest of sending)."""
        keep = self.limits.max_sent_log
        batches: dict[tuple[str, str], list[str]] = {}
        single = []
        for r in rows[-keep:]:
            if r.rendered:
                single.append((now, r.destination, r.app, r.payload, SENT_RENDERED, 1))
            else:
                batches.setdefault((r.destination, r.app), []).append(r.payload)
        for (dest, app), bodies in batches.items():
            lines = "\n".join(bodies)
            if lines.count("\n") == len(bodies) - 1:
                single.append((now, dest, app, lines, SENT_LINES, len(bodies)))
            else:  # a body holding a line break (compact JSON never does): as JSON
                single.append((now, dest, app, _dumps(bodies), SENT_RECORDS, len(bodies)))
        _insert_many(db, "sent (time, destination, app, payload, record, n)", single)
        if _WINDOWS:  # the rows older than the newest that hold `keep` records, in one step
            db.execute(
                "DELETE FROM sent WHERE id < (SELECT min(id) FROM (SELECT id, n,"
                " sum(n) OVER (ORDER BY id DESC) AS upto FROM sent) WHERE upto - n < ?)",
                (keep,),
            )
            return
        total = 0
        for rid, n in list(db.execute("SELECT id, n FROM sent ORDER BY id DESC")):
            if total >= keep:
                db.execute("DELETE FROM sent WHERE id <= ?", (rid,))
                break
            total += n

    def _done(self, db: sqlite3.Connection, rows: Sequence[Row]) -> int:
        """Remove the deliveries of ``rows``, and each entry left with none."""
        self._changed += len(rows)
        n = self._each_destination(
            db, rows, "DELETE FROM deliveries WHERE destination = ? AND entry IN"
        )
        for marks, params in _id_sets(sorted({r.id for r in rows})):
            _remove_entries(
                db,
                f"id IN {marks} AND NOT EXISTS (SELECT 1 FROM deliveries WHERE entry = entries.id)",
                params,
                deliveries=False,
            )
        return n

    def retry_later(self, rows: Sequence[Row], delay_s: float, error: str) -> None:
        """Keep ``rows`` for another attempt after ``delay_s``."""
        if not rows:
            return

        def op(db: sqlite3.Connection) -> None:
            with self._tx(db):
                self._each_destination(
                    db,
                    rows,
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt = ?,"
                    " lease_until = 0, lease_owner = NULL, last_error = ?"
                    " WHERE destination = ? AND entry IN",
                    time.time() + delay_s,
                    error[:500],
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
        self._do(
            lambda db: self._each_destination(
                db,
                rows,
                "UPDATE deliveries SET lease_until = 0, lease_owner = NULL"
                " WHERE destination = ? AND entry IN",
            )
        )

    def release_owner(self, owner: str, wait: bool = True) -> int:
        """Give back every lease ``owner`` holds (its sender was cut off at exit).
        ``wait=False``: only if no other thread is using the spool right now
        (at exit: leases of a process that is gone are freed by the next
        sender anyway)."""
        if not self._lock.acquire(blocking=wait):
            return 0
        try:
            return int(
                self._do(
                    lambda db: (
                        db.execute(
                            "UPDATE deliveries SET lease_until = 0, lease_owner = NULL"
                            " WHERE lease_owner = ?",
                            (owner,),
                        ).rowcount
                    )
                )
            )
        finally:
            self._lock.release()

    def limit_waits(self, seconds: float) -> None:
        """Wait at most ``seconds`` for another process's write lock from now on
        (the exit's budget); what cannot go in by then stays in memory."""
        seconds = max(0.0, seconds)
        self._busy_timeout_s = seconds
        if not self._lock.acquire(timeout=seconds):
            return  # another thread is writing: its transaction ends soon anyway
        try:
            if self._db is not None and self._pid == os.getpid():
                self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        finally:
            self._lock.release()

    def drop(self, rows: Sequence[Row], reason: str) -> None:
        """Remove rows that can never be delivered, counting them under ``reason``."""
        if not rows:
            return

        def op(db: sqlite3.Connection) -> None:
            with self._tx(db):
                n = self._done(db, rows)
                self._bump(db, f"dropped_{reason}", n)

        self._do(op)

    def purge(self, app: str | None = None) -> int:
        """Delete what waits and the log of what was sent (for ``app``, its name
        compared case-insensitively, or everything): used by opt-out. The
        number of records that were waiting. What is deleted is overwritten
        (secure delete); :meth:`wipe` then clears the copies in the log files."""
        where, args = ("1", ()) if app is None else ("app = ? COLLATE NOCASE", (app,))

        def op(db: sqlite3.Connection) -> int:
            with self._tx(db):
                n = _remove_entries(db, where, args)[0]
                db.execute(f"DELETE FROM sent WHERE {where}", args)
                if db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'"
                ).fetchone():  # an older optel beside this one writes rows there
                    n += db.execute(f"DELETE FROM records WHERE {where}", args).rowcount
                return n

        return int(self._do(op))

    def wipe(self, timeout_s: float = 5.0) -> bool:
        """Leave no copy of deleted records in the files: rewrite the database
        without free pages (VACUUM), then copy SQLite's write-ahead log into
        it and truncate the log to nothing. Waits for other processes at most
        ``timeout_s`` (a process reading the spool keeps the log until it lets
        go; it is then copied and deleted by the last connection to close).
        ``True`` when the log was emptied."""
        if self.in_memory:
            return True
        end = time.monotonic() + max(0.0, timeout_s)

        def wait(db: sqlite3.Connection) -> None:
            left = max(0.0, end - time.monotonic())
            db.execute(f"PRAGMA busy_timeout = {int(min(left, 1.0) * 1000)}")

        def vacuum(db: sqlite3.Connection) -> None:
            wait(db)
            db.execute("VACUUM")

        try:
            self._do(vacuum)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            # another process is writing: the deleted rows are zeroed anyway

        def truncate(db: sqlite3.Connection) -> bool:
            wait(db)
            row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return row is not None and row[0] == 0

        try:
            while True:
                try:
                    if self._do(truncate):
                        return True
                except sqlite3.OperationalError as exc:
                    if not _busy(exc):
                        raise
                if time.monotonic() >= end:
                    return False
                time.sleep(0.05)
        finally:
            self._do(
                lambda db: db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            )

    # -- reading ------------------------------------------------------------------

    def pending(self, destination: str | None = None, limit: int = 1000) -> list[Row]:
        """Deliveries waiting (to ``destination``, or all), oldest record first."""
        where, args = ("WHERE d.destination = ?", (destination,)) if destination else ("", ())
        sql = f"SELECT {_COLUMNS} FROM {_JOIN} {where} ORDER BY d.entry, d.destination LIMIT ?"
        return self._do(lambda db: [_row(r) for r in db.execute(sql, (*args, limit))])

    def sent_log(self, limit: int = 100) -> list[tuple[float, str, str, str, bool]]:
        """The newest ``limit`` records of the audit log, oldest first: time,
        destination, app, payload, and whether that payload is the record
        (rendered for the destination to show it) rather than its rendering."""
        found: list[tuple[float, str, str, str, bool]] = []
        limit = min(limit, self.limits.max_sent_log)
        for t, d, a, p, kind in self._do(
            lambda db: list(
                db.execute(
                    "SELECT time, destination, app, payload, record FROM sent ORDER BY id DESC"
                )
            )
        ):
            if kind == SENT_LINES:
                texts = p.split("\n")
            elif kind == SENT_RECORDS:
                try:
                    texts = [str(body) for body in json.loads(p)]
                except ValueError:
                    continue
            else:
                texts = [p]
            for text in reversed(texts):
                found.append((t, d, a, text, kind != SENT_RENDERED))
            if len(found) >= limit:
                break
        return found[:limit][::-1]

    def waiting(self) -> int:
        """Deliveries waiting: a record for two destinations counts twice, as
        ``pending`` lists it."""
        return int(self._do(lambda db: db.execute("SELECT count(*) FROM deliveries").fetchone()[0]))

    def count(self, app: str | None = None) -> int:
        """Records waiting (for ``app``, its name compared case-insensitively, or all)."""
        if app is None:
            return int(self._do(lambda db: db.execute("SELECT entries FROM totals").fetchone()[0]))
        return int(
            self._do(
                lambda db: db.execute(
                    "SELECT count(*) FROM entries WHERE app = ? COLLATE NOCASE", (app,)
                ).fetchone()[0]
            )
        )

    def apps(self) -> dict[str, tuple[str | None, int]]:
        """Tools with deliveries waiting or rows in the sent log, by name in lower
        case (names compare case-insensitively): (the policy its newest waiting
        record was spooled under, ``None`` when none waits; deliveries waiting, counted
        as :meth:`waiting` counts them). Counted by SQLite, no row read here."""

        def op(db: sqlite3.Connection) -> dict[str, tuple[str | None, int]]:
            found: dict[str, tuple[str | None, int]] = {}
            # (a bare column beside max(): SQLite takes it from the newest record)
            for app, policy, _newest, n in db.execute(
                f"SELECT lower(e.app), e.policy, max(e.id), count(*) FROM {_JOIN}"
                " GROUP BY lower(e.app)"
            ):
                found[app] = (policy, int(n))
            for (app,) in db.execute("SELECT DISTINCT lower(app) FROM sent"):
                found.setdefault(app, (None, 0))
            return found

        return self._do(op)

    def stats(self) -> dict[str, int]:
        """Counters: ``sent`` and ``dropped_<reason>``."""
        return self._do(lambda db: dict(db.execute("SELECT key, value FROM stats")))

    def last_error(self) -> str | None:
        """The last delivery or spool error, with its UTC time."""
        row = self._do(
            lambda db: db.execute("SELECT value FROM meta WHERE key = 'last_error'").fetchone()
        )
        if self.refused:
            return f"spool not used: {self.refused}; records kept in memory for this run"
        if self.in_memory:
            return f"spool {self.path} cannot be written: records kept in memory for this run"
        return row[0] if row else None

    def clear_last_error(self) -> None:
        """Forget the last error: a delivery that then succeeded made it old news."""
        self._do(lambda db: db.execute("DELETE FROM meta WHERE key = 'last_error'"))

    def destinations_due(self) -> list[str]:
        """Destinations with records waiting."""
        return self._do(
            lambda db: [d for (d,) in db.execute("SELECT DISTINCT destination FROM deliveries")]
        )


def _remove_entries(
    db: sqlite3.Connection, where: str, args: Sequence[Any], deliveries: bool = True
) -> tuple[int, int]:
    """Delete the entries ``where`` selects, their deliveries (``False``: they
    have none left), and their part of the totals, inside the caller's
    transaction; (records, bytes) removed."""
    n, size = db.execute(
        f"SELECT count(*), coalesce(sum(size), 0) FROM entries WHERE {where}", args
    ).fetchone()
    if n:
        if deliveries:
            db.execute(
                f"DELETE FROM deliveries WHERE entry IN (SELECT id FROM entries WHERE {where})",
                args,
            )
        db.execute(f"DELETE FROM entries WHERE {where}", args)
        db.execute(
            "UPDATE totals SET entries = entries - ?, bytes = bytes - ? WHERE id = 0", (n, size)
        )
    return int(n), int(size)


def _migrate(db: sqlite3.Connection) -> None:
    """Move schema-1 rows (``records``: a rendered payload per destination) into
    entries and deliveries; the rows keep their payload, attempts and backoff."""
    tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {c[1] for c in db.execute("PRAGMA table_info(sent)")}
    if not {"record", "n"} <= columns:
        with Spool._tx(db):
            columns = {c[1] for c in db.execute("PRAGMA table_info(sent)")}
            # another process may have just added them
            if "record" not in columns:
                db.execute("ALTER TABLE sent ADD COLUMN record INTEGER NOT NULL DEFAULT 0")
            if "n" not in columns:
                db.execute("ALTER TABLE sent ADD COLUMN n INTEGER NOT NULL DEFAULT 1")
    if "records" not in tables:
        return
    if db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None:
        return
    with Spool._tx(db):
        old = list(
            db.execute(
                "SELECT id, app, policy, signal, destination, payload, created, attempts,"
                " next_attempt, last_error FROM records ORDER BY id"
            )
        )
        db.execute(
            "UPDATE totals SET entries = entries + ?, bytes = bytes + ? WHERE id = 0",
            (len(old), sum(len(r[5]) for r in old)),
        )
        for _, app, policy, signal, dest, payload, created, attempts, due, error in old:
            entry = db.execute(
                "INSERT INTO entries (app, policy, signal, body, rendered, size, created)"
                " VALUES (?, ?, ?, ?, 1, ?, ?)",
                (app, policy, signal, payload, len(payload), created),
            ).lastrowid
            db.execute(
                "INSERT INTO deliveries (entry, destination, attempts, next_attempt, last_error)"
                " VALUES (?, ?, ?, ?, ?)",
                (entry, dest, attempts, due, error),
            )
        for chunk in _chunks([r[0] for r in old]):
            db.execute(f"DELETE FROM records WHERE id IN ({_marks(len(chunk))})", chunk)
