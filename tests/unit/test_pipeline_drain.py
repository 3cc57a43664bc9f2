"""The pipeline's drains: what a worker stopped for the exit gives back is spooled, and
a burst that runs ahead of the worker is scrubbed by the recording thread, not dropped."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import optel
from optel import delivery, testing
from optel import pipeline as pipeline_mod
from tests.conftest import Granted


def test_the_exit_takes_over_what_a_stopped_worker_gives_back(granted: Granted) -> None:
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    for i in range(300):
        t.event("used", i=i)
    # a worker holding 300 records, told to stop after the first 100, puts 200 back
    held = p._take(p._queue, 300)
    assert len(held) == 300

    def worker_gives_back() -> None:
        time.sleep(0.2)
        with p._settled:
            p._queue.extendleft(reversed(held[100:]))
            p._inflight -= len(held)
            p._settled.notify_all()

    helper = threading.Thread(target=worker_gives_back)
    helper.start()
    p.drain(deadline=time.monotonic() + 10)
    helper.join()
    assert p.queued == 0 and p._inflight == 0
    assert len(testing.pending()) == 200  # the 100 it kept were its to write: here, lost


def test_a_burst_beyond_the_help_mark_is_scrubbed_by_the_recording_thread(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_mod, "HELP_AT", (50, 50))
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()  # no worker: only the recording thread helps
    assert p._help_at == 50
    for i in range(1000):
        t.event("used", i=i)
    assert p.queued <= 50 + pipeline_mod.SLICE  # never far past the mark
    assert len(p._ready) >= 1000 - p.queued - 1  # the rest scrubbed, waiting to be written
    assert t.flush(0)
    assert len(testing.pending()) == 1000 and testing.stats() == {}  # none dropped


def test_home_is_untouched_by_a_drain_with_nothing_queued(granted: Granted, home: Path) -> None:
    t = granted()
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    assert p.drain() == 0
    assert optel.testing.pending() == []


def test_threads_asking_for_the_spool_at_once_share_one(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's preload and a short run's exit ask for the spool at the same
    moment; two Spool objects opened two connections that locked each other out
    while the tables were made, and the exit's records were lost (seen as
    'internal error in preload: OperationalError' and an empty spool)."""
    from optel import spool as spool_mod

    t = granted()
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    made: list[object] = []

    class SlowSpool(spool_mod.Spool):
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(self)
            time.sleep(0.2)  # the window the first import of sqlite3 opens
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spool_mod, "Spool", SlowSpool)
    p._spool = None
    got: list[object] = []
    askers = [threading.Thread(target=lambda: got.append(p.spool())) for _ in range(3)]
    for a in askers:
        a.start()
    for a in askers:
        a.join()
    assert len(made) == 1 and len(got) == 3 and all(s is made[0] for s in got)


def test_spooled_json_is_the_compact_encoders_text() -> None:
    # the encoder built once gives what json.dumps gives with the same options
    rec = {
        "name": "é\n\"\u2028", "t": 1.5e-9, "n": 2**70, "nan": float("nan"), "none": None,
        "nested": {"a": [True, False, 0.1, ("x",)]}, "odd": frozenset(), "": {},
    }  # fmt: skip
    want = json.dumps(rec, separators=(",", ":"), ensure_ascii=False, default=str)
    assert pipeline_mod._json(rec) == want


def test_records_read_back_past_the_ones_kept_share_one_parsed_resource(
    granted: Granted,
) -> None:
    # rows this process spooled, no longer kept as records, are parsed back
    # with the resource their records shared: one dict, equal to each text's own
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    for i in range(5):
        with t.tracer.start_as_current_span("convert", attributes={"i": i}):
            pass
        t.event("used", i=i)
    p.drain()
    p._spooled.records.clear()
    rows = p.spool().pending()
    got = [delivery.payload(row, p._spooled).record for row in rows]
    assert len(got) == 10 and all(r == json.loads(row.payload) for r, row in zip(got, rows))
    assert len({id(r["resource"]) for r in got}) == 1 and got[0]["resource"]


