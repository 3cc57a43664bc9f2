"""Misbehaving servers on 127.0.0.1, and the fault matrix that runs optel against them.

Each fault gives an OTLP endpoint URL: connection refused, a black hole
(accepts, never answers), 500, 429 with Retry-After, 400, an answer after
5 s, garbage bytes, a TLS handshake against plain HTTP, and a name that
does not resolve. :func:`run_matrix` measures, per fault, the tool's exit
delay over a run with no destination, then heals the network and counts
what arrives (delivered, duplicates, lost).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

from optel import env as optel_env
from tests.fakes import serve
from tests.fakes.otlp_server import OtlpServer
from tests.fakes.serve import tcp_server

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def refused() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}"  # nothing listens there any more


@contextmanager
def _tcp_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback TCP listener that passes each connection to ``handle``."""
    with tcp_server(handle) as (host, port):
        yield f"http://{host}:{port}"


@contextmanager
def black_hole() -> Iterator[str]:
    """Accepts connections and never says a word."""
    held: list[socket.socket] = []
    try:
        with _tcp_server(held.append) as url:
            yield url
    finally:
        for conn in held:
            conn.close()


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port for the duration of the block."""
    with serve.serve_http(handler) as server:
        yield server.url


@contextmanager
def http_status(
    status: int, headers: dict[str, str] | None = None, delay_s: float = 0.0
) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(delay_s)
            try:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up first

        def log_message(self, *args: Any) -> None:
            return None

    with serve_http(Handler) as url:
        yield url


@contextmanager
def garbage() -> Iterator[str]:
    """Answers every connection with bytes that are not HTTP, then hangs up."""

    def answer(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"\x00\xff\x13garbage that is not HTTP\r\n\r\n\xde\xad")
        except OSError:
            pass
        conn.close()

    with _tcp_server(answer) as url:
        yield url


@contextmanager
def tls_mismatch() -> Iterator[str]:
    with http_status(200) as url:
        yield url.replace("http://", "https://")  # TLS handshake against plain HTTP


@contextmanager
def dns_failure() -> Iterator[str]:
    yield "http://optel-fault.invalid:4318"  # .invalid never resolves (RFC 2606)


FAULTS: dict[str, Callable[[], Any]] = {
    "none (healthy)": OtlpServer,  # reference: the cost of having a destination at all
    "refused": refused,
    "black hole": black_hole,
    "500": lambda: http_status(500),
    "429 + Retry-After": lambda: http_status(429, {"Retry-After": "1"}),
    "400": lambda: http_status(400),
    "answers after 5 s": lambda: http_status(200, delay_s=5.0),
    "garbage": garbage,
    "TLS failure": tls_mismatch,
    "DNS failure": dns_failure,
}

TOOL = """
import sys, optel
t = optel.init(app="faulttool", allowed_attributes=["run"])
for i in range(5):
    with t.tracer.start_as_current_span(f"{sys.argv[1]}-{i}", attributes={"run": sys.argv[1]}):
        pass
"""


def _env(home: str, endpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPTEL_", "OTEL_"))}
    for name in (optel_env.DO_NOT_TRACK, *optel_env.CI_VARIABLES):
        env.pop(name, None)
    env["OPTEL_HOME"] = home
    env["PYTHONPATH"] = str(ROOT / "src")
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return env


def _tool(
    home: str, endpoint: str | None, tag: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", TOOL, tag],
        env=_env(home, endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return time.perf_counter() - t0, r


def _cli(home: str, endpoint: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optel", *args],
        env=_env(home, endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Row:
    fault: str
    delay_s: float
    delivered: int
    duplicates: int
    lost: int
    dropped: int
    crashed: bool


def run_matrix(repeats: int = 1, faults: dict[str, Any] | None = None) -> tuple[float, list[Row]]:
    """(median baseline exit seconds, a row per fault).

    Each run of the tool against a fault is paired with a run with no
    destination right before it, and the delay is the median of the paired
    differences: load from other work on the machine hits both alike.
    """
    rows, bases = [], []
    with tempfile.TemporaryDirectory() as base_home:
        _cli(base_home, None, "opt-in")
        _tool(base_home, None, "warm-up")  # first run pays for cold caches
        for name, fault in (faults or FAULTS).items():
            with tempfile.TemporaryDirectory() as home:
                _cli(home, None, "opt-in")
                deltas, crashed, tags = [], False, []
                early: list[str] = []  # what a healthy reference server got before healing
                with ExitStack() as stack:
                    got = stack.enter_context(fault())
                    url = got if isinstance(got, str) else got.url
                    for i in range(repeats):
                        base, _ = _tool(base_home, None, "base")
                        bases.append(base)
                        tag = f"r{i}"
                        tags.append(tag)
                        took, r = _tool(home, url, tag)
                        deltas.append(took - base)
                        crashed |= r.returncode != 0 or "Traceback" in r.stderr
                    if isinstance(got, OtlpServer):
                        early = [s.name for s in got.spans()]
                status = json.loads(_cli(home, None, "status", "--json").stdout)
                with OtlpServer() as healthy:  # the network heals
                    _cli(home, healthy.url, "flush")
                names = early + [s.name for s in healthy.spans()]
                expected = {f"{tag}-{i}" for tag in tags for i in range(5)}
                rows.append(
                    Row(
                        fault=name,
                        delay_s=statistics.median(deltas),
                        delivered=len(set(names) & expected),
                        duplicates=len(names) - len(set(names)),
                        lost=len(expected - set(names)),
                        dropped=sum(status.get("dropped", {}).values()),
                        crashed=crashed,
                    )
                )
    return statistics.median(bases), rows


def table(base: float, rows: list[Row]) -> str:
    lines = [
        f"baseline exit (no destination): {base * 1000:.0f} ms; exit delay = median of"
        " paired (fault run - baseline run) differences",
        f"{'fault':20} {'exit delay':>11} {'delivered':>10} {'dupes':>6} {'lost':>5} {'dropped':>8} {'crash':>6}",
    ]
    for r in rows:
        lines.append(
            f"{r.fault:20} {r.delay_s * 1000:8.0f} ms {r.delivered:>10} {r.duplicates:>6} "
            f"{r.lost:>5} {r.dropped:>8} {'yes' if r.crashed else 'no':>6}"
        )
    return "\n".join(lines)
