"""GA4 end to end: real tool processes, the CLI, and the loopback fake GA4 server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli, run_python
from tests.fakes.ga4_server import FakeGA4

SECRET = "mp-secret-ABC123xyz"

# A tool with the worst names and values it could send: long and invalid
# names, 40+ params, 300-character values, reserved names and prefixes.
STRESS_TOOL = """
import optel
t = optel.init(app="stresstool", version="9.9.9-" + "b" * 60,
               allowed_attributes=["framework"],
               max_events_per_minute=100_000, max_events_per_run=100_000)
assert t.enabled, t
reserved = ["error", "session_start", "first_visit", "user_engagement", "page_view",
            "ga_custom", "google_thing", "firebase_x", "_hidden", "app_exception"]
odd = ["model.converted", "Convert Model!", "3d-export", "x" * 120, "Ünïcode näme",
       "a/b/c", "   ", "tab\\tname", "dots.and-dashes and spaces", "é" * 50]
names = reserved + odd
wide = {f"param_{i}": i for i in range(45)}
wide.update({"ga_param": 1, "_underscore": 2, "firebase_conversion": 3, "Weird Key-1": 4,
             "k" * 60: 5, "long_value": "lorem ipsum " * 25})
N = int(__import__("os").environ["STRESS_EVENTS"])
for i in range(N):
    t.event(names[i % len(names)], **wide)
for i in range(20):
    with t.tracer.start_as_current_span(names[i % len(names)] + " span") as span:
        span.set_attribute("declared_not", "dropped by the anonymizer")
c = t.meter.create_counter("models.converted")
for fw in ("onnx", "tf", "torch"):
    for _ in range(5):
        c.add(2, {"framework": fw})
try:
    raise ValueError("bad shape")
except ValueError as exc:
    t.error(exc)
