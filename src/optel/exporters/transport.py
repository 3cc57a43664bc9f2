"""HTTP for the destinations: the standard library's ``http.client``, kept alive.

Why not ``requests``: its import (urllib3, charset_normalizer, idna, ...) is
the largest part of what a destination loads, which a short run pays at exit
and every run pays in memory; and urllib3 logs request lines (with the GA4
api secret in the query) when the host logs at DEBUG. What a destination
needs is small: POST a body, read the status and a few headers, over one
connection kept for the destination's life.

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
import http.client
import os
import select
import socket
import threading
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

MAX_ANSWER_BYTES = 1 << 20  # a bigger answer is cut and the connection dropped


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


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


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


class _Target:
    """Where a URL's requests go: the connection to open and the request line."""

    def __init__(self, url: str, tls: TLS, environ: Mapping[str, str] | None = None):
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {self.scheme}")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.tls = tls
        self.proxy = proxy_for(url, environ)
        self.proxy_headers: dict[str, str] = {}
        self.request_target = self.path
        if self.proxy:
            p = urlsplit(self.proxy if "://" in self.proxy else f"http://{self.proxy}")
            self.proxy_host, self.proxy_port = p.hostname or "", p.port or 8080
            if p.username:
                token = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self.proxy_headers["Proxy-Authorization"] = (
                    "Basic " + base64.b64encode(token).decode()
                )
            if self.scheme == "http":  # the proxy gets the absolute URI (no CONNECT)
                self.request_target = f"http://{parts.netloc.rpartition('@')[2]}{self.path}"

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.scheme, self.host, self.port, self.proxy, self.tls)

    def connect(self, timeout_s: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            ctx = _ssl_context(self.tls)
            if self.proxy:
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self.proxy_host, self.proxy_port, timeout=timeout_s, context=ctx
                )
                conn.set_tunnel(self.host, self.port, headers=self.proxy_headers or None)
            else:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=timeout_s, context=ctx
                )
        elif self.proxy:
            conn = http.client.HTTPConnection(self.proxy_host, self.proxy_port, timeout=timeout_s)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        return conn


def _dropped(conn: http.client.HTTPConnection) -> bool:
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
        self._idle: dict[tuple[Any, ...], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _take(self, target: _Target) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(target.key) or []
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def _give_back(self, target: _Target, conn: http.client.HTTPConnection) -> None:
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
        Raises ``OSError`` (timeouts, refused, TLS, DNS) or
        ``http.client.HTTPException`` (not HTTP) when there is no answer."""
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
        conn: http.client.HTTPConnection | None,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> Answer:
        timeout_s = max(0.001, timeout_s)
        if conn is None:
            conn = target.connect(timeout_s)
        elif conn.sock is not None:
            conn.sock.settimeout(timeout_s)
        all_headers = {"Connection": "keep-alive", **headers}
        if target.proxy and target.scheme == "http":
            all_headers.update(target.proxy_headers)
        try:
            conn.request("POST", target.request_target, body=body, headers=all_headers)
            resp = conn.getresponse()
            data = resp.read(MAX_ANSWER_BYTES + 1)
        except BaseException:
            conn.close()
            raise
        answer = Answer(
            resp.status, {k.lower(): v for k, v in resp.getheaders()}, data[:MAX_ANSWER_BYTES]
        )
        if len(data) > MAX_ANSWER_BYTES or resp.will_close or not resp.isclosed():
            conn.close()
        else:
            self._give_back(target, conn)
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def is_timeout(exc: BaseException) -> bool:
    """A request that ran out of time (``socket.timeout`` is not ``TimeoutError`` before 3.10)."""
    return isinstance(exc, (TimeoutError, socket.timeout))
