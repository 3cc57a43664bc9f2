"""Consent under concurrency: processes opting in and out while others record.

- every write is atomic under the lock: a reader never sees a half-written
  ``consent.json`` and no writer ever finds one to move aside;
- no request reaches the receiver after the final opt-out landed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.fakes.otlp_server import OtlpServer
from tests.integration.test_consent_matrix import popen_python

TOGGLER = """
from optel import cli
args = ["--app", "mytool"] if {per_app} else []
for i in range(25):
    assert cli.main(["opt-in" if i % 2 else "opt-out", *args]) == 0
"""

RECORDER = """
import os, time, optel
t = optel.init(app="mytool", allowed_attributes=["k"])
assert t.enabled
print("STARTED", flush=True)
while not os.path.exists(os.environ["STOP_FILE"]):
    t.event("used", k="v")
    t.flush(0.5)
    time.sleep(0.01)
print("ENABLED", t.enabled, flush=True)
t.shutdown()
"""

# A request whose consent check ran just before the opt-out landed may still be
# on the wire when the opt-out command returns: allow it this long to arrive.
IN_FLIGHT_S = 0.5


def test_toggling_while_recording(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stop = tmp_path / "stop"
    assert run_cli("opt-in", home=home).returncode == 0
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "STOP_FILE": str(stop)}
        recorders = [popen_python(RECORDER, home, env) for _ in range(3)]
        for p in recorders:
            assert p.stdout is not None and p.stdout.readline().strip() == "STARTED"
        togglers = [popen_python(TOGGLER.format(per_app=i % 2 == 1), home, {}) for i in range(4)]
        parsed = 0
        while any(p.poll() is None for p in togglers):
            doc = json.loads((home / "consent.json").read_text())  # never half written
            assert doc["schema"] == 2 and isinstance(doc["apps"], dict)
            parsed += 1
        for p in togglers:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        assert parsed > 10
        during = len(server.requests)

        for args in (("opt-out",), ("opt-out", "--app", "mytool")):
            r = run_cli(*args, home=home)
            assert r.returncode == 0, r.stderr
        time.sleep(IN_FLIGHT_S)
        landed = len(server.requests)
        time.sleep(2)  # the recorders keep recording and flushing
        stop.write_text("")
        outs = [p.communicate(timeout=60) for p in recorders]
        after = len(server.requests) - landed

    for p, (out, err) in zip(recorders, outs):
        assert p.returncode == 0 and "Traceback" not in err, err
        assert "ENABLED False" in out
    assert during > 0  # sending really happened while the decisions changed
    assert after == 0, f"{after} request(s) after the final opt-out landed"
    doc = json.loads((home / "consent.json").read_text())
    assert doc["global"]["decision"] == doc["apps"]["mytool"]["decision"] == "denied"
    assert not list(home.glob("consent.json.corrupt-*"))  # nothing was ever unreadable
    assert not (home / "identity.json").exists()
