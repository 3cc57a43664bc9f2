"""The anonymous install id on OTLP, with the rules of GA4's client id: the
install's random uuid4, on every resource of every request, added when a
request is sent (so never in the spool nor in ``optel show``), and a new one
after ``optel opt-out`` (the old one never sent again)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from optel.config import Paths
from optel.identity import client_id
from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

TOOL = """
import optel
t = optel.init(app="idtool", version="1.0")
with t.tracer.start_as_current_span("convert"):
    pass
t.meter.create_counter("converted").add(1)
t.event("model_converted")
t.flush(0)
"""


def _ids(server: OtlpServer) -> list[str]:
    found = []
    for r in server.accepted():
        for field in ("resource_spans", "resource_metrics", "resource_logs"):
            for res in getattr(r.message, field, []):
                values = [
                    kv.value.string_value
                    for kv in res.resource.attributes
                    if kv.key == "optel.install.id"
                ]
                assert len(values) == 1, values  # on every resource, once
                found.append(values[0])
    return found


def _spooled(home: Path) -> str:
    db = sqlite3.connect(home / "spool.sqlite3")
    try:
        return "\n".join(
            str(row)
            for row in db.execute(
                "SELECT * FROM entries JOIN deliveries ON deliveries.entry = entries.id"
            )
        )
    finally:
        db.close()


def test_every_request_carries_the_install_id_added_at_send_time(home: Path) -> None:
    run_cli("opt-in", "--app", "idtool", home=home)
    r = run_python(TOOL, home)  # no destination yet: recorded, waiting
    assert r.returncode == 0, r.stderr
    install = client_id(Paths(str(home), str(home)), create=False)
    assert install and uuid.UUID(install).version == 4
    # an id planted through the environment is never what is sent
    env = {"OPTEL_DESTINATIONS": "otlp", "OTEL_RESOURCE_ATTRIBUTES": "optel.install.id=planted"}
    run_python(
        TOOL,
        home,
        {
            **env,
            "OPTEL_EXIT_BUDGET_MS": "2000",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        },
    )
    spooled, shown = _spooled(home), run_cli("show", "--json", home=home, extra_env=env).stdout
    assert "otlp" in spooled and "idtool" in shown
    assert install not in spooled and install not in shown  # never rendered
    with OtlpServer() as server:
        out = run_cli(
            "flush", home=home, extra_env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
        )
        assert out.returncode == 0, out.stdout + out.stderr
    ids = _ids(server)
    assert len(ids) >= 3 and set(ids) == {install}


def test_opt_out_rotates_it(home: Path) -> None:
    run_cli("opt-in", "--app", "idtool", home=home)
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "OPTEL_EXIT_BUDGET_MS": "10000"}
        assert run_python(TOOL + "t.flush(10)\n", home, env).returncode == 0
        first = set(_ids(server))
        assert len(first) == 1
        run_cli("opt-out", "--app", "idtool", home=home)
        run_cli("opt-in", "--app", "idtool", home=home)
        assert run_python(TOOL + "t.flush(10)\n", home, env).returncode == 0
        both = set(_ids(server))
    (second,) = both - first
    assert uuid.UUID(second).version == 4
    sent = json.loads(run_cli("show", "--sent", "--json", home=home).stdout)
    assert not any(old in json.dumps(sent) for old in first | {second})