def test_a_slow_spool_close_at_exit_is_waited_for_within_the_budget_only(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the spool copies SQLite's log into the database (the last
    connection does): the exit waits for it until its budget ends, not longer,
    and the close still completes on its own."""
    from optel import spool as spool_mod

    t = granted(exit_budget_ms=300)
    p = testing.pipeline(t)
    assert p is not None
    t.event("used")
    closed = threading.Event()
    real_close = spool_mod.Spool.close

    def slow_close(self: spool_mod.Spool) -> None:
        time.sleep(1.5)
        real_close(self)
        closed.set()

    monkeypatch.setattr(spool_mod.Spool, "close", slow_close)
    started = time.monotonic()
    p.shutdown()
    took = time.monotonic() - started
    assert took < 1.0, took  # the budget (0.3 s), far from the close's 1.5 s
    assert not closed.is_set()
    assert closed.wait(5)  # it went on without the exit
    assert len(testing.pending()) == 1  # what was spooled is there for the next run


def test_what_the_recording_thread_scrubbed_is_written_in_bounded_transactions(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run too short for the worker to start left thousands of scrubbed records,
    written in one transaction that the exit then waited for past its budget."""
    from optel import spool as spool_mod

    monkeypatch.setattr(pipeline_mod, "HELP_AT", (50, 50))
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    for i in range(3000):
        t.event("used", i=i)
    waiting = len(p._ready)
    assert waiting > 2 * pipeline_mod.READY_CHUNK
    sizes: list[int] = []
    real_add = spool_mod.Spool.add

    def add(self: spool_mod.Spool, records: list[spool_mod.NewRecord]) -> int:
        sizes.append(len(records))
        return real_add(self, records)

    monkeypatch.setattr(spool_mod.Spool, "add", add)
    assert p._write_ready(deadline=time.monotonic()) == pipeline_mod.READY_CHUNK  # then stops
    assert len(p._ready) == waiting - pipeline_mod.READY_CHUNK
    assert p._write_ready() == waiting - pipeline_mod.READY_CHUNK
    assert sizes and max(sizes) <= pipeline_mod.READY_CHUNK and not p._ready
    assert t.flush(0)
    assert len(testing.pending(limit=10_000)) == 3000 and testing.stats() == {}


def test_what_the_recording_thread_scrubbed_wakes_the_sender_once_written(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README: the sender goes as soon as SEND_AT new records are spooled. In a
    burst the recording thread scrubs them and the worker only writes them: once,
    only the worker's own drain woke the sender, and a burst sent nothing until it
    ended."""
    monkeypatch.setattr(pipeline_mod, "HELP_AT", (50, 50))
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    for i in range(pipeline_mod.SEND_AT + 2 * pipeline_mod.SLICE):
        t.event("used", i=i)
    assert len(p._ready) >= pipeline_mod.SEND_AT
    p._send_wake.clear()
    p._write_ready()
    assert p._send_wake.is_set()


def test_the_log_is_copied_on_a_thread_of_its_own_as_a_burst_is_written(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread writing the spool never copies SQLite's log itself (that cost
    about 7 us a record in a burst): every CHECKPOINT_AT rows, a thread does."""
    from optel import spool as spool_mod

    copied_by: list[str] = []
    real = spool_mod.Spool.checkpoint

    def checkpoint(self: spool_mod.Spool) -> None:
        copied_by.append(threading.current_thread().name)
        real(self)

    monkeypatch.setattr(spool_mod.Spool, "checkpoint", checkpoint)
    t = granted(max_events_per_minute=10_000, max_events_per_run=10_000)
    p = testing.pipeline(t)
    assert p is not None and p.stop_worker()
    for i in range(pipeline_mod.CHECKPOINT_AT + 10):
        t.event("used", i=i)
    p.drain()
    assert p._checkpointer is not None
    p._checkpointer.join(10)
    assert copied_by == ["optel-checkpoint"]
    assert p.spool().changed == 0


def test_a_fork_waits_for_a_checkpoint_under_way(granted: Granted) -> None:
    """No thread of ours may be inside SQLite when the host forks (the child
    would inherit its locks held): a fork takes the lock a checkpoint holds
    while it copies the log, as it takes the spool's."""
    t = granted()
    p = testing.pipeline(t)
    assert p is not None
    t.event("used")
    assert t.flush(5)
    lock = p.spool().checkpoint_lock
    p._before_fork()
    try:
        assert lock in p._fork_held and lock.locked()
        assert p.spool().changed > 0
        p.spool().checkpoint()  # one now would wait until after the fork: it is skipped
        assert p.spool().changed > 0
    finally:
        p._after_fork_parent()
    assert not lock.locked()


def test_the_spool_is_open_when_init_returns(
    granted: Granted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened on the host's thread, not left to a worker that a busy host keeps
    waiting (0.5 s measured): a burst right after init is written as it goes."""
    monkeypatch.setattr(pipeline_mod.Pipeline, "_start_threads", lambda self: None)
    t = granted()
    p = testing.pipeline(t)
    assert p is not None and p._spool is not None and p._spool._db is not None
