"""Opt-out forgets: what the spool deletes leaves no copy in its SQLite files.

Some SQLite builds (this machine's) overwrite deleted content by default,
others (macOS, python.org's Windows builds) do not: the tests start every
connection with ``secure_delete`` off, as those builds do, so they show what
optel itself does.
"""

from __future__ import annotations

import glob
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from optel import _errors, config, consent, env
from optel.spool import NewRecord, Spool


@pytest.fixture(autouse=True)
def insecure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = sqlite3.connect

    def off(*args: Any, **kw: Any) -> sqlite3.Connection:
        db = connect(*args, **kw)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(sqlite3, "connect", off)


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "spool.sqlite3"


def _records(app: str, marker: str, n: int) -> list[NewRecord]:
    body = {"signal": "event", "name": "used", "attributes": {"note": ""}}
    return [
        NewRecord(
            app,
            "opt-in",
            "event",
            ("otlp",),
            json.dumps(dict(body, attributes={"note": f"{marker}{i:04d}" + "z" * 200})),
            time.time(),
        )
        for i in range(n)
    ]


def _hits(path: Path, marker: str) -> dict[str, int]:
    """Occurrences of ``marker`` in every byte of the spool's files."""
    found = {}
    for f in glob.glob(f"{path}*"):
        with open(f, "rb") as fh:
            found[Path(f).name] = fh.read().count(marker.encode())
    return found


def _filled(path: Path) -> Spool:
    spool = Spool(str(path))
    spool.add(_records("Tool", "SENTMARK", 60) + _records("other", "KEEPMARK", 20))
    spool.add(_records("TOOL", "WAITMARK", 60))
    spool.checkpoint()  # some of it in the database file, the rest in the log
    rows = spool.claim("otlp", "1-a", 1000, 60)
    spool.ack([r for r in rows if r.app == "Tool"])  # sent: gone from the queue, in the log
    spool.release([r for r in rows if r.app != "Tool"])
    return spool


def test_connections_overwrite_what_they_delete(path: Path) -> None:
    spool = Spool(str(path))
    spool.open()
    assert spool._conn().execute("PRAGMA secure_delete").fetchone()[0] == 1
    spool.close()


def test_a_refusal_for_one_tool_leaves_no_copy_of_its_records_in_any_file(path: Path) -> None:
    spool = _filled(path)
    assert spool.purge("tool") == 60  # names compared case-insensitively, as everywhere
    assert spool.count() == 20 and spool.count("OTHER") == 20
    assert all(app == "other" for _, _, app, _, _ in spool.sent_log())
    assert spool.wipe(5.0)
    assert (
        _hits(path, "SENTMARK")
        == _hits(path, "WAITMARK")
        == dict.fromkeys([path.name, path.name + "-wal", path.name + "-shm"], 0)
    )
    assert sum(_hits(path, "KEEPMARK").values()) > 0  # another tool's records stay
    spool.close()


def test_a_global_refusal_deletes_everything_and_the_whole_sent_log(path: Path) -> None:
    spool = _filled(path)
    rows = spool.claim("otlp", "1-b", 1000, 60)
    spool.ack([r for r in rows if r.app == "other"][:5])  # some of another tool's sent too
    spool.release(rows)
    assert {a for _, _, a, _, _ in spool.sent_log()} == {"Tool", "other"}
    assert spool.purge() == 75
    assert spool.count() == 0 and spool.sent_log() == []
    assert spool.wipe(5.0)
    for marker in ("SENTMARK", "WAITMARK", "KEEPMARK"):
        assert sum(_hits(path, marker).values()) == 0, marker
    spool.close()


def test_without_the_wipe_the_deleted_records_would_still_be_on_disk(path: Path) -> None:
    # the control for the tests above: deleting rows alone leaves their bytes
    spool = Spool(str(path))
    spool.add(_records("tool", "WAITMARK", 50))
    db = spool._conn()
    db.execute("PRAGMA secure_delete=OFF")
    db.execute("DELETE FROM entries")
    assert sum(_hits(path, "WAITMARK").values()) > 0
    spool.close()


def test_a_reader_holding_the_spool_delays_the_wipe_only_as_long_as_allowed(path: Path) -> None:
    spool = _filled(path)
    reader = sqlite3.connect(str(path), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entries").fetchone()  # holds its snapshot
    spool.purge("tool")
    start = time.monotonic()
    assert spool.wipe(0.5) is False  # the reader still needs the old pages
    assert time.monotonic() - start < 3.0
    reader.execute("COMMIT")
    reader.close()
    assert spool.wipe(5.0)  # let go: now nothing is left
    assert sum(_hits(path, "WAITMARK").values()) == 0
    spool.close()


def _paths(tmp_path: Path) -> config.Paths:
    return config.paths({env.OPTEL_HOME: str(tmp_path)})


def test_opt_out_with_another_process_writing_never_raises_nor_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optel.consent import effect

    monkeypatch.setattr(effect, "WIPE_WAIT_S", 0.3)
    monkeypatch.setattr(_errors, "_warned", set())
    p = _paths(tmp_path)
    spool = Spool(p.spool)
    spool.add(_records("tool", "WAITMARK", 5))
    writer = sqlite3.connect(p.spool, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock throughout
    try:
        start = time.monotonic()
        assert consent.take_effect(consent.DENIED, "tool", p) == 0
        assert time.monotonic() - start < 5.0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    err = capsys.readouterr().err
    assert err.count("optel: ") == 1 and "could not delete what waits" in err, err
    assert spool.count() == 5  # kept: senders drop it, since consent is refused
    spool.close()


def test_opt_out_deletes_the_tools_records_and_sent_log_in_any_case(tmp_path: Path) -> None:
    p = _paths(tmp_path)
    spool = _filled(Path(p.spool))
    spool.close()
    assert consent.take_effect(consent.DENIED, "TooL", p) == 60
    spool = Spool(p.spool)
    assert spool.count("tool") == 0 and spool.count() == 20
    assert [a for _, _, a, _, _ in spool.sent_log()] == []
    spool.close()
    assert sum(_hits(Path(p.spool), "SENTMARK").values()) == 0


def test_opt_out_with_a_reader_deletes_says_what_is_left_and_waits_no_longer_than_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optel.consent import effect

    monkeypatch.setattr(effect, "WIPE_WAIT_S", 0.5)
    monkeypatch.setattr(_errors, "_warned", set())
    p = _paths(tmp_path)
    spool = _filled(Path(p.spool))
    reader = sqlite3.connect(p.spool, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entries").fetchone()  # holds its snapshot
    try:
        start = time.monotonic()
        assert consent.take_effect(consent.DENIED, None, p) == 80
        assert time.monotonic() - start < 3.0
    finally:
        reader.execute("COMMIT")
        reader.close()
    err = capsys.readouterr().err
    assert err.count("optel: ") == 1 and "another process is reading the spool" in err, err
    assert spool.count() == 0
    spool.close()  # the last connection: it copies the log and deletes it
    assert sum(_hits(Path(p.spool), "WAITMARK").values()) == 0
