"""One classifier for every destination's answers: the rule, then GA4 and OTLP against it."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from optel import config, exporters
from optel.exporters import ACCEPTED, REJECTED, RETRY, Outcome, Payload, ga4, otlp
from tests.fakes.ga4_server import FakeGA4
from tests.fakes.otlp_server import OtlpServer

FUTURE = "Wed, 21 Oct 2099 07:28:00 GMT"

# (status, Retry-After header, kind, retry_after_s); "future": many seconds from now
TABLE: list[tuple[int, str | None, str, Any]] = [
    (200, None, ACCEPTED, None),
    (202, None, ACCEPTED, None),
    (204, None, ACCEPTED, None),
    (301, None, RETRY, None),  # redirects: kept, never followed
    (302, None, RETRY, None),
    (307, "5", RETRY, 5.0),
    (308, None, RETRY, None),
    (400, None, REJECTED, None),
    (401, None, REJECTED, None),
    (403, None, REJECTED, None),
    (404, None, REJECTED, None),
    (413, None, REJECTED, None),
    (408, None, RETRY, None),
    (429, "7", RETRY, 7.0),
    (500, None, RETRY, None),
    (502, None, RETRY, None),
    (503, FUTURE, RETRY, "future"),
    (504, None, RETRY, None),
]


def _after_ok(got: float | None, want: Any) -> bool:
    return got is not None and got > 3600 if want == "future" else got == want


@pytest.mark.parametrize(("status", "header", "kind", "after"), TABLE)
def test_the_http_rule(status: int, header: str | None, kind: str, after: Any) -> None:
    verdict = exporters.classify_http(status, header)
    assert verdict.kind == kind
    assert verdict.reason == ("" if kind == ACCEPTED else f"http_{status}")
    assert _after_ok(verdict.retry_after_s, after)


def test_no_answer_is_always_retried_and_named_without_the_url() -> None:
    url = "http://127.0.0.1:9/mp/collect?api_secret=s3cret"
    cases = {
        socket.timeout(url): "timeout",  # not a TimeoutError before Python 3.10
        TimeoutError(url): "timeout",
        ConnectionRefusedError(url): "connection_error_ConnectionRefusedError",
        ssl.SSLError(url): "connection_error_SSLError",
        http.client.BadStatusLine(url): "connection_error_BadStatusLine",
        socket.gaierror(url): "connection_error_gaierror",
        FileNotFoundError("/etc/ca.pem"): "connection_error_FileNotFoundError",
    }
    for exc, reason in cases.items():
        verdict = exporters.classify_error(exc)
        assert (verdict.kind, verdict.reason) == (RETRY, reason)
        assert "s3cret" not in verdict.reason


def test_the_grpc_rule_follows_the_otlp_spec() -> None:
    # https://opentelemetry.io/docs/specs/otlp/#failures
    retryable = {
        "CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "OUT_OF_RANGE",
        "UNAVAILABLE", "DATA_LOSS",
    }  # fmt: skip
    for code in grpc.StatusCode:
        verdict = exporters.classify_grpc(code.name)
        if code is grpc.StatusCode.OK:
            assert verdict.kind == ACCEPTED
        else:
            assert verdict.kind == (RETRY if code.name in retryable else REJECTED), code
            assert verdict.reason == f"grpc_{code.name.lower()}"


# -- both HTTP destinations follow it ------------------------------------------------------

SPAN = {
    "signal": "span",
    "time": 0.0,
    "name": "convert",
    "trace_id": "0" * 31 + "1",
    "span_id": "0" * 15 + "2",
    "kind": "INTERNAL",
    "start_ns": 1,
    "end_ns": 2,
    "status": {"code": "OK", "message": ""},
    "attributes": {},
    "events": [],
    "resource": {"service.name": "tool"},
    "app": "tool",
    "session_id": "1",
}


@contextmanager
def _ga4(home: Path, status: int, headers: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    with FakeGA4() as fake:
        fake.queue(status, headers)
        cfg = config.resolve(
            {"ga4_measurement_id": "G-TEST", "ga4_api_secret": "s3cret"},
            {"OPTEL_HOME": str(home), "OPTEL_GA4_ENDPOINT": fake.url},
        )
        yield ga4.Destination(cfg), fake


@contextmanager
def _otlp(home: Path, status: int, headers: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    with OtlpServer(default=(status, headers)) as server:
        yield otlp.Destination(config.resolve({"otlp_endpoint": server.url})), server


DESTINATIONS = {"ga4": (_ga4, "ga4_"), "otlp": (_otlp, "")}


def _item(dest: Any) -> Payload:
    """A span that ended just now (GA4 drops events older than 72 hours)."""
    now = time.time()
    rec = {**SPAN, "time": now, "start_ns": int(now * 1e9), "end_ns": int(now * 1e9) + 1}
    return Payload("k", "span", None, now, record=rec)


def _send(dest: Any, timeout_s: float = 5) -> Outcome:
    try:
        return dest.send([_item(dest)], timeout_s)
    finally:
        dest.close()


@pytest.mark.parametrize("name", sorted(DESTINATIONS))
@pytest.mark.parametrize(("status", "header", "kind", "after"), TABLE)
def test_each_destination_classifies_each_answer_alike(
    home: Path, name: str, status: int, header: str | None, kind: str, after: Any
) -> None:
    serve, prefix = DESTINATIONS[name]
    with OtlpServer() as elsewhere:  # where a redirect points: must get nothing
        headers = {"Retry-After": header} if header else {}
        if 300 <= status < 400:
            headers["Location"] = f"{elsewhere.url}/v1/traces"
        with serve(home, status, headers) as (dest, _server):
            outcome = _send(dest)
    assert getattr(outcome, kind) == ["k"]
    assert outcome.reason == ("" if kind == ACCEPTED else f"{prefix}http_{status}")
    assert _after_ok(outcome.retry_after_s, after)
    assert elsewhere.requests == []


@pytest.mark.parametrize("name", sorted(DESTINATIONS))
def test_each_destination_retries_refused_and_silent_servers(home: Path, name: str) -> None:
    _, prefix = DESTINATIONS[name]
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts (backlog), never answers
    cases = {refused: "connection_error_ConnectionRefusedError", silent: "timeout"}
    try:
        for sock, reason in cases.items():
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            if name == "ga4":
                cfg = config.resolve(
                    {"ga4_measurement_id": "G-TEST", "ga4_api_secret": "s3cret"},
                    {"OPTEL_HOME": str(home), "OPTEL_GA4_ENDPOINT": url},
                )
                dest: Any = ga4.Destination(cfg)
            else:
                dest = otlp.Destination(config.resolve({"otlp_endpoint": url}))
            outcome = _send(dest, 0.5)
            assert outcome.retry == ["k"] and outcome.reason == f"{prefix}{reason}"
    finally:
        refused.close()
        silent.close()
