"""The otlp destination against a loopback OTLP/HTTP receiver, through real processes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

TOOL = """
import optel
t = optel.init(app="mytool", version="2.0", allowed_attributes=["framework"])
with t.tracer.start_as_current_span("convert", attributes={"framework": "onnx", "who": "x"}):
    pass
t.meter.create_counter("converted").add(3, {"framework": "onnx"})
t.event("model_converted", framework="onnx")
"""


def test_records_reach_the_collector_as_otlp_protobuf(home: Path) -> None:
    run_cli("opt-in", "--app", "mytool", home=home)
    with OtlpServer() as server:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=ml%20tools",
            # this test is about the wire format: a generous budget, so a loaded
            # machine cannot cut the exit send and cause a (legitimate) duplicate
            "OPTEL_EXIT_BUDGET_MS": "10000",
        }
        r = run_python(TOOL, home, env)
        assert r.returncode == 0, r.stderr
        left = json.loads(run_cli("status", "--json", home=home, extra_env=env).stdout)["pending"]
        if left:  # the exit budget ran out first: a flush delivers the rest
            assert run_cli("flush", home=home, extra_env=env).returncode == 0
    spans = server.spans()
    assert [s.name for s in spans] == ["convert"]
    attrs = {kv.key: kv.value.string_value for kv in spans[0].attributes}
    assert attrs == {"framework": "onnx"}
    assert spans[0].dropped_attributes_count == 1
    assert [m.name for m in server.metrics()] == ["converted"]
    assert server.metrics()[0].sum.data_points[0].as_int == 3
    events = [rec for rec in server.log_records() if rec.event_name == "model_converted"]
    assert len(events) == 1
    assert all(r.headers.get("x-team") == "ml tools" for r in server.accepted())
    assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 0
    sent = json.loads(run_cli("show", "--sent", "--json", home=home).stdout)
    assert {item["destination"] for item in sent} == {"otlp"}
    assert any("convert" in json.dumps(item["payload"]) for item in sent)


def test_a_400_drops_and_a_503_keeps(home: Path) -> None:
    run_cli("opt-in", "--app", "mytool", home=home)
    with OtlpServer(default=(400, {})) as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
        run_python(TOOL, home, env)
        run_cli("flush", home=home, extra_env=env)
    status = json.loads(run_cli("status", "--json", home=home).stdout)
    assert status["pending"] == 0
    assert status["dropped"].get("http_400", 0) >= 1

    with OtlpServer(default=(503, {"Retry-After": "1"})) as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
        run_python(TOOL, home, env)
        pending = json.loads(run_cli("status", "--json", home=home).stdout)["pending"]
        assert pending >= 3  # nothing lost: it waits for a later run or a flush
    with OtlpServer() as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
        import time

        time.sleep(1.1)  # the Retry-After the server asked for
        assert run_cli("flush", home=home, extra_env=env).returncode == 0
    assert [s.name for s in server.spans()] == ["convert"]
