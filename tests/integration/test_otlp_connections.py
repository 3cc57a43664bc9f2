"""A pipeline owns its destinations: one connection serves the whole run, closed at shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

import optel
from optel import consent, env
from optel.config import paths
from tests.fakes.otlp_server import OtlpGrpcServer, OtlpServer
from tests.fakes.serve import CountingRelay


@pytest.fixture(autouse=True)
def granted(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    consent.record(consent.GRANTED, "mytool", p=paths())
    # only the flushes send: the worker's own cycle would be a second, concurrent user
    monkeypatch.setenv(env.OPTEL_FLUSH_INTERVAL_MS, "600000")


def _three_flushes(endpoint: str) -> optel.Telemetry:
    t = optel.init(app="mytool", otlp_endpoint=endpoint)
    assert isinstance(t, optel.Telemetry)
    for i in range(3):
        t.event("used", round=i)
        assert t.flush(5)
    return t


def test_three_flushes_open_one_http_connection_closed_at_shutdown() -> None:
    with OtlpServer() as server:
        t = _three_flushes(server.url)
        rounds = [r for r in server.log_records() if r.event_name == "used"]
        assert len(rounds) == 3 and len(server.accepted()) >= 3  # three sends ...
        assert server.connections == 1  # ... over one connection
        t.shutdown()
        assert server.wait_closed(1)  # the session was closed, not left to the GC
        assert server.connections == 1


def test_three_flushes_over_grpc_use_one_channel_closed_at_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env.OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")
    with OtlpGrpcServer() as server, CountingRelay(server.port) as relay:
        t = _three_flushes(f"http://127.0.0.1:{relay.port}")
        logs = [req for signal, req in server.requests if signal == "logs"]
        assert len(logs) >= 3
        assert relay.connections == 1  # one channel, made once
        t.shutdown()
        assert relay.wait_ended(1)  # and closed at shutdown
        assert relay.connections == 1
