"""The benches' peak-memory figure is the child's own (bench/_peakrss.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench._peakrss import peak_of

CHILD = "x = b'\\x01' * (40 * 2**20)"  # 40 MiB of its own, written (resident)


def test_a_childs_peak_is_its_own_not_that_of_the_memory_it_was_spawned_from() -> None:
    held = b"\x01" * (160 * 2**20)  # the spawning process holds 160 MiB
    with peak_of(dict(os.environ)) as (env, peak_mib):
        child = subprocess.Popen([sys.executable, "-c", CHILD], env=env)
        _, status, usage = os.wait4(child.pid, 0)
        own = peak_mib()
    assert os.waitstatus_to_exitcode(status) == 0
    assert 40 <= own < 100  # its 40 MiB and an interpreter
    # what wait4 says of the same child: the spawning process's 160 MiB
    assert usage.ru_maxrss / 1024 >= 160 > own
    del held


def test_every_script_make_bench_runs_is_a_bench() -> None:
    # a helper module taken for a bench printed "(failed: )" in `make bench`
    from bench.run import extra_scripts

    scripts = extra_scripts()
    assert "datapath.py" in [s.name for s in scripts]
    for script in scripts:
        assert 'if __name__ == "__main__":' in script.read_text(), script.name


def test_the_no_spool_reference_sends_every_span_and_keeps_nothing_on_disk() -> None:
    # bench/datapath.py's NO_SPOOL patches optel's pipeline: a rename there must
    # fail here, not turn the reference row into a figure for something else
    from bench import datapath

    import optel.testing
    from tests.fakes.otlp_server import OtlpServer

    with datapath._home() as home, OtlpServer() as server:
        env = datapath._env(home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
        datapath._run(datapath.NO_SPOOL + datapath.OPTEL, ["700", "span", "flush"], env)
        assert datapath._records(server) == 700
        # nothing went through the spool: nothing waits, nothing was counted as sent
        assert optel.testing.pending(home) == [] and optel.testing.stats(home) == {}
