"""The spool: records kept once with a delivery per destination, leases between
senders, bounds, the audit log, schema-1 rows migrated, and a damaged file survived."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from optel import spool as spool_mod
from optel.spool import Limits, NewRecord, Spool


def _records(
    n: int, destination: str | tuple[str, ...] = "otlp", app: str = "tool", size: int = 10
) -> list[NewRecord]:
    dests = (destination,) if isinstance(destination, str) else destination
    return [NewRecord(app, "opt-in", "span", dests, f"{i:0{size}d}", time.time()) for i in range(n)]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(str(tmp_path / "data" / "spool.sqlite3"))
    yield s
    s.close()


def test_two_senders_never_claim_the_same_row(spool: Spool) -> None:
    spool.add(_records(10))
    a = spool.claim("otlp", "1-a", 6, lease_s=60)
    b = spool.claim("otlp", "1-b", 6, lease_s=60)
    assert len(a) == 6 and len(b) == 4
    assert not {r.id for r in a} & {r.id for r in b}
    assert spool.claim("otlp", "1-c", 6, lease_s=60) == []  # all leased


def test_ack_removes_and_audits_retry_later_keeps(spool: Spool) -> None:
    spool.add(_records(3))
    rows = spool.claim("otlp", "1-a", 10, lease_s=60)
    spool.ack(rows[:1])
    spool.retry_later(rows[1:2], delay_s=3600, error="http_503")
    spool.release(rows[2:])
    assert spool.count() == 2
    assert [p for _, _, _, p, _ in spool.sent_log()] == [rows[0].payload]
    assert "http_503" in (spool.last_error() or "")
    # the backing-off row is not due; flush (due_only=False) takes it anyway
    assert [r.id for r in spool.claim("otlp", "1-b", 10, lease_s=60)] == [rows[2].id]
    again = spool.claim("otlp", "1-c", 10, lease_s=60, due_only=False)
    assert [r.id for r in again] == [rows[1].id] and again[0].attempts == 1


def test_drop_is_counted_with_its_reason(spool: Spool) -> None:
    spool.add(_records(2))
    spool.drop(spool.claim("otlp", "1-a", 10, lease_s=60), "http_400")
    assert spool.count() == 0
    assert spool.stats()["dropped_http_400"] == 2


def test_an_expired_lease_frees_the_rows(spool: Spool) -> None:
    spool.add(_records(2))
    assert len(spool.claim("otlp", "1-a", 10, lease_s=0.0)) == 2
    time.sleep(0.01)
    assert len(spool.claim("otlp", "1-b", 10, lease_s=60)) == 2


def test_a_dead_senders_lease_is_freed_at_once(spool: Spool) -> None:
    spool.add(_records(3))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)  # exited and reaped: no such process any more
    assert len(spool.claim("otlp", f"{pid}-cafe", 10, lease_s=600)) == 3
    alive = spool.claim("otlp", f"{os.getppid()}-beef", 10, lease_s=600)
    assert len(alive) == 3  # taken from the dead one
    assert spool.claim("otlp", "flush-1", 10, lease_s=600) == []  # a live lease holds


def test_bounds_drop_oldest_first_and_count(tmp_path: Path) -> None:
    s = Spool(str(tmp_path / "s.sqlite3"), Limits(max_records=5, max_bytes=10**6))
    s.add(_records(8))
    assert [r.payload for r in s.pending()] == [f"{i:010d}" for i in range(3, 8)]
    assert s.stats()["dropped_full"] == 3
    b = Spool(str(tmp_path / "b.sqlite3"), Limits(max_records=100, max_bytes=50))
    b.add(_records(8))  # 10 bytes each: 5 fit
    assert b.count() == 5 and b.stats()["dropped_full"] == 3
    old = Spool(str(tmp_path / "o.sqlite3"), Limits(max_age_s=60))
    old.add([NewRecord("t", "opt-in", "span", ("otlp",), "x", time.time() - 120)])
    old.add(_records(1))
    assert old.count() == 1 and old.stats()["dropped_age"] == 1


def test_the_audit_log_is_bounded(tmp_path: Path) -> None:
    s = Spool(str(tmp_path / "s.sqlite3"), Limits(max_sent_log=4))
    for _ in range(3):
        s.add(_records(3))
        s.ack(s.claim("otlp", "1-a", 10, lease_s=60))
    log = s.sent_log(100)
    assert len(log) == 4
    assert s.stats()["sent"] == 9


def test_a_corrupt_file_is_moved_aside_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    s = Spool(str(path))
    s.add(_records(2))
    assert s.count() == 2
    assert list(tmp_path.glob("spool.sqlite3.corrupt-*"))
    assert "moved aside" in (s.last_error() or "")
    assert capsys.readouterr().err.count("optel:") == 1


def test_corruption_found_mid_run_is_survived(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    s = Spool(str(path))
    s.add(_records(2))
    s.close()
    with open(path, "r+b") as f:  # clobber the header and the first pages
        f.write(b"\xff" * 8192)
    s.add(_records(1))
    assert s.count() == 1
    assert list(tmp_path.glob("spool.sqlite3.corrupt-*"))


def test_a_full_disk_keeps_records_in_memory(
    spool: Spool, capsys: pytest.CaptureFixture[str]
) -> None:
    spool.add(_records(1))
    db = spool._conn()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from now on
    spool.add(_records(200, size=400))  # does not fit any more
    assert spool.in_memory
    assert spool.count() == 200  # nothing of this run lost
    rows = spool.claim("otlp", "1-a", 500, lease_s=60)
    spool.ack(rows)
    assert spool.count() == 0
    assert "cannot be written" in capsys.readouterr().err
    assert "in memory" in (spool.last_error() or "")


def test_a_read_only_spool_keeps_records_in_memory(spool: Spool) -> None:
    spool.add(_records(1))
    spool.close()
    # root ignores file modes, so open the file the way a read-only disk behaves
    spool._db = sqlite3.connect(
        f"file:{spool.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    spool.add(_records(3))
    assert spool.in_memory and spool.count() == 3


def test_an_unusable_folder_keeps_records_in_memory(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    s = Spool(str(tmp_path / "data" / "spool.sqlite3"))
    s.add(_records(2))
    assert s.in_memory and s.count() == 2


def test_a_busy_database_is_not_mistaken_for_damage(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.sqlite3")
    a, b = Spool(path), Spool(path, busy_timeout_s=0.05)
    a.add(_records(1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        b.add(_records(1))  # busy past its timeout: kept in memory, not raised, not lost
        assert a.count() == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not b.in_memory and not list(tmp_path.glob("*.corrupt-*"))
    b.add(_records(1))  # goes in together with the one the busy database refused
    assert a.count() == 3


def test_rows_a_busy_database_refused_are_written_at_close(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.sqlite3")
    a, b = Spool(path), Spool(path, busy_timeout_s=0.05)
    a.add(_records(1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    b.add(_records(2))
    holder.execute("ROLLBACK")
    holder.close()
    assert a.count() == 1
    b.close()
    assert a.count() == 3


def test_a_forked_child_opens_its_own_connection(spool: Spool) -> None:
    spool.add(_records(1))
    parent_db = spool._conn()
    spool._pid = -1  # what os.getpid() != self._pid means after fork
    assert spool._conn() is not parent_db
    assert spool.count() == 1


def test_the_in_memory_spool_is_bounded_like_the_queue(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    s = Spool(str(tmp_path / "data" / "spool.sqlite3"))  # default bounds: 10,000 records
    s.add(_records(spool_mod.MEMORY_MAX_RECORDS + 100))
    assert s.in_memory
    assert s.count() == spool_mod.MEMORY_MAX_RECORDS  # the host's memory is bounded
    assert s.stats()["dropped_full"] == 100  # oldest first, counted
    assert s.pending(limit=1)[0].payload == f"{100:010d}"
    big = Spool(str(tmp_path / "data" / "other.sqlite3"))
    big.add(_records(3, size=spool_mod.MEMORY_MAX_BYTES // 2 + 1))  # two do not fit
    assert big.count() == 1 and big.stats()["dropped_full"] == 2


def test_bound_drops_show_in_optel_status_json(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from optel import cli, config

    s = Spool(config.resolve().paths.spool, Limits(max_records=5, max_age_s=60))
    s.add([NewRecord("tool", "opt-in", "span", ("otlp",), "old", time.time() - 120)])
    s.add(_records(8))
    s.close()
    assert cli.main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["dropped"] == {"age": 1, "full": 3} and status["pending"] == 5


# -- one record, several destinations ------------------------------------------------


def test_a_record_is_kept_once_until_every_destination_took_it(spool: Spool) -> None:
    spool.add(_records(2, destination=("otlp", "ga4")))
    assert spool.count() == 2  # records, not deliveries
    assert sorted(r.destination for r in spool.pending()) == ["ga4", "ga4", "otlp", "otlp"]
    db = spool._conn()
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 2  # each body once
    spool.ack(spool.claim("otlp", "1-a", 10, lease_s=60))
    assert spool.count() == 2 and {r.destination for r in spool.pending()} == {"ga4"}
    spool.drop(spool.claim("ga4", "1-a", 1, lease_s=60), "http_400")
    assert spool.count() == 1  # the last delivery took its record with it
    spool.ack(spool.claim("ga4", "1-a", 10, lease_s=60))
    assert spool.count() == 0 and spool.pending() == []
    assert spool.stats() == {"sent": 3, "dropped_http_400": 1}


def test_totals_stay_true_through_every_way_out(tmp_path: Path) -> None:
    s = Spool(str(tmp_path / "s.sqlite3"), Limits(max_records=6, max_bytes=10**6))
    s.add(_records(4, destination=("otlp", "local"), app="a"))
    s.add(_records(4, destination=("otlp",), app="b"))  # bounds push out two of "a"
    assert s.purge("a") == 2
    s.ack(s.claim("otlp", "1-a", 1, lease_s=60))
    db = s._conn()
    entries, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM entries").fetchone()
    assert (s.count(), s.count("b")) == (entries, 3)
    assert db.execute("SELECT entries, bytes FROM totals").fetchone() == (entries, size)
    orphans = "SELECT count(*) FROM deliveries WHERE entry NOT IN (SELECT id FROM entries)"
    assert db.execute(orphans).fetchone()[0] == 0


def test_records_no_destination_wants_are_not_kept(spool: Spool) -> None:
    assert spool.add(_records(3, destination=())) == 0
    assert spool.count() == 0


# -- spools written by optel before schema 2 --------------------------------------------

SCHEMA_1 = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, policy TEXT NOT NULL,
    signal TEXT NOT NULL, destination TEXT NOT NULL, payload TEXT NOT NULL,
    size INTEGER NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0, lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0, last_error TEXT
);
CREATE INDEX records_due ON records (destination, next_attempt);
CREATE TABLE stats (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, destination TEXT NOT NULL,
    app TEXT NOT NULL, payload TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO stats VALUES ('sent', 7);
INSERT INTO sent (time, destination, app, payload) VALUES (1.0, 'otlp', 'old', '{"as":"sent"}');
"""


