"""HTTP for the destinations: POST a body, read the answer, keep the connection.

Why not ``requests``: its import (urllib3, charset_normalizer, idna, ...) is
the largest part of what a destination loads, which a short run pays at exit
and every run pays in memory; and urllib3 logs request lines (with the GA4
api secret in the query) when the host logs at DEBUG. What a destination
needs is small: POST a body, read the status and a few headers, over one
connection kept for the destination's life.

- **Plain HTTP** (``http://`` targets, and HTTP proxies) is spoken here over a
  socket: HTTP/1.1, ``Content-Length`` or chunked answers, keep-alive. It needs
  no ``http.client``, ``email`` or ``ssl`` (a collector on the same machine or
  network is the usual target, and loading those is most of a short run's
  exit cost with one). **HTTPS** goes through the standard library's
  ``http.client`` with ``ssl``, loaded on first use.
- **Connections**: one kept-alive connection per target (and TLS settings);
  a second concurrent sender (the exit send beside the worker's) gets a
  connection of its own. A kept connection the server has closed is noticed
  before use (it reads as ready) and replaced; a request that fails on a
  reused connection before any answer is tried once on a fresh one.
- **Proxies** from the environment as ``requests`` reads them:
  ``http_proxy``/``https_proxy``/``all_proxy`` (lower case wins over upper
  case), ``no_proxy`` (host suffixes, ``host:port``, addresses, CIDR blocks,
  ``*``). HTTP through a proxy sends the absolute URI to it; HTTPS tunnels with
  CONNECT. ``user:password@`` in a proxy URL becomes basic proxy
  authorization.
- **TLS**: the CA file given, else ``certifi``'s bundle when installed, else
  the system's store; a client certificate and key for mutual TLS.
- **Redirects** are never followed (see :func:`optel.exporters.classify_http`).
"""

from __future__ import annotations

import base64
import os
import select
import socket
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Protocol
from urllib.parse import unquote, urlsplit

MAX_ANSWER_BYTES = 1 << 20  # a bigger answer is cut and the connection dropped
_MAX_LINE = 16384
_MAX_HEADERS = 200


@dataclass(frozen=True)
class TLS:
    """TLS settings of a connection: CA file, client certificate and key."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class NotHTTP(OSError):
    """The server answered with something that is not HTTP."""


# a kept connection the server closed meanwhile (http.client's RemoteDisconnected
# is a ConnectionResetError too)
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def is_timeout(exc: BaseException) -> bool:
    """A request that ran out of time (``socket.timeout`` is not ``TimeoutError`` before 3.10)."""
    return isinstance(exc, (TimeoutError, socket.timeout))


# -- where a request goes ---------------------------------------------------------------------


def _env_proxy(name: str, environ: Mapping[str, str]) -> str | None:
    # lower case first, as urllib (and so requests) reads them
    for key in (f"{name}_proxy", f"{name.upper()}_PROXY"):
        value = environ.get(key, "").strip()
        if value:
            return value
    return None


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port.isdigit():
            if int(entry_port) != port:
                continue
            entry = name
        if "/" in entry:
            import ipaddress  # only for a CIDR entry

            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL the environment names for ``url``, or ``None`` (direct)."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    if no_proxy and _bypassed(parts.hostname or "", port, no_proxy):
        return None
    return _env_proxy(scheme, environ) or _env_proxy("all", environ)


class _Target:
    """Where a URL's requests go: the connection to open and the request line."""

    def __init__(self, url: str, tls: TLS, environ: Mapping[str, str] | None = None):
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {self.scheme}")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.netloc = parts.netloc.rpartition("@")[2]
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.tls = tls
        self.proxy = proxy_for(url, environ)
        self.proxy_headers: dict[str, str] = {}
        self.request_target = self.path
        self.proxy_host, self.proxy_port = "", 0
        if self.proxy:
            p = urlsplit(self.proxy if "://" in self.proxy else f"http://{self.proxy}")
            self.proxy_host, self.proxy_port = p.hostname or "", p.port or 8080
            if p.username:
                token = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self.proxy_headers["Proxy-Authorization"] = (
                    "Basic " + base64.b64encode(token).decode()
                )
            if self.scheme == "http":  # the proxy gets the absolute URI (no CONNECT)
                self.request_target = f"http://{self.netloc}{self.path}"

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.scheme, self.host, self.port, self.proxy, self.tls)

    def connect(self, timeout_s: float) -> _Connection:
        if self.scheme == "https":
            return _Https(self, timeout_s)
        if self.proxy:
            return _Plain(self.proxy_host, self.proxy_port, timeout_s)
        return _Plain(self.host, self.port, timeout_s)


# -- connections ------------------------------------------------------------------------------


