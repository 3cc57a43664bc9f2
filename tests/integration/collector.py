"""Run the custom OpenTelemetry Collector (collector-config/) on loopback for tests.

Reusable by any test that wants a real collector::

    binary = build()                      # skips the test when Go is missing
    gw = Collector(binary, tmp_path / "out")
    try:
        ...  # OTEL_EXPORTER_OTLP_ENDPOINT=gw.http_url, or gw.post("traces", body)
    finally:
        gw.stop()                         # SIGTERM: drains, flushes, exit 0
    spans(gw.lines())

Not a conftest: import it explicitly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector-config"
BINARY = ROOT / ".build" / "otelcol-optel" / "otelcol-optel"
SIGNALS = ("traces", "metrics", "logs")

# Every shipped collector config and the --config files it runs with (an
# overlay runs on top of its base). A new config must be added here: the
# validate test fails for a file it does not know.
CONFIG_SETS: dict[str, tuple[str, ...]] = {
    "gateway.yaml": ("gateway.yaml",),
    "gateway-forward.yaml": ("gateway.yaml", "gateway-forward.yaml"),
    "gateway-clickhouse.yaml": ("gateway.yaml", "gateway-clickhouse.yaml"),
}
NOT_CONFIGS = ("builder-config.yaml",)  # the builder's manifest


def build() -> Path:
    """The collector binary, built or found cached; skips the test when Go is missing."""
    r = subprocess.run(
        ["bash", str(CONFIGS / "build.sh")], capture_output=True, text=True, timeout=1800
    )
    if r.returncode == 3:
        pytest.skip(f"collector tests need Go: {r.stderr.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    return BINARY


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_args(configs: Sequence[str]) -> list[str]:
    """``--config`` arguments for files in collector-config/."""
    return [arg for name in configs for arg in ("--config", str(CONFIGS / name))]


class Collector:
    """The gateway on free loopback ports.

    ``out`` is the OPTEL_GW_FILE prefix: gateway.yaml writes one file per
    signal, ``<out>.traces.json``, ``<out>.metrics.json``, ``<out>.logs.json``.
    ``configs`` are files in collector-config/, merged in order; ``env`` adds
    variables (OPTEL_GW_UPSTREAM for gateway-forward.yaml, say).
    """

    def __init__(
        self,
        binary: Path,
        out: Path,
        configs: Sequence[str] = ("gateway.yaml",),
        env: dict[str, str] | None = None,
    ):
        self.out = out
        self.files = [Path(f"{out}.{signal}.json") for signal in SIGNALS]
        self.log = out.with_suffix(".log")
        # A port picked free can be taken before the collector binds it:
        # try again on new ports rather than fail the test.
        for attempt in range(3):
            self.http_port, self.grpc_port = free_port(), free_port()
            environ = dict(
                os.environ,
                OPTEL_GW_HTTP_ENDPOINT=f"127.0.0.1:{self.http_port}",
                OPTEL_GW_GRPC_ENDPOINT=f"127.0.0.1:{self.grpc_port}",
                OPTEL_GW_FILE=str(out),
                **(env or {}),
            )
            self._log_file = open(self.log, "w")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(
                [str(binary), *config_args(configs)],
                env=environ,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready():
                return
            self._log_file.close()
            text = self.log.read_text()
            if "address already in use" not in text or attempt == 2:
                raise AssertionError(f"collector did not start: {text[-3000:]}")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _wait_ready(self, timeout: float = 30) -> bool:
        """True once the OTLP/HTTP port accepts; the receivers start last, after
        the processors and exporters, so the pipelines are ready then too."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"collector did not open its OTLP/HTTP port in {timeout} s")

    def post(self, signal_name: str, body: dict[str, Any]) -> requests.Response:
        """POST an OTLP JSON export request to /v1/<signal_name>."""
        return requests.post(f"{self.http_url}/v1/{signal_name}", json=body, timeout=10)

    def stop(self) -> None:
        """SIGTERM: the collector drains its pipelines and flushes the files.

        A collector that does not exit cleanly (a panic while draining, say)
        fails the test: its files may miss the last batches.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        assert self.proc.returncode == 0, (
            f"collector exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}"
        )

    def lines(self) -> list[dict[str, Any]]:
        """Every export request the file exporters wrote (OTLP JSON, one per line)."""
        return [
            json.loads(line)
            for path in self.files
            if path.exists()
            for line in path.read_text().splitlines()
            if line.strip()
        ]


def kv(d: dict[str, Any]) -> list[dict[str, Any]]:
    """A plain dict as OTLP JSON attributes (str, bool, int, float values)."""
    out = []
    for k, v in d.items():
        if isinstance(v, bool):
            value: dict[str, Any] = {"boolValue": v}
        elif isinstance(v, int):
            value = {"intValue": str(v)}
        elif isinstance(v, float):
            value = {"doubleValue": v}
        else:
            value = {"stringValue": str(v)}
        out.append({"key": k, "value": value})
    return out


def attrs(obj: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON attributes of ``obj`` as a plain dict of their values."""
    out = {}
    for item in obj.get("attributes", []):
        value = item.get("value", {})
        out[item["key"]] = next(iter(value.values()), None) if value else None
    return out


def spans(lines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource, span) pairs from file-exporter lines."""
    for line in lines:
        for rs in line.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    yield rs.get("resource", {}), span


def log_records(lines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource, log record) pairs from file-exporter lines."""
    for line in lines:
        for rl in line.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    yield rl.get("resource", {}), rec


def metrics(lines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource, metric) pairs from file-exporter lines."""
    for line in lines:
        for rm in line.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for metric in sm.get("metrics", []):
                    yield rm.get("resource", {}), metric


def data_points(metric: dict[str, Any]) -> list[dict[str, Any]]:
    """The data points of an OTLP JSON metric, whatever its type."""
    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
        if kind in metric:
            return list(metric[kind].get("dataPoints", []))
    return []
