"""Processes opt in and out while others record and send.

Three recorder processes use optel against a loopback OTLP receiver while
three other processes toggle the global and the per-tool decision. Then one
last ``optel opt-out --app rec`` lands. Checked:

- no process ever read a half-written or corrupt consent record;
- in every recorder, no consent check that *started* after the opt-out
  landed said "on" (checks are logged by wrapping ``consent.decide``);
- at most the one batch each recorder had in flight, checked before the
  opt-out, arrives after it; nothing is sent by a later ``optel flush``;
- the final record is the opt-out, mode 0600, no temp or corrupt files left,
  and the client id is gone.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT, _scrubbed_environ, run_cli
from tests.fakes.otlp_server import OtlpServer

RECORDERS = 3
TOGGLERS = 3
TOGGLES = 40

RECORDER = """
import json, os, sys, time
import optel
from optel import consent

checks_on = []  # start times of consent checks that said "on"
real = consent.decide

def decide(app, policy="opt-in", environ=None, p=None, **kw):
    start = time.time()
    d = real(app, policy, environ, p, **kw)
    if d.enabled:
        checks_on.append(start)
    return d

consent.decide = decide
record = os.path.join(os.environ["OPTEL_HOME"], "consent.json")
t = optel.init(app="rec")
assert t.enabled, t.reason
open(sys.argv[1] + ".ready", "w").close()
bad_reads = 0
end = time.monotonic() + 60
while time.monotonic() < end and not os.path.exists(sys.argv[2]):
    t.event("tick")
    try:
        with open(record, encoding="utf-8") as f:
            json.load(f)
    except FileNotFoundError:
        pass
    except ValueError:
        bad_reads += 1
    time.sleep(0.01)
t.flush(2)
print(json.dumps({"last_on": max(checks_on, default=0.0), "checks_on": len(checks_on),
                  "bad_reads": bad_reads}))
"""

TOGGLER = """
import json, os, random, sys, time
from optel import cli
record = os.path.join(os.environ["OPTEL_HOME"], "consent.json")
rng = random.Random(int(sys.argv[1]))
bad = 0
for _ in range({n}):
    args = [rng.choice(["opt-in", "opt-out"])] + rng.choice([[], ["--app", "rec"]])
    assert cli.main(args) == 0
    with open(record, encoding="utf-8") as f:
        doc = json.load(f)
    bad += doc.get("schema") is None
    time.sleep(rng.uniform(0, 0.03))
print(json.dumps({{"bad": bad}}))
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    environ = _scrubbed_environ()
    environ.update(OPTEL_HOME=str(home), PYTHONPATH=str(ROOT / "src"), **extra)
    return environ


def test_opt_in_and_out_from_many_processes_while_others_send(home: Path, tmp_path: Path) -> None:
    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()
    with OtlpServer() as server:
        base = server._httpd.RequestHandlerClass

        class Timed(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                with lock:
                    arrivals.append((time.time(), self.headers.get("x-recorder", "?")))
                super().do_POST()

        server._httpd.RequestHandlerClass = Timed
        assert run_cli("opt-in", home=home).returncode == 0
        assert run_cli("opt-in", "--app", "rec", home=home).returncode == 0
        stop = tmp_path / "stop"
        recorders = [
            subprocess.Popen(
                [sys.executable, "-c", RECORDER, str(tmp_path / f"rec{i}"), str(stop)],
                env=_env(
                    home,
                    OTEL_EXPORTER_OTLP_ENDPOINT=server.url,
                    OTEL_EXPORTER_OTLP_HEADERS=f"x-recorder={i}",
                    OPTEL_FLUSH_INTERVAL_MS="50",
                    OPTEL_EXIT_BUDGET_MS="2000",
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(RECORDERS)
        ]
        try:
            end = time.monotonic() + 60
            while time.monotonic() < end and not all(
                (tmp_path / f"rec{i}.ready").exists() or recorders[i].poll() is not None
                for i in range(RECORDERS)
            ):
                time.sleep(0.05)
            togglers = [
                subprocess.Popen(
                    [sys.executable, "-c", TOGGLER.format(n=TOGGLES), str(i)],
                    env=_env(home),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in range(TOGGLERS)
            ]
            toggled = [p.communicate(timeout=120) for p in togglers]
            final = run_cli("opt-out", "--app", "rec", home=home)
            landed = time.time()  # the opt-out is on disk: every later check must see it
            assert final.returncode == 0, final.stderr
            time.sleep(0.3)  # let the recorders' workers run a few more cycles
            stop.write_text("")
            recorded = [p.communicate(timeout=120) for p in recorders]
        finally:
            stop.write_text("")
            for p in recorders:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        sent_before_flush = len(arrivals)
        run_cli("flush", home=home, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": server.url})
        after_flush = len(arrivals) - sent_before_flush

    for p, (out, err) in zip(togglers, toggled):
        assert p.returncode == 0 and "Traceback" not in err, err
        assert json.loads(out.splitlines()[-1]) == {"bad": 0}  # after the commands' own lines
    results = []
    for p, (out, err) in zip(recorders, recorded):
        assert p.returncode == 0 and "Traceback" not in err, err
        results.append(json.loads(out))
    assert all(r["bad_reads"] == 0 for r in results), results  # never a torn record
    assert all(r["checks_on"] > 0 for r in results), results  # they did send meanwhile
    late_on = [r["last_on"] - landed for r in results if r["last_on"] >= landed]
    assert late_on == [], f"consent checks said 'on' after the opt-out landed: {late_on}"
    late = [who for when, who in arrivals if when > landed]
    per_recorder = {who: late.count(who) for who in set(late)}
    # only a batch checked before the opt-out may still arrive (one request per signal)
    assert all(n <= 3 for n in per_recorder.values()), per_recorder
    assert after_flush == 0
    print(
        f"\n{len(arrivals)} requests; {len(late)} arrived after the opt-out landed"
        f" (in flight before it: {per_recorder}); {sum(r['checks_on'] for r in results)}"
        " consent checks said 'on', none after the opt-out"
    )

    doc = json.loads((home / "consent.json").read_text())
    assert doc["apps"]["rec"]["decision"] == "denied"
    assert doc["apps"]["rec"]["source"] == "cli"
    assert stat.S_IMODE(os.stat(home / "consent.json").st_mode) == 0o600
    leftovers = [n for n in os.listdir(home) if n.startswith(".tmp-") or ".corrupt-" in n]
    assert leftovers == []
    assert not (home / "identity.json").exists()  # the last opt-out deleted the id
    status = json.loads(run_cli("status", "--json", "--app", "rec", home=home).stdout)
    assert status["enabled"] is False and status["pending"] == 0, status
