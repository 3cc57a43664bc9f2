"""The GA4 destination: mapping of each record kind, packing, response handling."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from optel import config
from optel.exporters import Payload, ga4, load
from optel.exporters.ga4 import limits
from tests.fakes.ga4_server import FakeGA4

SECRET = "s3cret-never-shown"


@pytest.fixture
def fake() -> Iterator[FakeGA4]:
    with FakeGA4() as server:
        yield server


def _cfg(home: Path, endpoint: str | None = None, **env: str) -> config.Config:
    environ = {"OPTEL_HOME": str(home), **env}
    if endpoint:
        environ["OPTEL_GA4_ENDPOINT"] = endpoint
    return config.resolve({"ga4_measurement_id": "G-TEST", "ga4_api_secret": SECRET}, environ)


def _event(name: str = "used", t: float | None = None, **attrs: Any) -> dict[str, Any]:
    t = time.time() if t is None else t
    return {
        "signal": "event",
        "time": t,
        "time_ns": int(t * 1e9),
        "name": name,
        "attributes": attrs,
        "app": "mytool",
        "version": "1.2.3",
        "session_id": "1700000000",
        "resource": {"os.type": "linux", "process.runtime.version": "3.11.7"},
    }


def _rows(dest: Any, records: list[dict[str, Any]]) -> list[Payload]:
    return [Payload(i + 1, r["signal"], dest.render(r), r["time"]) for i, r in enumerate(records)]


# -- mapping ---------------------------------------------------------------------------


def test_event_maps_to_one_ga4_event_with_session_engagement_and_user_properties(
    home: Path,
) -> None:
    dest = load("ga4", _cfg(home))
    rec = _event("model.converted", framework="onnx", duration_ms=12.5)
    frag = json.loads(dest.render(rec))
    (ev,) = frag["events"]
    assert ev["name"] == "model_converted"
    assert ev["params"] == {
        "session_id": "1700000000",
        "engagement_time_msec": 12,
        "framework": "onnx",
        "duration_ms": 12.5,
    }
    assert ev["timestamp_micros"] == rec["time_ns"] // 1000
    assert frag["user_properties"] == {
        "app": {"value": "mytool"},
        "app_version": {"value": "1.2.3"},
        "os": {"value": "linux"},
        "python": {"value": "3.11.7"},
    }
    assert SECRET not in dest.render(rec) and "client_id" not in frag  # added at send time


def test_span_duration_becomes_engagement_and_error_status_a_param(home: Path) -> None:
    dest = load("ga4", _cfg(home))
    now = time.time_ns()
    rec = {
        **_event(),
        "signal": "span",
        "name": "convert",
        "start_ns": now - 1_500_000_000,
        "end_ns": now,
        "status": {"code": "ERROR", "message": ""},
        "events": [{"name": "exception", "attributes": {"exception.type": "ValueError"}}],
    }
    (ev,) = json.loads(dest.render(rec))["events"]
    assert ev["name"] == "convert"
    assert ev["params"]["engagement_time_msec"] == 1500
    assert ev["params"]["status"] == "error"
    assert ev["params"]["exception_type"] == "ValueError"


def test_failure_report_becomes_exception_event_with_type_and_location(home: Path) -> None:
    dest = load("ga4", _cfg(home))
    rec = _event(
        "exception",
        **{
            "exception.type": "torch.cuda.OutOfMemoryError",
            "exception.message": "CUDA out of memory",
            "exception.stacktrace": "<user-code>:3 in main\nsite-packages/torch/nn/module.py:1501 in _call_impl",
        },
    )
    (ev,) = json.loads(dest.render(rec))["events"]
    assert ev["name"] == "exception"
    assert ev["params"]["exception_type"] == "torch.cuda.OutOfMemoryError"
    assert (
        ev["params"]["exception_location"] == "site-packages/torch/nn/module.py:1501 in _call_impl"
    )
    assert ev["params"]["exception_message"] == "CUDA out of memory"
    rec["report"] = {
        "type": "KeyError",
        "message": "",
        "frames": [{"file": "a.py", "line": 7, "function": "f"}],
    }
    (ev,) = json.loads(dest.render(rec))["events"]
    assert ev["params"]["exception_type"] == "KeyError"
    assert ev["params"]["exception_location"] == "a.py:7 in f"


def test_metrics_become_aggregated_events_one_per_attribute_set(home: Path) -> None:
    dest = load("ga4", _cfg(home))
    now = time.time_ns()
    counter = {
        **_event(),
        "signal": "metric",
        "name": "models.converted",
        "type": "sum",
        "unit": "1",
        "points": [
            {"attributes": {"framework": "onnx"}, "time_ns": now, "value": 7},
            {"attributes": {"framework": "tf"}, "time_ns": now, "value": 2},
        ],
    }
    events = json.loads(dest.render(counter))["events"]
    assert [(e["name"], e["params"]["framework"], e["params"]["value"]) for e in events] == [
        ("models_converted", "onnx", 7),
        ("models_converted", "tf", 2),
    ]
    hist = {
        **counter,
        "name": "convert.duration",
        "type": "histogram",
        "unit": "ms",
        "points": [
            {"attributes": {}, "time_ns": now, "count": 3, "sum": 30.0, "min": 5.0, "max": 15.0}
        ],
    }
    (ev,) = json.loads(dest.render(hist))["events"]
    assert {k: ev["params"][k] for k in ("count", "sum", "min", "max", "unit")} == {
        "count": 3, "sum": 30.0, "min": 5.0, "max": 15.0, "unit": "ms",
    }  # fmt: skip
    many = {
        **counter,
        "points": [{"attributes": {"i": i}, "time_ns": now, "value": i} for i in range(30)],
    }
    events = json.loads(dest.render(many))["events"]
    assert len(events) == 25 and events[0]["params"]["points_dropped"] == 5


# -- packing ------------------------------------------------------------------------------


def test_pack_splits_into_requests_of_at_most_25_events_and_under_the_body_limit(
    home: Path,
) -> None:
    dest = load("ga4", _cfg(home))
    rows = _rows(dest, [_event(f"e{i}") for i in range(100)])
    requests, old, bad = ga4.pack(rows)
    assert [len(r.events) for r in requests] == [25, 25, 25, 25] and not old and not bad
    # wide characters: each value is up to 400 bytes in UTF-8, 25 params each
    heavy = [
        _event("heavy", **{f"k{j}": "\U0001f600" * 300 for j in range(30)}) for _ in range(100)
    ]
    requests, _, _ = ga4.pack(_rows(dest, heavy))
    assert sum(len(r.events) for r in requests) == 100
    for r in requests:
        assert len(r.events) <= 25
        body = ga4.mapping.dumps(r.body("a-client-id")).encode()
        assert len(body) < limits.MAX_BODY_BYTES


def test_rows_of_different_apps_never_share_a_request(home: Path) -> None:
    dest = load("ga4", _cfg(home))
    recs = [dict(_event(), app="a" if i % 2 else "b") for i in range(10)]
    requests, _, _ = ga4.pack(_rows(dest, recs))
    assert sorted(len(r.events) for r in requests) == [5, 5]
    assert {r.user_properties["app"]["value"] for r in requests} == {"a", "b"}


def test_events_older_than_72_hours_are_dropped_and_counted(home: Path, fake: FakeGA4) -> None:
    dest = load("ga4", _cfg(home, fake.url))
    old = time.time() - 73 * 3600
    rows = _rows(dest, [_event(t=old), _event(), _event(t=old)])
    out = dest.send(rows, 5)
    assert out.rejected == [1, 3] and out.reason == "ga4_older_than_72h"
    assert out.accepted == [2]
    assert len(fake.events()) == 1 and fake.messages() == []


# -- sending -------------------------------------------------------------------------------


def test_send_posts_json_with_client_id_and_non_personalized_ads(home: Path, fake: FakeGA4) -> None:
    dest = load("ga4", _cfg(home, fake.url))
    out = dest.send(_rows(dest, [_event(f"e{i}") for i in range(60)]), 5)
    assert len(out.accepted) == 60 and not out.retry and not out.rejected
    assert [len(h.events) for h in fake.hits] == [25, 25, 10]
    hit = fake.hits[0]
    assert hit.path == "/mp/collect" and hit.headers["Content-Type"] == "application/json"
    assert hit.query == {"measurement_id": ["G-TEST"], "api_secret": [SECRET]}
    from optel.identity import client_id

    assert hit.body["client_id"] == client_id(dest.cfg.paths, create=False)
    assert hit.body["non_personalized_ads"] is True
    assert fake.messages() == []


def test_a_retry_keeps_the_rest_of_the_batch_for_later(home: Path, fake: FakeGA4) -> None:
    dest = load("ga4", _cfg(home, fake.url))
    fake.queue(204)
    fake.queue(503)
    out = dest.send(_rows(dest, [_event() for _ in range(75)]), 5)
    assert len(out.accepted) == 25 and len(out.retry) == 50
    assert len(fake.hits) == 2  # the unhealthy service is not hammered


def test_connection_errors_retry_and_never_quote_the_secret(home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens
    dest = load("ga4", _cfg(home, f"http://127.0.0.1:{port}"))
    out = dest.send(_rows(dest, [_event()]), 2)
    assert len(out.retry) == 1 and out.reason.startswith("ga4_connection_error")
    assert SECRET not in out.reason and SECRET not in repr(dest)


def test_eu_region_uses_region1_unless_an_endpoint_is_set(home: Path) -> None:
    assert ga4.endpoint(_cfg(home)) == "https://www.google-analytics.com"
    assert ga4.endpoint(_cfg(home, OPTEL_GA4_REGION="eu")) == "https://region1.google-analytics.com"
    assert (
        ga4.endpoint(_cfg(home, "http://127.0.0.1:9", OPTEL_GA4_REGION="eu"))
        == "http://127.0.0.1:9"
    )


def test_validate_reports_the_debug_servers_messages(home: Path, fake: FakeGA4) -> None:
    cfg = _cfg(home, fake.url)
    assert ga4.validate(cfg)["messages"] == []
    bad = json.dumps({"events": [{"name": "error", "params": {"ga_x": "y" * 101}}]})
    result = ga4.validate(cfg, [bad])
    codes = sorted(m["validationCode"] for m in result["messages"])
    assert codes == ["NAME_RESERVED", "NAME_RESERVED", "VALUE_OUT_OF_BOUNDS"]
    assert fake.hits[-1].path == "/debug/mp/collect"
    assert not (home / "identity.json").exists()  # validating creates no client id


def test_log_record_becomes_log_severity_event_and_unknown_signals_are_skipped(home: Path) -> None:
    dest = load("ga4", _cfg(home))
    rec = {**_event(), "signal": "log", "severity": "WARNING", "body": "disk " + "z" * 200,
           "scope": {"name": "mytool.io", "version": None}}  # fmt: skip
    (ev,) = json.loads(dest.render(rec))["events"]
    assert ev["name"] == "log_warning"
    assert ev["params"]["logger"] == "mytool.io" and len(ev["params"]["message"]) == 100
    assert dest.render({**_event(), "signal": "profile"}) is None
