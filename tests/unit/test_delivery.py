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

from optel import config, consent, delivery, exporters
from optel.exporters import Outcome, otlp
from optel.spool import NewRecord, Row, Spool
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
    """A destination answering from a script: 'ok', 'retry', 'reject' or 'boom'."""

    name = "fake"
    remote = True

    def __init__(self, answers: list[str]):
        self.answers = answers
        self.batches: list[list[int]] = []

    def render(self, record: dict[str, Any]) -> str | None:
        return json.dumps(record)

    def send(self, rows: Sequence[Row], timeout_s: float) -> Outcome:
        self.batches.append([r.id for r in rows])
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "boom":
            raise RuntimeError("destination bug")
        if answer == "ok":
            return Outcome(accepted=list(rows))
        if answer == "reject":
            return Outcome(rejected=list(rows), reason="http_400")
        return Outcome(retry=list(rows), retry_after_s=None, reason="http_503")


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(str(tmp_path / "spool.sqlite3"))
    yield s
    s.close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    dest = Fake([])
    monkeypatch.setattr(exporters, "load", lambda name, cfg: dest if name == "fake" else None)
    return dest


def _fill(spool: Spool, n: int, app: str = "tool", destination: str = "fake") -> None:
    spool.add(
        [
            NewRecord(app, "opt-in", "span", destination, f'{{"i": {i}}}', time.time())
            for i in range(n)
        ]
    )


def _deliver(spool: Spool, **kw: Any) -> delivery.Report:
    kw.setdefault("decide", _on)
    return delivery.deliver(spool, config.resolve(), time.monotonic() + 5, "1-test", **kw)


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


def test_a_destination_bug_releases_its_rows(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    fake.answers = ["boom"]
    with pytest.raises(RuntimeError):
        _deliver(spool)
    assert len(spool.claim("fake", "2-other", 10, lease_s=60)) == 3  # not stranded


def test_the_background_rate_is_bounded(spool: Spool, fake: Fake) -> None:
    _fill(spool, 250)
    assert _deliver(spool, max_rows=120).sent == 120
    assert [len(b) for b in fake.batches] == [100, 20]
    assert spool.count() == 130


def test_no_request_starts_without_time_for_it(spool: Spool, fake: Fake) -> None:
    _fill(spool, 3)
    cfg = config.resolve()
    report = delivery.deliver(spool, cfg, time.monotonic() + delivery.MIN_REQUEST_S / 2, "1-t", _on)
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


def _otlp(endpoint: str, **env: str) -> otlp.Destination:
    return otlp.Destination(config.resolve({"otlp_endpoint": endpoint}), environ=env)


def _rows(dest: otlp.Destination, *recs: dict[str, Any]) -> list[Row]:
    return [
        Row(i, "tool", "opt-in", r["signal"], "otlp", dest.render(r) or "", 0.0, 0, None)
        for i, r in enumerate(recs, 1)
    ]


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
        rows = _rows(dest, SPAN, dict(SPAN, name="second"), EVENT)
        outcome = dest.send(rows, timeout_s=5)
    assert len(outcome.accepted) == 3
    assert sorted(r.path for r in server.requests) == ["/v1/logs", "/v1/traces"]
    assert [s.name for s in server.spans()] == ["convert", "second"]
    assert all(r.headers["Content-Type"] == "application/x-protobuf" for r in server.requests)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "after"),
    [
        (200, {}, "accepted", None),
        (202, {}, "accepted", None),
        (400, {}, "rejected", None),
        (413, {}, "rejected", None),
        (408, {}, "retry", None),
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (500, {}, "retry", None),
        (503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, "retry", "future"),
        (302, {"Location": "http://127.0.0.1:9/"}, "retry", None),
    ],
)
def test_each_answer_is_classified(
    status: int, headers: dict[str, str], kind: str, after: Any
) -> None:
    with OtlpServer(default=(status, headers)) as server:
        outcome = _otlp(server.url).send(_rows(_otlp(server.url), SPAN), timeout_s=5)
    assert len(getattr(outcome, kind)) == 1
    if kind != "accepted":
        assert outcome.reason == f"http_{status}"
    if after == "future":
        assert outcome.retry_after_s is not None and outcome.retry_after_s > 3600
    else:
        assert outcome.retry_after_s == after


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
    outcome = dest.send(_rows(dest, SPAN), timeout_s=2)  # refused
    assert len(outcome.retry) == 1 and outcome.reason == "ConnectionError"
    srv, t = _garbage_server()
    try:
        dest = _otlp(f"http://127.0.0.1:{srv.getsockname()[1]}")
        outcome = dest.send(_rows(dest, SPAN), timeout_s=2)
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
        outcome = dest.send(_rows(dest, SPAN), timeout_s=0.3)
    finally:
        srv.close()
    assert len(outcome.retry) == 1 and "Timeout" in outcome.reason


def test_proxies_from_the_environment_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    with OtlpServer() as server:
        monkeypatch.setenv("HTTP_PROXY", dead_proxy)
        monkeypatch.setenv("NO_PROXY", "")
        dest = _otlp(server.url)
        assert len(dest.send(_rows(dest, SPAN), timeout_s=2).retry) == 1  # went to the proxy
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        dest = _otlp(server.url)
        assert len(dest.send(_rows(dest, SPAN), timeout_s=2).accepted) == 1
    assert len(server.requests) == 1


def test_a_corrupt_row_is_dropped_alone() -> None:
    with OtlpServer() as server:
        dest = _otlp(server.url)
        rows = _rows(dest, SPAN) + [
            Row(9, "tool", "opt-in", "span", "otlp", "{not json", 0.0, 0, None)
        ]
        outcome = dest.send(rows, timeout_s=5)
    assert [r.id for r in outcome.accepted] == [1]
    assert [r.id for r in outcome.rejected] == [9] and outcome.reason == "corrupt_payload"


def test_retry_after_forms() -> None:
    assert otlp.retry_after("7") == 7.0
    assert otlp.retry_after(" 1.5 ") == 1.5
    assert otlp.retry_after("-3") is None
    assert otlp.retry_after("soon") is None
    assert otlp.retry_after(None) is None
    past = otlp.retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert past == 0.0
