"""Delivery: what leaves the spool and when; the otlp destination's answers to each reply."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Sequence

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from optel import config, consent, delivery, env, exporters
from optel.exporters import Outcome, Payload, otlp
from optel.spool import NewRecord, Spool
from tests.fakes.otlp_server import OtlpServer

SPAN = {
    "signal": "span",
    "time": 1.0,
    "name": "convert",
    "trace_id": "0" * 31 + "1",
    "span_id": "0" * 15 + "2",
    "parent_span_id": None,
    "kind": "INTERNAL",
    "start_ns": 1,
    "end_ns": 2,
    "status": {"code": "OK", "message": ""},
    "attributes": {"framework": "onnx"},
    "events": [],
    "resource": {"service.name": "tool"},
    "scope": {"name": "tool", "version": "1"},
}
EVENT = {
    "signal": "event",
    "time": 1.0,
    "name": "model_converted",
    "time_ns": 5,
    "attributes": {"framework": "onnx", "ms": 12.5},
    "resource": {"service.name": "tool"},
    "scope": {"name": "optel", "version": None},
}
ON = SimpleNamespace(enabled=True, consent=consent.GRANTED)


def _on(app: str, policy: str) -> Any:
    return ON


class Fake:
    """A destination answering from a script: 'ok', 'retry', 'reject', 'boom' or
    'forget' (an outcome naming no item)."""

    name = "fake"
    remote = True

    def __init__(self, answers: list[str]):
        self.answers = answers
        self.batches: list[list[Any]] = []
        self.items: list[Payload] = []
        self.suppressed: list[bool] = []
        self.made = 0

    def render(self, record: dict[str, Any]) -> str | None:
        return json.dumps(record)

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome:
        from opentelemetry import context

        self.suppressed.append(bool(context.get_value(context._SUPPRESS_INSTRUMENTATION_KEY)))
        keys = [i.key for i in items]
        self.batches.append(keys)
        self.items.extend(items)
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "boom":
            raise RuntimeError("destination bug")
        if answer == "forget":
            return Outcome()
        if answer == "ok":
            return Outcome(accepted=keys)
        if answer == "reject":
            return Outcome(rejected=keys, reason="http_400")
        return Outcome(retry=keys, retry_after_s=None, reason="http_503")

    def warm(self) -> None:
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(str(tmp_path / "spool.sqlite3"))
    yield s
    s.close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    dest = Fake([])

    def load(name: str, cfg: Any) -> Fake | None:
        dest.made += name == "fake"
        return dest if name == "fake" else None

    monkeypatch.setattr(exporters, "load", load)
    return dest


def _fill(spool: Spool, n: int, app: str = "tool", destination: str = "fake") -> None:
    spool.add(
        [
            NewRecord(
                app,
                "opt-in",
                "span",
                (destination,),
                json.dumps(dict(SPAN, attributes={**SPAN["attributes"], "i": i})),
                time.time(),
            )
            for i in range(n)
        ]
    )


def _deliver(
    spool: Spool, dests: exporters.Destinations | None = None, **kw: Any
) -> delivery.Report:
    kw.setdefault("decide", _on)
    cfg = config.resolve()
    dests = dests or exporters.Destinations(cfg)
    return delivery.deliver(spool, dests, cfg, time.monotonic() + 5, "1-test", **kw)


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    for attempts in range(6):
        d = delivery.backoff(attempts)
        assert 2.0**attempts / 2 <= d <= 2.0**attempts
    assert delivery.backoff(50) <= delivery.MAX_BACKOFF_S
    assert delivery.backoff(3, retry_after_s=7.0) == 7.0
    assert delivery.backoff(0, retry_after_s=10**9) == delivery.MAX_BACKOFF_S


def test_accepted_rows_leave_the_spool_in_batches(spool: Spool, fake: Fake) -> None:
    _fill(spool, delivery.BATCH + 5)
    report = _deliver(spool)
    assert report.sent == delivery.BATCH + 5
    assert [len(b) for b in fake.batches] == [delivery.BATCH, 5]
    assert spool.count() == 0 and spool.stats()["sent"] == delivery.BATCH + 5


def test_the_destination_sees_payloads_keyed_by_the_callers_row_ids(
    spool: Spool, fake: Fake
) -> None:
    _fill(spool, 3)
    ids = [r.id for r in spool.pending()]
    _deliver(spool)
    assert fake.batches == [ids]
    assert fake.suppressed == [True]  # instrumentation suppressed around every send


def test_rows_an_outcome_does_not_name_are_freed_not_stranded(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    fake.answers = ["forget"]
    report = _deliver(spool)
    assert (report.sent, report.retried, report.dropped) == (0, 0, 0)
    assert report.errors == ["fake: no outcome for 3 record(s)"] and len(fake.batches) == 1
    assert len(spool.claim("fake", "2-other", 10, lease_s=60)) == 3


def test_one_set_of_destinations_serves_every_delivery_until_closed(
    spool: Spool, fake: Fake
) -> None:
    cfg = config.resolve()
    dests = exporters.Destinations(cfg)
    for _ in range(3):
        _fill(spool, 2)
        assert _deliver(spool, dests).sent == 2
    assert fake.made == 1  # made once, not per delivery
    dests.close()
    _fill(spool, 2)
    assert _deliver(spool, dests).sent == 0  # a closed set sends nothing more
    assert fake.made == 1 and spool.count() == 2


def test_a_retry_keeps_rows_backing_off_and_stops_hammering(spool: Spool, fake: Fake) -> None:
    _fill(spool, delivery.BATCH + 5)
    fake.answers = ["retry"]
    report = _deliver(spool)
    assert report.retried == delivery.BATCH and report.sent == 0
    assert len(fake.batches) == 1  # the unhealthy destination is left alone
    assert spool.count() == delivery.BATCH + 5
    assert "http_503" in (spool.last_error() or "")
    # the retried rows are not due yet; the 5 untried ones are
    assert _deliver(spool).sent == 5
    assert _deliver(spool, force=True).sent == delivery.BATCH  # optel flush: now


def test_rejected_rows_are_dropped_and_counted(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    fake.answers = ["reject"]
    assert _deliver(spool).dropped == 3
    assert spool.count() == 0 and spool.stats()["dropped_http_400"] == 3


def test_a_destination_bug_releases_its_items(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    fake.answers = ["boom"]
    with pytest.raises(RuntimeError):
        _deliver(spool)
    assert len(spool.claim("fake", "2-other", 10, lease_s=60)) == 3  # not stranded


def test_the_background_rate_is_bounded(spool: Spool, fake: Fake) -> None:
    _fill(spool, delivery.BATCH + 250)
    assert _deliver(spool, max_rows=delivery.BATCH + 20).sent == delivery.BATCH + 20
    assert [len(b) for b in fake.batches] == [delivery.BATCH, 20]
    assert spool.count() == 230


def test_no_request_starts_without_time_for_it(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    cfg = config.resolve()
    dests = exporters.Destinations(cfg)
    deadline = time.monotonic() + delivery.MIN_REQUEST_S / 2
    report = delivery.deliver(spool, dests, cfg, deadline, "1-t", _on)
    assert report.sent == 0 and fake.batches == []
    assert len(spool.claim("fake", "2-other", 10, lease_s=60)) == 3  # released, not leased


def test_consent_is_checked_per_row_just_before_sending(spool: Spool, fake: Fake) -> None:
    _fill(spool, 2, app="withdrawn")
    _fill(spool, 2, app="killswitch")
    _fill(spool, 2, app="granted")
    answers = {
        "withdrawn": SimpleNamespace(enabled=False, consent=consent.DENIED),
        "killswitch": SimpleNamespace(enabled=False, consent=consent.GRANTED),
        "granted": ON,
    }
    report = _deliver(spool, decide=lambda app, policy: answers[app])
    assert (report.sent, report.dropped, report.held) == (2, 2, 2)
    assert {r.app for r in spool.pending()} == {"killswitch"}  # waits for the switch


# -- the otlp destination ------------------------------------------------------------


def _otlp(endpoint: str, **settings: Any) -> otlp.Destination:
    return otlp.Destination(config.resolve({"otlp_endpoint": endpoint, **settings}))


def _items(dest: otlp.Destination, *recs: dict[str, Any]) -> list[Payload]:
    return [Payload(i, r["signal"], None, 0.0, record=r) for i, r in enumerate(recs, 1)]


def test_an_event_renders_as_a_log_record_named_by_event_name() -> None:
    payload = _otlp("http://127.0.0.1:9").render(EVENT)
    assert payload is not None
    msg = json_format.Parse(payload, ExportLogsServiceRequest())
    rec = msg.resource_logs[0].scope_logs[0].log_records[0]
    attrs = {kv.key: kv.value for kv in rec.attributes}
    assert attrs["event.name"].string_value == "model_converted"
    assert attrs["ms"].double_value == 12.5
    assert rec.event_name == "model_converted"
    # the stored payload is the protobuf JSON mapping, so `optel show` prints the wire message
    assert (
        json.loads(payload)["resourceLogs"][0]["resource"]["attributes"][0]["key"] == "service.name"
    )


def test_a_batch_goes_out_as_one_protobuf_request_per_signal() -> None:
    with OtlpServer() as server:
        dest = _otlp(server.url)
        rows = _items(dest, SPAN, dict(SPAN, name="second"), EVENT)
        outcome = dest.send(rows, timeout_s=5)
    assert outcome.accepted == [1, 2, 3]
    assert sorted(r.path for r in server.requests) == ["/v1/logs", "/v1/traces"]
    assert [s.name for s in server.spans()] == ["convert", "second"]
    assert all(r.headers["Content-Type"] == "application/x-protobuf" for r in server.requests)


def test_otlp_settings_come_from_the_settings_table_per_signal_first(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-env=1")  # the destination reads cfg only
    with OtlpServer() as server:
        cfg = config.resolve(
            {
                "otlp_endpoint": server.url,
                "otlp_headers": "x-team=ml%20tools",
                "otlp_traces_headers": "x-team=traces",
                "otlp_logs_compression": "gzip",
                "otlp_metrics_endpoint": f"{server.url}/custom/metrics",
            },
            {env.OPTEL_HOME: str(home)},
        )
        dest = otlp.Destination(cfg)
        outcome = dest.send(_items(dest, SPAN, EVENT), timeout_s=5)
        dest.close()
    assert outcome.accepted == [1, 2]
    got = {r.path: r.headers for r in server.requests}
    assert got["/v1/traces"]["x-team"] == "traces"  # the per-signal value wins
    assert got["/v1/logs"]["x-team"] == "ml tools"  # else the general one
    assert got["/v1/logs"]["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in got["/v1/traces"]
    assert all("x-env" not in h for h in got.values())
    assert dest.url("metrics") == f"{server.url}/custom/metrics"  # a per-signal URL as is
    assert dest.url("traces") == f"{server.url}/v1/traces"


def _garbage_server() -> tuple[socket.socket, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x01 not http at all\r\n\r\n")
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def test_connection_trouble_is_retried_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = _otlp(f"http://127.0.0.1:{port}")
    outcome = dest.send(_items(dest, SPAN), timeout_s=2)  # refused
    assert outcome.retry == [1] and outcome.reason == "connection_error_ConnectionRefusedError"
    srv, t = _garbage_server()
    try:
        dest = _otlp(f"http://127.0.0.1:{srv.getsockname()[1]}")
        outcome = dest.send(_items(dest, SPAN), timeout_s=2)
    finally:
        t.join(2)
        srv.close()
    assert len(outcome.retry) == 1


def test_a_silent_server_times_out_into_a_retry() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)  # accepts (backlog), never answers
    try:
        dest = _otlp(f"http://127.0.0.1:{srv.getsockname()[1]}")
        outcome = dest.send(_items(dest, SPAN), timeout_s=0.3)
    finally:
        srv.close()
    assert outcome.retry == [1] and outcome.reason == "timeout"


def test_proxies_from_the_environment_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    with OtlpServer() as server:
        monkeypatch.setenv("HTTP_PROXY", dead_proxy)
        monkeypatch.setenv("NO_PROXY", "")
        dest = _otlp(server.url)
        assert len(dest.send(_items(dest, SPAN), timeout_s=2).retry) == 1  # went to the proxy
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        dest = _otlp(server.url)
        assert len(dest.send(_items(dest, SPAN), timeout_s=2).accepted) == 1
    assert len(server.requests) == 1


def test_a_record_that_cannot_be_rendered_is_dropped_alone() -> None:
    with OtlpServer() as server:
        dest = _otlp(server.url)
        broken = dict(SPAN, trace_id="not hex")
        items = _items(dest, SPAN) + [
            Payload(8, "span", None, 0.0, record=broken),
            Payload(9, "span", "{not json", 0.0),  # an older optel's payload, damaged
        ]
        outcome = dest.send(items, timeout_s=5)
    assert outcome.accepted == [1]
    assert sorted(outcome.rejected) == [8, 9] and outcome.reason == "unrenderable_record"
    assert [s.name for s in server.spans()] == ["convert"]


def test_retry_after_forms() -> None:
    assert exporters.retry_after("7") == 7.0
    assert exporters.retry_after(" 1.5 ") == 1.5
    assert exporters.retry_after("-3") is None
    assert exporters.retry_after("soon") is None
    assert exporters.retry_after(None) is None
    past = exporters.retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert past == 0.0


# -- records rendered when they are sent ------------------------------------------------


def _otlp_cfg(endpoint: str, **settings: Any) -> config.Config:
    return config.resolve({"otlp_endpoint": endpoint, **settings})


def test_spooled_records_are_rendered_when_sent_one_request_per_signal(spool: Spool) -> None:
    spans = [dict(SPAN, name=f"s{i}") for i in range(3)]
    spool.add(
        [NewRecord("tool", "opt-in", r["signal"], ("otlp",), json.dumps(r), time.time())
         for r in [*spans, EVENT]]
    )  # fmt: skip
    with OtlpServer() as server:
        cfg = _otlp_cfg(server.url)
        with exporters.Destinations(cfg) as dests:
            report = delivery.deliver(spool, dests, cfg, time.monotonic() + 5, "1-t", _on)
    assert report.sent == 4 and spool.count() == 0
    assert sorted(r.path for r in server.requests) == ["/v1/logs", "/v1/traces"]
    traces = next(r.message for r in server.requests if r.path == "/v1/traces")
    # records sharing a resource and scope share one ResourceSpans/ScopeSpans
    assert len(traces.resource_spans) == 1 and len(traces.resource_spans[0].scope_spans) == 1
    assert [s.name for s in traces.resource_spans[0].scope_spans[0].spans] == ["s0", "s1", "s2"]
    assert [r.event_name for r in server.log_records()] == ["model_converted"]


def test_payloads_an_older_optel_rendered_are_dropped_and_counted_never_sent(
    tmp_path: Path,
) -> None:
    # a rendered wire payload is not a record: the re-check cannot vouch for it
    import sqlite3

    from optel.exporters import ga4
    from tests.fakes.ga4_server import FakeGA4

    path = tmp_path / "spool.sqlite3"
    old_otlp = json_format.MessageToJson(otlp_message(SPAN), indent=None, sort_keys=True)
    now = time.time()
    fragment = json.dumps(
        {"user_properties": {}, "events": [{"name": "old_event", "params": {},
                                            "timestamp_micros": int(now * 1e6)}]}
    )  # fmt: skip
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL,"
        " policy TEXT NOT NULL, signal TEXT NOT NULL, destination TEXT NOT NULL,"
        " payload TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL DEFAULT 0,"
        " lease_owner TEXT, lease_until REAL NOT NULL DEFAULT 0, last_error TEXT);"
    )
    db.executemany(
        "INSERT INTO records (app, policy, signal, destination, payload, size, created)"
        " VALUES ('old', 'opt-in', ?, ?, ?, 1, ?)",
        [("span", "otlp", old_otlp, now), ("event", "ga4", fragment, now)],
    )
    db.commit()
    db.close()
    spool = Spool(str(path))
    with OtlpServer() as server, FakeGA4() as fake:
        cfg = config.resolve(
            {"otlp_endpoint": server.url, "ga4_measurement_id": "G-OLD", "ga4_api_secret": "x"},
            {env.OPTEL_HOME: str(tmp_path), env.OPTEL_GA4_ENDPOINT: fake.url},
        )
        with exporters.Destinations(cfg) as dests:
            report = delivery.deliver(spool, dests, cfg, time.monotonic() + 5, "1-t", _on)
    assert (report.sent, report.dropped) == (0, 2) and spool.count() == 0
    assert spool.stats()["dropped_unverified"] == 2
    assert server.requests == [] and fake.events() == []
    assert ga4.Destination(cfg).render(EVENT) is not None
    spool.close()


def otlp_message(rec: dict[str, Any]) -> Any:
    """The one-record export request, as optel before schema 2 rendered it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    body, bad = otlp.otlpwire.encode([rec])
    assert bad == []
    return ExportTraceServiceRequest.FromString(body)


