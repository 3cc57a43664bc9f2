"""The destinations' HTTP client against loopback servers that answer in every legal way."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

import pytest

from optel.exporters import transport


@contextmanager
def answering(*answers: bytes, keep: bool = True) -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request and sends the next answer (raw bytes);
    ``keep``: it keeps the connection for the next request."""
    got: list[bytes] = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    queue = list(answers)

    def read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return b"", b""
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def serve() -> None:
        while queue:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            buf = b""
            with conn:
                while queue:
                    request, buf = read_request(conn, buf)
                    if not request:
                        break
                    got.append(request)
                    conn.sendall(queue.pop(0))
                    if not keep:
                        break

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/v1/logs", got
    finally:
        srv.close()
        t.join(2)


def _post(url: str, client: transport.Client | None = None, body: bytes = b"x") -> transport.Answer:
    return (client or transport.Client()).post(url, body, {"Content-Type": "text/plain"}, 5)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_one_kept_connection_serves_many_requests() -> None:
    with answering(OK, OK, OK) as (url, got):
        client = transport.Client()
        for _ in range(3):
            assert _post(url, client) == transport.Answer(200, {"content-length": "2"}, b"ok")
        client.close()
    assert len(got) == 3
    assert got[0].startswith(b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 1\r\n" in got[0] and got[0].endswith(b"\r\n\r\nx")


@pytest.mark.parametrize(
    "answer, body",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n"
         b"Trailer: 1\r\n\r\n", b"abcde"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", b""),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end"),
    ],
)  # fmt: skip
def test_every_way_an_answer_can_end_is_read(answer: bytes, body: bytes) -> None:
    with answering(answer, keep=False) as (url, _):
        assert _post(url).body == body


def test_a_kept_connection_the_server_closed_is_replaced() -> None:
    with answering(OK, OK, keep=False) as (url, got):
        client = transport.Client()
        assert _post(url, client).status == 200
        assert _post(url, client).status == 200  # the first connection was closed: a new one
    assert len(got) == 2


def _garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"\x00\x01 not http at all\r\n\r\n")
    conn.close()


@pytest.mark.parametrize(
    "behave, error",
    [
        (_garbage, transport.NotHTTP),
        (lambda conn: conn.close(), ConnectionError),  # hung up without a word
    ],
)
def test_no_answer_raises_an_oserror_the_classifier_retries(
    behave: Callable[[socket.socket], None], error: type[BaseException]
) -> None:
    from tests.fakes.serve import tcp_server

    with tcp_server(behave) as (host, port), pytest.raises(error) as info:
        _post(f"http://{host}:{port}/v1/logs")
    assert isinstance(info.value, OSError)


def test_a_silent_server_times_out() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # accepts (backlog), never answers
    try:
        with pytest.raises(OSError) as info:
            transport.Client().post(f"http://127.0.0.1:{srv.getsockname()[1]}/", b"", {}, 0.2)
        assert transport.is_timeout(info.value)
    finally:
        srv.close()


def test_an_oversized_answer_is_cut_and_the_connection_dropped() -> None:
    big = transport.MAX_ANSWER_BYTES + 10
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big + b"a" * big
    with answering(answer, OK) as (url, got):
        client = transport.Client()
        assert len(_post(url, client).body) == transport.MAX_ANSWER_BYTES
        assert client._idle == {} or not any(client._idle.values())


def test_plain_http_loads_neither_http_client_nor_ssl() -> None:
    import subprocess

    code = (
        "import sys\nfrom optel.exporters import transport\n"
        "try:\n    transport.Client().post('http://127.0.0.1:9/v1/logs', b'x', {}, 1)\n"
        "except OSError:\n    pass\n"
        "print(sorted(m for m in ('http.client', 'ssl', 'email') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "no_proxy, direct",
    [("", False), ("*", True), ("example.com", True), (".example.com", True),
     ("other.org,api.example.com", True), ("example.com:8443", False),
     ("example.com:4318", True), ("10.0.0.0/8", False)],
)  # fmt: skip
def test_proxies_are_read_as_requests_reads_them(no_proxy: str, direct: bool) -> None:
    environ = {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1", "NO_PROXY": no_proxy}
    found = transport.proxy_for("http://api.example.com:4318/v1/traces", environ)
    assert found == (None if direct else "http://lower:1")
    assert (
        transport.proxy_for("http://10.1.2.3/", {"http_proxy": "p:1", "no_proxy": "10.0.0.0/8"})
        is None
    )
