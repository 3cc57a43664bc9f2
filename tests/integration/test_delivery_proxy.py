"""Proxies from the environment, through a real process and a real proxy.

A tiny forward proxy on loopback: for an ``http://`` target ``requests``
sends the request to the proxy with the absolute URI in the request line
(no CONNECT), and the proxy relays it to the target. With ``HTTP_PROXY``
set the proxy sees optel's request; with ``NO_PROXY`` covering the
collector's host it does not, and the collector gets it directly.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import run_cli, run_python
from tests.fakes.faults import serve_http
from tests.fakes.otlp_server import OtlpServer

TOOL = """
import optel
t = optel.init(app="proxied")
with t.tracer.start_as_current_span("through-the-proxy"):
    pass
"""


@contextmanager
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """(proxy URL, request lines it relayed)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.requestline)
            target = urlsplit(self.path)  # absolute URI: a proxy request
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("proxy-connection", "connection", "host")
            }
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                conn.request("POST", path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
            finally:
                conn.close()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    with serve_http(Handler) as url:
        yield url, seen


def _proxy_env(proxy: str, no_proxy: str) -> dict[str, str]:
    # both spellings: urllib (under requests) lets the lower-case one win,
    # and the machine running the tests may have either set
    return {
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "OPTEL_EXIT_BUDGET_MS": "5000",  # the exit send completes: no flush needed
    }


def _send(home: Path, endpoint: str, extra: dict[str, str]) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **extra}
    r = run_python(TOOL, home, env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_http_proxy_relays_the_request(home: Path) -> None:
    run_cli("opt-in", "--app", "proxied", home=home)
    with OtlpServer() as server, forward_proxy() as (proxy, seen):
        _send(home, server.url, _proxy_env(proxy, no_proxy=""))
    assert seen == [f"POST {server.url}/v1/traces HTTP/1.1"]
    assert [s.name for s in server.spans()] == ["through-the-proxy"]


def test_no_proxy_covering_the_host_goes_direct(home: Path) -> None:
    run_cli("opt-in", "--app", "proxied", home=home)
    with OtlpServer() as server, forward_proxy() as (proxy, seen):
        _send(home, server.url, _proxy_env(proxy, no_proxy="127.0.0.1"))
    assert seen == []
    assert [s.name for s in server.spans()] == ["through-the-proxy"]
    assert server.requests[0].headers.get("Host", "").startswith("127.0.0.1:")