def test_a_spooled_body_that_is_not_a_record_is_dropped_never_sent(
    spool: Spool, fake: Fake
) -> None:
    _fill(spool, 2)
    spool.add([NewRecord("tool", "opt-in", "span", ("fake",), "{not json", time.time())])
    spool.add([NewRecord("tool", "opt-in", "span", ("fake",), '["a list"]', time.time())])
    report = _deliver(spool)
    assert (report.sent, report.dropped) == (2, 2)
    assert spool.stats()["dropped_unreadable_record"] == 2
    assert all(item.record is not None for item in fake.items)


def test_one_record_for_two_destinations_leaves_after_both(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = Fake([]), Fake(["retry"])
    a.name, b.name = "a", "b"
    monkeypatch.setattr(exporters, "load", lambda name, cfg: {"a": a, "b": b}.get(name))
    spool.add([NewRecord("tool", "opt-in", "span", ("a", "b"), json.dumps(SPAN), time.time())])
    report = _deliver(spool)
    assert (report.sent, report.retried) == (1, 1)
    assert spool.count() == 1 and [r.destination for r in spool.pending()] == ["b"]
    assert _deliver(spool, force=True).sent == 1
    assert spool.count() == 0
    assert a.items[0].record == b.items[-1].record == SPAN  # the same record, rendered by each


def test_delivery_payload_is_the_one_place_a_spooled_record_becomes_a_payload(
    spool: Spool, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a later re-check of spooled records (schema validation, anonymizing again)
    # slots in here: whatever it returns is what every destination gets
    plain = delivery.payload

    def rechecked(row: Any, known: Any = None) -> Payload:
        item = plain(row, known)
        assert item.record is not None
        return Payload(item.key, item.signal, None, item.created, {**item.record, "name": "x"})

    monkeypatch.setattr(delivery, "payload", rechecked)
    _fill(spool, 2)
    assert _deliver(spool).sent == 2
    assert [i.record["name"] for i in fake.items if i.record] == ["x", "x"]


def test_show_renders_with_the_code_that_sends(spool: Spool) -> None:
    spool.add([NewRecord("tool", "opt-in", "span", ("otlp",), json.dumps(SPAN), time.time())])
    (row,) = spool.pending()
    cfg = _otlp_cfg("http://127.0.0.1:9")
    with exporters.Destinations(cfg) as dests:
        text = delivery.shown(row, dests.get("otlp"))
    assert text is not None
    doc = json.loads(text)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == SPAN["trace_id"] and span["kind"] == 1  # OTLP/JSON: hex, ints
    assert delivery.shown(row, None) is None  # no destination here: nothing to show


def test_records_this_process_spooled_are_not_parsed_back(spool: Spool) -> None:
    (row,) = _fill(spool, 1) or spool.pending()
    mine = {"signal": "span", "name": "from memory"}
    assert delivery.payload(row, {row.payload: mine}).record is mine  # the same text: no parse
    assert delivery.payload(row, {}).record == json.loads(row.payload)