def _schema_1(path: Path, rows: list[tuple[str, str, str, int, float]]) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.executemany(
        "INSERT INTO records (app, policy, signal, destination, payload, size, created,"
        " attempts, next_attempt) VALUES (?, 'opt-in', 'span', ?, ?, 10, ?, ?, ?)",
        [
            (app, dest, payload, time.time(), attempts, due)
            for app, dest, payload, attempts, due in rows
        ],
    )
    db.commit()
    db.close()


def test_a_schema_1_spool_is_migrated_with_its_rendered_payloads(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    later = time.time() + 3600
    _schema_1(path, [("old", "otlp", '{"p":1}', 0, 0.0), ("old", "ga4", '{"p":2}', 3, later)])
    s = Spool(str(path))
    rows = s.pending()
    assert [(r.destination, r.payload, r.rendered, r.attempts) for r in rows] == [
        ("otlp", '{"p":1}', True, 0),
        ("ga4", '{"p":2}', True, 3),
    ]
    assert s.count() == 2 and s.stats() == {"sent": 7}
    assert s.claim("ga4", "1-a", 10, lease_s=60) == []  # its backoff came along
    s.ack(s.claim("otlp", "1-a", 10, lease_s=60))
    assert [(p, is_record) for _, _, _, p, is_record in s.sent_log()] == [
        ('{"as":"sent"}', False),
        ('{"p":1}', False),
    ]
    s.close()
    # the old table stays, empty: an older optel still running beside this one
    # keeps writing there, and the next open moves what it wrote
    _schema_1_rows = sqlite3.connect(path)
    _schema_1_rows.execute(
        "INSERT INTO records (app, policy, signal, destination, payload, size, created)"
        " VALUES ('old', 'opt-in', 'span', 'otlp', '{\"p\":3}', 7, ?)",
        (time.time(),),
    )
    _schema_1_rows.commit()
    _schema_1_rows.close()
    again = Spool(str(path))
    assert [(r.destination, r.payload) for r in again.pending()] == [
        ("ga4", '{"p":2}'),
        ("otlp", '{"p":3}'),
    ]
    again.close()


def test_a_claim_reads_its_rows_exactly_packed_or_one_by_one(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim fetches its batch packed in one SQLite step (see spool._PACKED);
    what it returns is field for field what a row-by-row fetch gives, for
    rows with and without an error, rendered or not, odd times, and rows
    whose text holds the separator (planted there: then it falls back)."""
    bodies = ['{"a":"é\\u2028"}', "x\x1ey", "p\x1fq", "", "{}" * 300]
    now = time.time()  # (older records would age out)
    created = [now, now - 0.1 - 0.2, now - 1e-7, now - 3600.123456789, float(int(now))]
    spool.add(
        [
            NewRecord("tool", "opt-in", "span", ("otlp", "ga4"), b, c)
            for b, c in zip(bodies, created)
        ]
    )
    spool.retry_later(spool.claim("ga4", "1-a", 2, lease_s=60), 0.0, "boom 'quoted' é")
    spool.release(spool.claim("ga4", "1-a", 9, lease_s=60))

    def both(dest: str) -> tuple[list[spool_mod.Row], list[spool_mod.Row]]:
        packed = spool.claim(dest, "1-a", 9, lease_s=60)
        spool.release(packed)
        with monkeypatch.context() as m:
            m.setattr(spool_mod, "_unpack", lambda packed: None)  # one by one
            plain = spool.claim(dest, "1-a", 9, lease_s=60)
        spool.release(plain)
        return packed, plain

    for dest in ("otlp", "ga4"):
        packed, plain = both(dest)
        assert packed == plain and len(packed) == 5
        assert [r.payload for r in packed] == bodies
        assert [r.created for r in packed] == created
    assert [r.last_error for r in both("ga4")[0]][:3] == ["boom 'quoted' é"] * 2 + [None]

    for dest in ("otlp", "ga4"):  # the packed path itself, on the rows it applies to
        clean = [r for r in both(dest)[0] if "\x1e" not in r.payload]
        packed_row = (
            spool._conn()
            .execute(
                f"SELECT {spool_mod._PACKED} FROM (SELECT {spool_mod._COLUMNS}"
                f" FROM {spool_mod._JOIN} WHERE d.destination = ? AND e.body NOT GLOB ?)",
                (dest, "*[\x1e]*"),
            )
            .fetchone()
        )
        assert spool_mod._unpack(packed_row) == clean and len(clean) == 4
    assert [r.last_error for r in clean] == ["boom 'quoted' é", None, None, None]


@pytest.mark.parametrize("windows", [True, False])
def test_the_audit_log_shows_the_newest_records_in_order_and_stores_whole_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: bool
) -> None:
    monkeypatch.setattr(spool_mod, "_WINDOWS", windows)  # old SQLite: the trim in Python
    s = Spool(str(tmp_path / "s.sqlite3"), Limits(max_sent_log=10))
    sent = []
    for size in (4, 7, 1, 5, 3):
        new = [f'{{"n":{len(sent) + i}}}' for i in range(size)]
        if size == 7:
            new[2] = '{"line":\n"break"}'  # a body no optel writes: kept intact anyway
        sent += new
        s.add([NewRecord("tool", "opt-in", "span", ("otlp",), b, time.time()) for b in new])
        s.ack(s.claim("otlp", "1-a", 10, lease_s=60))
    assert [p for _, _, _, p, _ in s.sent_log(100)] == sent[-10:]
    assert [p for _, _, _, p, _ in s.sent_log(3)] == sent[-3:]
    stored = sum(n for (n,) in s._conn().execute("SELECT n FROM sent"))
    assert stored == 3 + 5 + 1 + 7  # whole batches, the oldest kept one reaching past the bound


def test_without_sqlites_json_functions_id_lists_go_as_marks(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for json_each in (True, False):
        monkeypatch.setattr(spool_mod, "_json_each", lambda json_each=json_each: json_each)
        spool.add(_records(1200))  # more than one chunk of marks
        rows = spool.claim("otlp", "1-a", 1200, lease_s=60)
        assert len(rows) == 1200
        spool.release(rows[:100])
        spool.ack(rows[100:])
        again = spool.claim("otlp", "1-b", 2000, lease_s=60)  # the released ones only
        assert [r.id for r in again] == [r.id for r in rows[:100]]
        spool.ack(again)
        assert spool.count() == 0 and spool.waiting() == 0


def test_spools_opened_at_once_on_a_new_file_all_open(tmp_path: Path) -> None:
    """A tool's worker and a reader (optel status, a test) opening a new spool at
    the same moment: SQLite did not always wait for the switch to WAL, and 9 of
    180 such opens failed with 'database is locked'."""
    import threading

    errors: list[BaseException] = []
    for i in range(40):
        path = str(tmp_path / f"s{i}" / "spool.sqlite3")
        barrier = threading.Barrier(3)

        def open_one(path: str = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                s = Spool(path)
                s.pending()
                s.close()
            except BaseException as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_a_writer_leaves_copying_the_log_to_the_checkpoint_up_to_a_bound(spool: Spool) -> None:
    """SQLite makes the committing connection copy its log into the database
    past 1,000 pages; the spool's connection leaves that to Spool.checkpoint up
    to LOG_PAGES, and the log file is cut back after a copy."""
    spool.add(_records(1))
    db = spool._conn()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == spool_mod.LOG_PAGES > 1000
    assert db.execute("PRAGMA journal_size_limit").fetchone()[0] == spool_mod.LOG_KEEP_BYTES
    # the README's figures: a writer copies the log itself past 16 MB; cut back to 4 MB
    page = db.execute("PRAGMA page_size").fetchone()[0]
    assert spool_mod.LOG_PAGES * page == 16 * 2**20 and spool_mod.LOG_KEEP_BYTES == 4_000_000


def test_a_checkpoint_under_way_is_not_waited_for(spool: Spool) -> None:
    spool.add(_records(5))
    assert spool.changed == 5
    with spool.checkpoint_lock:  # another thread is copying the log
        started = time.monotonic()
        spool.checkpoint()
        assert time.monotonic() - started < 0.5
        assert spool.changed == 5  # left to the one under way
    spool.checkpoint()
    assert spool.changed == 0


def test_an_open_that_may_not_wait_leaves_a_locked_spool_for_later(tmp_path: Path) -> None:
    """The pipeline opens the spool on the host's thread at init only when no
    one holds its lock: the host's start never waits for another process."""
    path = tmp_path / "spool.sqlite3"
    Spool(str(path)).close()  # made by an earlier run
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    s = Spool(str(path), busy_timeout_s=5.0)
    try:
        started = time.monotonic()
        assert s.open(wait_s=0) is False
        assert time.monotonic() - started < 1.0  # not the busy timeout
        other.execute("COMMIT")
        assert s.open(wait_s=0) is True
        db = s._conn()
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # the usual wait again
        s.add(_records(3))
        assert s.waiting() == 3
    finally:
        other.close()
        s.close()
