"""The exit: the exiting thread imports no destination library, and the budget holds.

An import hook notes every module the main thread imports once the tool's own
code is done; optel's exit (spooling what is queued, then the exit send from
its own thread) must add none of the destination modules (HTTP, TLS, gRPC,
protobuf, optel's renderers), even when the sender thread has not loaded them
yet when the exit starts.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

WATCHED = ("http", "ssl", "grpc", "google.protobuf", "optel.exporters", "email", "urllib3")

TOOL = """
import atexit, json, sys, threading
import optel

late = []
done = threading.Event()


class Watch:
    def find_spec(self, name, path=None, target=None):
        if done.is_set() and threading.current_thread() is threading.main_thread():
            if name.startswith(WATCHED):
                late.append(name)
        return None


sys.meta_path.insert(0, Watch())
atexit.register(lambda: print(json.dumps({"late": late}), flush=True))  # runs after optel's

# the sender never gets to load the destinations (a very busy machine): nothing
# is loaded when the exit starts, so any import the exit needed would show here
from optel import exporters
exporters.Destinations.warm = lambda self, names: threading.Event().wait()

t = optel.init(app="exiting", max_events_per_minute=100000, max_events_per_run=100000)
for i in range(2000):
    t.event("used", i=i)
done.set()  # the tool's code ends here: what the main thread imports now is the exit's
""".replace("WATCHED", repr(WATCHED))


def test_the_exiting_thread_imports_no_destination_library(home: Path) -> None:
    run_cli("opt-in", "--app", "exiting", home=home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "2000"}
        r = run_python(TOOL, home, env)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == {"late": []}
        assert server.requests == []  # nothing loaded to send with: it all waits
        status = json.loads(run_cli("status", "--json", home=home).stdout)
        assert status["dropped"] == {} and status["pending"] == 2000  # all spooled
        assert run_cli("flush", home=home, extra_env=env).returncode == 0
    assert sum(1 for rec in server.log_records() if rec.event_name == "used") == 2000
