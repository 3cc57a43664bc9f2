"""Every process model: what workers record is delivered, and they belong to their parent's run.

A tool module initialises optel at import (as tools do), so a fork child
inherits the parent's pipeline and a spawn or forkserver child initialises
its own. The matrix is start method (fork, spawn, forkserver) x Pool or
Process x how the workers end:

- Pool: ``normal`` (close, join), ``with`` (leaving the block terminates the
  workers), ``terminate`` (``pool.terminate()`` after the results are in);
- Process: ``normal`` (the target returns, join), ``with`` (``with
  closing(Process(...))``: start, join, close), ``terminate`` (recorded, then
  ``terminate()`` while it waits);

plus ``os.fork`` children that exit normally, that leave with ``os._exit`` after
``flush()``, and daemon processes that multiprocessing terminates at the
parent's exit. Each record is unique; after the run (and ``optel flush`` for
what its exit budget left), the collector must hold every one of them, and
exactly one ``run_start`` and one ``run_end``: the top-level run's.
"""

from __future__ import annotations

import json
import multiprocessing
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

TASKS = 12  # records made in workers per scenario

TOOL_MODULE = """
import os, time, optel

telemetry = optel.init(app="mptool", allowed_attributes=["n", "who"])


def work(n):
    with telemetry.track("task"):  # a tracked command: a worker records no run_start
        telemetry.event("work", n=n, who="worker")
    return n


def work_many(first, count, ready=None, hold=False):
    for n in range(first, first + count):
        work(n)
    if ready is not None:
        ready.set()
    while hold:
        time.sleep(0.05)  # until terminated
"""

MAIN = """
import contextlib, json, os, sys, multiprocessing as mp
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mptool

TASKS = int(sys.argv[4])


def pool(ctx, ending):
    if ending == "normal":
        p = ctx.Pool(2)
        assert sorted(p.map(mptool.work, range(TASKS))) == list(range(TASKS))
        p.close()
        p.join()
    elif ending == "with":
        with ctx.Pool(2) as p:  # __exit__ terminates the workers
            assert sorted(p.map(mptool.work, range(TASKS))) == list(range(TASKS))
    else:
        p = ctx.Pool(2)
        assert sorted(p.map(mptool.work, range(TASKS))) == list(range(TASKS))
        p.terminate()
        p.join()


def process(ctx, ending):
    half = TASKS // 2
    if ending == "terminate":
        ready = [ctx.Event() for _ in range(2)]
        procs = [ctx.Process(target=mptool.work_many, args=(k * half, half, ready[k], True))
                 for k in range(2)]
        for p in procs:
            p.start()
        for e in ready:
            assert e.wait(60)
        for p in procs:
            p.terminate()
            p.join()
        return
    for k in range(2):
        p = ctx.Process(target=mptool.work_many, args=(k * half, half))
        if ending == "with":
            with contextlib.closing(p):
                p.start()
                p.join()
        else:
            p.start()
            p.join()
        assert p.exitcode == 0 if ending == "normal" else True


def daemons(ctx):
    half = TASKS // 2
    ready = [ctx.Event() for _ in range(2)]
    for k in range(2):
        ctx.Process(target=mptool.work_many, args=(k * half, half, ready[k], True),
                    daemon=True).start()
    for e in ready:
        assert e.wait(60)
    # the parent leaves: multiprocessing terminates its daemon children


def forks(ending):
    half = TASKS // 2
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            mptool.work_many(k * half, half)
            if ending == "os._exit":
                mptool.telemetry.flush(0)  # os._exit skips every exit hook: spool first
                os._exit(0)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


if __name__ == "__main__":
    method, kind, ending = sys.argv[1:4]
    with mptool.telemetry.track("main"):  # the top-level run: run_start now, run_end at exit
        mptool.telemetry.event("parent", n=-1, who="parent")
        if kind == "pool":
            pool(mp.get_context(method), ending)
        elif kind == "process" and ending == "daemon":
            daemons(mp.get_context(method))
        elif kind == "process":
            process(mp.get_context(method), ending)
        else:
            forks(ending)
    print(json.dumps({"recorded": TASKS + 1}), flush=True)
"""


