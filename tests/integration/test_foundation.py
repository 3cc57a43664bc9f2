"""End to end through real processes: init -> spool -> CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_python


def test_without_consent_nothing_is_imported_started_or_written(home: Path) -> None:
    r = run_python(
        """
        import sys, threading, optel
        t = optel.init(app="mytool", version="1.0")
        with t.tracer.start_as_current_span("x"):
            pass
        t.meter.create_counter("c").add(1)
        t.event("used", framework="onnx")
        sdk = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
        print(t.enabled, sdk, threading.active_count())
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "[]", "1"]
    assert not home.exists()


def test_granted_records_reach_the_spool_and_show(home: Path) -> None:
    assert run_cli("opt-in", "--app", "mytool", home=home).returncode == 0
    r = run_python(
        """
        import optel
        t = optel.init(app="mytool", version="1.0", allowed_attributes=["framework"])
        assert t.enabled
        with t.tracer.start_as_current_span("convert", attributes={"framework": "onnx"}):
            pass
        t.meter.create_counter("converted").add(2, {"framework": "onnx"})
        t.event("model_converted", framework="onnx", duration_ms=12.5)
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(run_cli("show", "--json", home=home).stdout)
    by_signal = {item["signal"]: item["payload"] for item in shown}
    assert by_signal["span"]["name"] == "convert"
    assert by_signal["span"]["attributes"] == {"framework": "onnx"}
    assert by_signal["event"]["attributes"] == {"framework": "onnx", "duration_ms": 12.5}
    assert by_signal["metric"]["points"][0]["value"] == 2
    assert all(item["destination"] == "local" for item in shown)


def test_host_tracer_provider_is_kept_and_its_spans_reach_the_spool(home: Path) -> None:
    run_cli("opt-in", home=home)
    r = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        early = trace.get_tracer("taken.before.init")
        host = TracerProvider()
        mine = InMemorySpanExporter()
        host.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(host)

        import optel
        t = optel.init(app="hosttool")
        assert trace.get_tracer_provider() is host
        with early.start_as_current_span("before"):
            pass
        with trace.get_tracer("taken.after.init").start_as_current_span("after"):
            pass
        t.shutdown()
        print(sorted(s.name for s in mine.get_finished_spans()))
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['after', 'before']"  # the host still gets its spans
    shown = json.loads(run_cli("show", "--json", home=home).stdout)
    names = sorted(i["payload"]["name"] for i in shown if i["signal"] == "span")
    assert names == ["after", "before"]


def test_api_tracer_taken_before_init_records_through_optel(home: Path) -> None:
    run_cli("opt-in", home=home)
    r = run_python(
        """
        from opentelemetry import trace
        early = trace.get_tracer("lib")
        import optel
        optel.init(app="plain")
        with early.start_as_current_span("library_span"):
            pass
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    shown = json.loads(run_cli("show", "--json", home=home).stdout)
    assert [i["payload"]["name"] for i in shown if i["signal"] == "span"] == ["library_span"]


def test_status_json_has_the_contract_keys(home: Path) -> None:
    r = run_cli("status", "--json", "--app", "mytool", home=home)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"app", "consent", "enabled", "reason", "destinations", "pending"} <= set(data)
    assert data["app"] == "mytool"
    assert data["consent"] == "unset"
    assert data["enabled"] is False
    assert isinstance(data["reason"], str) and data["reason"]
    assert data["destinations"] == ["local"]
    assert data["pending"] == 0


def test_usage_error_exits_2_with_one_line(home: Path) -> None:
    for args in (["frobnicate"], ["status", "--bogus"], ["settings", "exit_budgt_ms=5"]):
        r = run_cli(*args, home=home)
        assert r.returncode == 2, args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("settings", "exit_budgt_ms=5", home=home)
    assert "exit_budget_ms" in r.stderr  # the suggestion names the fix


def test_opt_out_deletes_waiting_records(home: Path) -> None:
    run_cli("opt-in", home=home)
    run_python(
        """
        import optel
        t = optel.init(app="mytool")
        t.event("used")
        """,
        home,
    )
    assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 1
    assert run_cli("opt-out", home=home).returncode == 0
    assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 0
    assert json.loads(run_cli("show", "--json", home=home).stdout) == []


def test_demo_prints_recorded_telemetry(home: Path) -> None:
    r = run_cli("demo", home=home)
    assert r.returncode == 0, r.stderr
    assert "record(s) waiting to be sent" in r.stdout
    assert '"name": "convert"' in r.stdout
    assert not home.exists()  # the demo used a throw-away home, not the user's
