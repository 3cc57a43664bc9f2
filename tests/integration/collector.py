"""Run the custom OpenTelemetry Collector (collector-config/) on loopback for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "collector-config"
BINARY = ROOT / ".build" / "otelcol-optel" / "otelcol-optel"


def build() -> Path:
    """The collector binary, built (or found cached); skips when Go is missing."""
    r = subprocess.run(
        ["bash", str(CONFIGS / "build.sh")], capture_output=True, text=True, timeout=1800
    )
    if r.returncode == 3:
        pytest.skip(f"collector tests need Go: {r.stderr.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    return BINARY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SIGNALS = ("traces", "metrics", "logs")


class Collector:
    """The gateway config on free loopback ports, exporting to files.

    ``out`` is the OPTEL_GW_FILE prefix: gateway.yaml writes one file per
    signal, ``<out>.traces.json``, ``<out>.metrics.json``, ``<out>.logs.json``.
    """

    def __init__(self, binary: Path, out: Path, config: str = "gateway.yaml"):
        self.http_port, self.grpc_port = free_port(), free_port()
        self.out = out
        self.files = [Path(f"{out}.{signal}.json") for signal in SIGNALS]
        env = dict(
            os.environ,
            OPTEL_GW_HTTP_ENDPOINT=f"127.0.0.1:{self.http_port}",
            OPTEL_GW_GRPC_ENDPOINT=f"127.0.0.1:{self.grpc_port}",
            OPTEL_GW_FILE=str(out),
        )
        self.log = out.with_suffix(".log")
        self._log_file = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(CONFIGS / config)],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("collector did not open its OTLP/HTTP port in time")

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


def spans(lines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource, span) pairs from file-exporter lines."""
    for line in lines:
        for rs in line.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    yield rs.get("resource", {}), span


def attrs(obj: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON attributes as a plain dict of their values."""
    out = {}
    for kv in obj.get("attributes", []):
        value = kv.get("value", {})
        out[kv["key"]] = next(iter(value.values()), None) if value else None
    return out