@dataclass
class Outcome:
    scenario: str
    recorded: int
    delivered: int
    lost: int
    duplicates: int
    run_start: int
    run_end: int

    def row(self) -> str:
        return (
            f"{self.scenario:<34} {self.recorded:>8} {self.delivered:>9} {self.lost:>4}"
            f" {self.duplicates:>5} {self.run_start:>9} {self.run_end:>7}"
        )


HEADER = (
    f"{'scenario':<34} {'recorded':>8} {'delivered':>9} {'lost':>4} {'dupes':>5}"
    f" {'run_start':>9} {'run_end':>7}"
)


def _scenario(tmp_path: Path, home: Path, method: str, kind: str, ending: str) -> Outcome:
    folder = tmp_path / f"{method}-{kind}-{ending}".replace(".", "")
    folder.mkdir()
    (folder / "mptool.py").write_text(textwrap.dedent(TOOL_MODULE))
    main = folder / "main.py"
    main.write_text(textwrap.dedent(MAIN))
    scenario_home = home / folder.name
    run_cli("opt-in", "--app", "mptool", home=scenario_home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_FLUSH_INTERVAL_MS": "1000"}
        r = run_python(
            f"import runpy, sys; sys.argv = {[str(main), method, kind, ending, str(TASKS)]!r};"
            f" runpy.run_path({str(main)!r}, run_name='__main__')",
            scenario_home,
            env,
            timeout=180,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Traceback" not in r.stderr and "optel:" not in r.stderr, r.stderr[-3000:]
        recorded = json.loads(r.stdout.strip().splitlines()[-1])["recorded"]
        # what the exit budget did not send waits in the spool: a flush delivers it
        flushed = run_cli("flush", home=scenario_home, extra_env=env)
        assert flushed.returncode == 0, flushed.stderr
        logs = server.log_records()
    attrs = [{kv.key: kv.value for kv in rec.attributes} for rec in logs]
    made = Counter(
        int(a["n"].int_value) for rec, a in zip(logs, attrs) if rec.event_name in ("work", "parent")
    )
    names = Counter(rec.event_name for rec in logs)
    expected = set(range(TASKS)) | {-1}
    return Outcome(
        scenario=f"{method} {kind} {ending}",
        recorded=recorded,
        delivered=len(set(made) & expected),
        lost=len(expected - set(made)),
        duplicates=sum(c - 1 for c in made.values() if c > 1),
        run_start=names["run_start"],
        run_end=names["run_end"],
    )


METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]
SCENARIOS = [
    *((kind, ending) for kind in ("pool", "process") for ending in ("normal", "with", "terminate")),
    ("process", "daemon"),
]


@pytest.mark.parametrize("method", METHODS)
def test_multiprocessing_workers_lose_nothing_and_join_the_parents_run(
    tmp_path: Path, home: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = [_scenario(tmp_path, home, method, kind, ending) for kind, ending in SCENARIOS]
    with capsys.disabled():
        print("\n" + "\n".join([HEADER, *(o.row() for o in outcomes)]))
    for o in outcomes:
        assert (o.lost, o.delivered, o.recorded) == (0, TASKS + 1, TASKS + 1), o
        assert (o.run_start, o.run_end) == (1, 1), o


def test_os_fork_children_lose_nothing_and_join_the_parents_run(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = [_scenario(tmp_path, home, "-", "os.fork", e) for e in ("sys.exit", "os._exit")]
    with capsys.disabled():
        print("\n" + "\n".join([HEADER, *(o.row() for o in outcomes)]))
    for o in outcomes:
        assert (o.lost, o.delivered) == (0, TASKS + 1), o
        assert (o.run_start, o.run_end) == (1, 1), o
