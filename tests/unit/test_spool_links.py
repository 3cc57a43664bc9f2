"""A spool file that is a symbolic link (or not a regular file) is never used.

SQLite follows links (Python's sqlite3 cannot ask for SQLITE_OPEN_NOFOLLOW):
before this, optel chmod-ed another program's database to 0600 and wrote
its tables into it, created the file a dangling link named, and moved a link
to a non-database aside as if it were its own spool.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from optel import _errors, config, consent, env
from optel.spool import NewRecord, Spool
from tests.conftest import another_programs_database, sha256_of


def _record() -> NewRecord:
    return NewRecord("tool", "opt-in", "event", ("otlp",), '{"signal":"event"}', time.time())


def _use(path: Path) -> Spool:
    spool = Spool(str(path))
    spool.add([_record()])
    spool.pending()
    spool.checkpoint()
    return spool


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_errors, "_warned", set())


def test_a_link_to_another_programs_database_is_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "app.db"
    before = another_programs_database(other)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "spool.sqlite3").symlink_to(other)
    spool = _use(home / "spool.sqlite3")
    assert spool.in_memory and spool.count() == 1  # this run's records, kept in memory
    assert "symbolic link" in (spool.last_error() or "")
    spool.close()
    assert sha256_of(other) == before and stat.S_IMODE(other.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "home"]  # no -wal beside it
    assert sorted(p.name for p in home.iterdir()) == ["spool.sqlite3"]  # the link, not moved
    assert os.readlink(home / "spool.sqlite3") == str(other)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optel: not using the spool:"), err
    assert f"is a symbolic link to {other}" in err


def test_a_dangling_link_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "made-through-the-link"
    (tmp_path / "spool.sqlite3").symlink_to(target)
    _use(tmp_path / "spool.sqlite3").close()
    assert not target.exists()
    assert not list(tmp_path.glob("made-through-the-link*"))


def test_a_link_to_a_file_that_is_not_a_database_is_not_moved_aside(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 100)
    (tmp_path / "spool.sqlite3").symlink_to(notes)
    _use(tmp_path / "spool.sqlite3").close()
    assert notes.read_text() == "my notes, not a database\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "spool.sqlite3"]


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_link_as_the_spools_log_is_refused_too(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    Spool(str(tmp_path / "spool.sqlite3")).close()  # a real spool
    (tmp_path / f"spool.sqlite3{suffix}").unlink(missing_ok=True)
    (tmp_path / f"spool.sqlite3{suffix}").symlink_to(target)
    spool = _use(tmp_path / "spool.sqlite3")
    # (SQLite refuses a linked log itself, but optel then said the spool "cannot be written")
    assert spool.in_memory and "symbolic link" in (spool.last_error() or "")
    spool.close()
    assert target.read_bytes() == b""


def test_a_fifo_named_spool_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "spool.sqlite3")
    start = time.monotonic()
    spool = _use(tmp_path / "spool.sqlite3")
    assert spool.in_memory and time.monotonic() - start < 10
    assert "not a regular file" in (spool.last_error() or "")
    spool.close()


def test_opt_out_never_opens_a_linked_spool(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    before = another_programs_database(other)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "spool.sqlite3").symlink_to(other)
    p = config.paths({env.OPTEL_HOME: str(home)})
    assert consent.take_effect(consent.DENIED, None, p) == 0
    assert sha256_of(other) == before and (home / "spool.sqlite3").is_symlink()