t.shutdown()  # everything spooled and sent within the exit budget (20 s here)
"""


@pytest.fixture
def fake() -> Iterator[FakeGA4]:
    with FakeGA4() as server:
        yield server


def _env(fake: FakeGA4, **extra: str) -> dict[str, str]:
    return {
        "OPTEL_GA4_MEASUREMENT_ID": "G-STRESS",
        "OPTEL_GA4_API_SECRET": SECRET,
        "OPTEL_GA4_ENDPOINT": fake.url,
        "OPTEL_FLUSH_INTERVAL_MS": "600000",  # one metric interval, one flush
        **extra,
    }


def _debug(fake: FakeGA4, body: bytes) -> list[dict[str, str]]:
    req = urllib.request.Request(
        f"{fake.url}/debug/mp/collect?measurement_id=G-STRESS&api_secret=x",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["validationMessages"]


def test_stress_corpus_every_event_delivered_valid_25_per_request(
    home: Path, fake: FakeGA4
) -> None:
    assert run_cli("opt-in", home=home).returncode == 0
    n_events = 300
    env = _env(fake, STRESS_EVENTS=str(n_events), OPTEL_EXIT_BUDGET_MS="20000")
    r = run_python(STRESS_TOOL, home, env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr

    ours = n_events + 20 + 3 + 1  # events, spans, 3 counter attribute sets, 1 error
    status = json.loads(run_cli("status", "--json", home=home, extra_env=_env(fake)).stdout)
    shown = run_cli("show", "--sent", "--json", "--limit", "5000", home=home, extra_env=_env(fake))
    spooled = [e for item in json.loads(shown.stdout) for e in item["payload"]["events"]]
    collected = fake.collected()
    events = fake.events()
    debug_messages = [m for hit in collected for m in _debug(fake, hit.raw)]
    per_request = [len(h.events) for h in collected]
    print(
        f"\nGA4 stress: {len(spooled)} events spooled ({ours} from the corpus), {len(events)}"
        f" delivered in {len(collected)} requests (events/request max {max(per_request)},"
        f" mean {len(events) / len(collected):.1f}); validation messages:"
        f" {len(fake.messages())} on collect, {len(debug_messages)} from /debug/mp/collect;"
        f" largest body {max(len(h.raw) for h in collected)} bytes; pending {status['pending']},"
        f" dropped {status['dropped']}"
    )
    # every event that was recorded for GA4 arrived, exactly once
    assert status["pending"] == 0 and not status["dropped"]
    assert sorted(e["name"] for e in events) == sorted(e["name"] for e in spooled)
    assert len(events) >= ours
    assert fake.messages() == [] and debug_messages == []
    assert max(per_request) == 25
    assert len(collected) <= len(events) // 25 + 4  # ~25 per request (batches of 100 rows)

    by_name: dict[str, int] = {}
    for e in events:
        by_name[e["name"]] = by_name.get(e["name"], 0) + 1
    for reserved in ("error", "session_start", "first_visit", "page_view", "app_exception"):
        assert reserved not in by_name
    assert by_name["tool_error"] == by_name["tool_session_start"] == n_events // 20
    assert sum(e["params"].get("value", 0) for e in events if e["name"] == "models_converted") == 30
    (failure,) = [e for e in events if e["name"] == "exception"]
    assert failure["params"]["exception_type"] == "ValueError"
    wide = next(e for e in events if e["name"] == "model_converted")
    assert len(wide["params"]) == 25 and wide["params"]["params_dropped"] > 0
    assert list(wide["params"])[:3] == ["session_id", "engagement_time_msec", "param_0"]


def test_same_tool_event_lands_under_the_same_name_in_every_process(
    home: Path, fake: FakeGA4
) -> None:
    run_cli("opt-in", home=home)
    code = """
    import optel
    t = optel.init(app="sametool")
    t.event("Model Converted (v2) " + "x" * 50)
    t.event("error")
    t.flush(30)
    """
    for _ in range(2):
        assert run_python(code, home, _env(fake)).returncode == 0
    names = [e["name"] for e in fake.events()]
    assert len(names) == 4 and names[0] == names[2] and names[1] == names[3] == "tool_error"
    assert len(names[0]) == 40


def test_records_older_than_72_hours_are_dropped_and_counted(home: Path, fake: FakeGA4) -> None:
    run_cli("opt-in", home=home)
    code = """
    import json, time
    from optel import config
    from optel.spool import NewRecord, Spool
    cfg = config.resolve()
    rows = []
    for age_h in (80, 73, 1):
        t = time.time() - age_h * 3600
        rec = {"signal": "event", "name": "old", "time": t, "time_ns": int(t * 1e9),
               "attributes": {}, "app": "oldtool", "session_id": str(int(t))}
        rows.append(NewRecord("oldtool", "opt-in", "event", ("ga4",), json.dumps(rec), t))
    Spool(cfg.paths.spool).add(rows)
    """
    assert run_python(code, home, _env(fake)).returncode == 0
    r = run_cli("flush", home=home, extra_env=_env(fake))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent 1" in r.stdout and "dropped 2" in r.stdout
    status = json.loads(run_cli("status", "--json", home=home, extra_env=_env(fake)).stdout)
    assert status["dropped"] == {"ga4_older_than_72h": 2}
    assert len(fake.events()) == 1


def test_a_503_is_retried_later_and_delivered_once(home: Path, fake: FakeGA4) -> None:
    run_cli("opt-in", home=home)
    fake.queue(503, {"Retry-After": "0"})
    code = """
    import optel
    t = optel.init(app="retrytool")
    for i in range(30):
        t.event("used", i=i)
    t.flush(30)
    """
    assert run_python(code, home, _env(fake)).returncode == 0
    r = run_cli("flush", home=home, extra_env=_env(fake))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(e["params"]["i"] for e in fake.events()) == list(range(30))
    assert SECRET not in r.stdout + r.stderr


def test_validate_command_prints_messages_and_never_the_secret(home: Path, fake: FakeGA4) -> None:
    r = run_cli("ga4", "validate", home=home, extra_env=_env(fake))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 validation message(s)" in r.stdout and "/debug/mp/collect" in r.stdout
    assert fake.hits and all(h.path == "/debug/mp/collect" for h in fake.hits)
    for args in (("ga4", "validate"), ("settings",), ("status",), ("show",)):
        out = run_cli(*args, home=home, extra_env=_env(fake))
        assert SECRET not in out.stdout + out.stderr, args
    missing = run_cli("ga4", "validate", home=home)
    assert missing.returncode == 2 and "OPTEL_GA4_API_SECRET" in missing.stderr


def test_validate_pending_checks_what_waits(home: Path, fake: FakeGA4) -> None:
    run_cli("opt-in", home=home)
    code = """
    import optel, optel.testing
    t = optel.init(app="pendingtool", destinations="ga4", attributes={"ga_x": optel.Text})
    t.event("session_start", **{"ga_x": "v" * 300})  # 300 characters: no label, text
    optel.testing.pipeline(t).drain()
    """
    env = _env(fake, OPTEL_EXIT_BUDGET_MS="0")
    assert run_python(code, home, env).returncode == 0
    r = run_cli("ga4", "validate", "--pending", "--json", home=home, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["events"] == 1 and result["messages"] == []
    sent = fake.hits[-1].body["events"][0]
    assert sent["name"] == "tool_session_start" and len(sent["params"]["tool_ga_x"]) == 100
