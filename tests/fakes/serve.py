"""Loopback servers for the fakes: they count connections and stop at once.

``http.server``'s ``serve_forever`` looks for a shutdown request every 0.5 s
by default, so each fake used to cost a test half a second of waiting. These
poll every 10 ms, and on stop they also end the connections they still hold:
a client's kept-alive socket must not outlive the server it talks to.

- :class:`LoopbackHTTPServer` / :func:`serve_http`: a threading HTTP server
  that counts the TCP connections it accepted and the ones that ended;
- :func:`tcp_server`: a bare accept loop handing each connection to a callable;
- :class:`CountingRelay`: forwards TCP to another port and counts the
  connections, for servers that cannot count themselves (gRPC).
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

POLL_S = 0.01


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on a free 127.0.0.1 port that counts connections."""

    daemon_threads = True  # a kept-alive connection's thread never holds up the stop

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0  # TCP connections accepted
        self.ended = 0  # connections whose handling ended (client hung up, or the stop)
        self._open: set[Any] = set()
        self._count = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        with self._count:
            self.connections += 1
            self._open.add(conn)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that exits mid-exchange (its exit budget ran out): no news
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._count:
            if request in self._open:
                self._open.discard(request)
                self.ended += 1
        super().shutdown_request(request)

    def start(self) -> LoopbackHTTPServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self._count:
            still_open = list(self._open)
        for conn in still_open:  # wakes the handler threads blocked reading them
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(2)

    def wait_ended(self, n: int, timeout_s: float = 5.0) -> bool:
        """Wait until ``n`` connections have ended (the client closed them)."""
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            with self._count:
                if self.ended >= n:
                    return True
            time.sleep(POLL_S)
        return False


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[LoopbackHTTPServer]:
    """Serve ``handler`` on a free loopback port for the duration of the block."""
    server = LoopbackHTTPServer(handler).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def tcp_server(handle: Callable[[socket.socket], None]) -> Iterator[tuple[str, int]]:
    """A loopback TCP listener passing each connection to ``handle`` (on the
    accept thread); yields its (host, port). Stopping wakes the blocked
    ``accept`` with a connection of its own instead of polling."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    addr = srv.getsockname()
    stop = threading.Event()

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if stop.is_set():
                conn.close()
                return
            handle(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield addr
    finally:
        stop.set()
        try:
            socket.create_connection(addr, timeout=1).close()  # wake accept()
        except OSError:
            pass
        t.join(2)
        srv.close()


class CountingRelay:
    """Forwards each loopback connection to ``127.0.0.1:port`` and counts them:
    ``connections`` accepted, ``ended`` closed by the client. Use it in front
    of a server that does not tell (a gRPC server)::

        with CountingRelay(grpc_port) as relay:
            ... connect to relay.port ...
    """

    def __init__(self, port: int):
        self.upstream = port
        self.connections = 0
        self.ended = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._gone: dict[int, threading.Event] = {}  # per client socket: server hung up
        self._cm: Any = None
        self.port = 0

    def _pump(
        self, src: socket.socket, dst: socket.socket, server_gone: threading.Event | None
    ) -> None:
        """Copy ``src`` to ``dst`` until EOF; ``server_gone`` is None on the client's side."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        if server_gone is not None:
            server_gone.set()  # the server side ended first: not the client's doing
        elif not self._gone.get(id(src), threading.Event()).is_set():
            with self._lock:
                self.ended += 1
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _handle(self, client: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        gone = self._gone[id(client)] = threading.Event()
        with self._lock:
            self._socks += [client, upstream]
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, gone), daemon=True).start()

    def wait_ended(self, n: int, timeout_s: float = 5.0) -> bool:
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            with self._lock:
                if self.ended >= n:
                    return True
            time.sleep(POLL_S)
        return False

    def __enter__(self) -> CountingRelay:
        self._cm = tcp_server(self._handle)
        self.port = self._cm.__enter__()[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(None, None, None)
        for gone in list(self._gone.values()):
            gone.set()  # what ends now is the relay's doing
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