class _Connection(Protocol):
    @property
    def sock(self) -> Any: ...

    def exchange(
        self, target: _Target, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> tuple[Answer, bool]: ...

    def close(self) -> None: ...


class _Plain:
    """HTTP/1.1 over a plain socket: a POST, and its answer read in full."""

    def __init__(self, host: str, port: int, timeout_s: float):
        self.sock: socket.socket | None = socket.create_connection((host, port), timeout_s)
        self._buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(
        self, target: _Target, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> tuple[Answer, bool]:
        """The answer, and whether the connection may be used again."""
        assert self.sock is not None
        self.sock.settimeout(timeout_s)
        lines = [f"POST {target.request_target} HTTP/1.1", f"Host: {target.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if target.proxy:
            lines += [f"{k}: {v}" for k, v in target.proxy_headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.sock.sendall(body)
        status, version, fields = self._head(first=True)
        while 100 <= status < 200:  # 100 Continue and the like: the answer follows
            status, version, fields = self._head(first=False)
        data, complete = self._body(status, fields)
        connection = fields.get("connection", "").lower()
        keep = complete and (
            "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        )
        return Answer(status, fields, data), keep

    # reading

    def _more(self) -> bool:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        self._buf += chunk
        return bool(chunk)

    def _line(self, first: bool = False) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > _MAX_LINE:
                raise NotHTTP("a line too long")
            if not self._more():
                if first and not self._buf:
                    raise ConnectionResetError("closed before answering")
                raise NotHTTP("the answer ended early")
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _head(self, first: bool) -> tuple[int, str, dict[str, str]]:
        status_line = self._line(first).decode("latin-1")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise NotHTTP("not an HTTP status line")
        fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._line().decode("latin-1")
            if not line:
                return int(code), version, fields
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        raise NotHTTP("too many header lines")

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._more():
                raise NotHTTP("the answer ended early")
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _body(self, status: int, fields: Mapping[str, str]) -> tuple[bytes, bool]:
        """The answer's body (cut at MAX_ANSWER_BYTES) and whether it was read whole."""
        if status in (204, 304):
            return b"", True
        if "chunked" in fields.get("transfer-encoding", "").lower():
            data = b""
            while True:
                size = int(self._line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._line():  # trailers, up to the empty line
                        pass
                    return data[:MAX_ANSWER_BYTES], len(data) <= MAX_ANSWER_BYTES
                if len(data) + size > MAX_ANSWER_BYTES:
                    return data[:MAX_ANSWER_BYTES], False
                data += self._take(size)
                self._line()  # the CRLF after each chunk
        length = fields.get("content-length")
        if length is not None and length.strip().isdigit():
            n = int(length)
            if n > MAX_ANSWER_BYTES:
                return self._take(MAX_ANSWER_BYTES), False
            return self._take(n), True
        # no length: the body runs to the end of the connection
        while len(self._buf) <= MAX_ANSWER_BYTES and self._more():
            pass
        return self._buf[:MAX_ANSWER_BYTES], False


class _Https:
    """HTTPS through the standard library's client (direct, or tunneled by CONNECT)."""

    def __init__(self, target: _Target, timeout_s: float):
        import http.client  # HTTPS only: with email and ssl, most of what HTTP costs to load

        ctx = _ssl_context(target.tls)
        if target.proxy:
            self._conn = http.client.HTTPSConnection(
                target.proxy_host, target.proxy_port, timeout=timeout_s, context=ctx
            )
            self._conn.set_tunnel(target.host, target.port, headers=target.proxy_headers or None)
        else:
            self._conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout_s, context=ctx
            )

    @property
    def sock(self) -> Any:
        return self._conn.sock

    def close(self) -> None:
        self._conn.close()

    def exchange(
        self, target: _Target, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> tuple[Answer, bool]:
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout_s)
        else:
            self._conn.timeout = timeout_s
        self._conn.request("POST", target.request_target, body=body, headers=dict(headers))
        resp = self._conn.getresponse()
        data = resp.read(MAX_ANSWER_BYTES + 1)
        keep = len(data) <= MAX_ANSWER_BYTES and not resp.will_close and resp.isclosed()
        answer = Answer(
            resp.status, {k.lower(): v for k, v in resp.getheaders()}, data[:MAX_ANSWER_BYTES]
        )
        return answer, keep


def _ssl_context(tls: TLS) -> Any:
    import ssl  # only for https

    cafile = tls.cafile
    if cafile is None:
        try:
            import certifi  # the bundle requests used, when it is installed

            cafile = certifi.where()
        except ImportError:
            cafile = None
    ctx = ssl.create_default_context(cafile=cafile)
    if tls.certfile:
        ctx.load_cert_chain(tls.certfile, tls.keyfile)
    return ctx


def _dropped(conn: _Connection) -> bool:
    """An idle kept-alive socket that reads as ready was closed by the server."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


class Client:
    """Keep-alive HTTP(S) connections of one destination; :meth:`close` ends them."""

    def __init__(self) -> None:
        self._idle: dict[tuple[Any, ...], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _take(self, target: _Target) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(target.key) or []
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def _give_back(self, target: _Target, conn: _Connection) -> None:
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._idle.setdefault(target.key, []).append(conn)

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        tls: TLS | None = None,
    ) -> Answer:
        """POST ``body`` to ``url``; the answer, never following a redirect.
        Raises ``OSError`` (timeouts, refused, TLS, DNS, :class:`NotHTTP`) or
        ``http.client.HTTPException`` (HTTPS, not HTTP) when there is no answer."""
        target = _Target(url, tls or TLS())
        reused = self._take(target)
        try:
            return self._exchange(target, reused, body, headers, timeout_s)
        except _STALE:
            if reused is None:
                raise
            # the server closed the kept connection as we wrote: once more, fresh
            return self._exchange(target, None, body, headers, timeout_s)

    def _exchange(
        self,
        target: _Target,
        conn: _Connection | None,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> Answer:
        timeout_s = max(0.001, timeout_s)
        if conn is None:
            conn = target.connect(timeout_s)
        all_headers = {"Connection": "keep-alive", **headers}
        try:
            answer, keep = conn.exchange(target, body, all_headers, timeout_s)
        except BaseException:
            conn.close()
            raise
        if keep:
            self._give_back(target, conn)
        else:
            conn.close()
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
