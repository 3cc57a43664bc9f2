"""A loopback fake of the GA4 Measurement Protocol, for tests and benchmarks.

- ``POST /debug/mp/collect`` answers ``{"validationMessages": [...]}`` after
  applying the documented rules (below), like Google's validation server:
  https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events
- ``POST /mp/collect`` records the hit, applies the same rules (the
  messages are kept on the hit, since the real endpoint answers 2xx
  whatever it drops) and answers 204, or what a test queued with
  :meth:`FakeGA4.queue` (e.g. 503 with ``Retry-After``).

The rules are written here independently of optel's own limits module, so
a test checks optel against the documentation, not against itself:
https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations
https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference
https://support.google.com/analytics/answer/13316687

Usage::

    with FakeGA4() as ga4:
        env = {"OPTEL_GA4_ENDPOINT": ga4.url, ...}
        ...
        assert ga4.messages() == []
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.serve import LoopbackHTTPServer

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_BODY = 130_000
RESERVED_EVENTS = {
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
    "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_install",
    "app_remove", "app_store_refund", "app_store_subscription_cancel",
    "app_store_subscription_convert", "app_store_subscription_renew", "app_update",
    "app_upgrade", "click", "dynamic_link_app_open", "dynamic_link_app_update",
    "dynamic_link_first_open", "error", "file_download", "firebase_campaign",
    "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression", "first_open", "first_visit", "form_start",
    "form_submit", "in_app_purchase", "notification_dismiss", "notification_foreground",
    "notification_open", "notification_receive", "os_update", "page_view", "screen_view",
    "scroll", "session_start", "session_start_with_rollout", "user_engagement",
    "video_progress", "video_start", "view_complete", "view_search_results",
}  # fmt: skip
RESERVED_PREFIXES = ("_", "ga_", "google_", "firebase_")  # "gtag." cannot be a valid name
RESERVED_PARAMS = {"firebase_conversion"}
RESERVED_USER_PROPERTIES = {
    "first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id",
    "first_open_after_install",
}  # fmt: skip
BACKDATE_S = 72 * 3600


def _msg(path: str, text: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": text, "validationCode": code}


def _check_name(path: str, name: Any, limit: int, reserved: set[str], out: list) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        out.append(_msg(path, f"invalid name [{name}]", "NAME_INVALID"))
        return
    if len(name) > limit:
        out.append(_msg(path, f"name [{name}] longer than {limit}", "VALUE_OUT_OF_BOUNDS"))
    if name.lower() in reserved or name.lower().startswith(RESERVED_PREFIXES):
        out.append(_msg(path, f"reserved name [{name}]", "NAME_RESERVED"))


def _check_time(path: str, ts: Any, now: float, out: list) -> None:
    if not isinstance(ts, int) or isinstance(ts, bool):
        out.append(_msg(path, "timestamp_micros must be an integer", "VALUE_INVALID"))
    elif ts < (now - BACKDATE_S) * 1e6:
        out.append(_msg(path, "timestamp older than 72 hours", "VALUE_OUT_OF_BOUNDS"))
    elif ts > (now + 60) * 1e6:
        out.append(_msg(path, "timestamp in the future", "VALUE_OUT_OF_BOUNDS"))


def validate(raw: bytes, query: dict[str, list[str]], content_type: str) -> list[dict[str, str]]:
    """The validation messages for one request, as the debug endpoint gives them."""
    out: list[dict[str, str]] = []
    now = time.time()
    if not query.get("measurement_id", [""])[0]:
        out.append(_msg("measurement_id", "measurement_id is required", "VALUE_REQUIRED"))
    if not query.get("api_secret", [""])[0]:
        out.append(_msg("api_secret", "api_secret is required", "VALUE_REQUIRED"))
    if "application/json" not in content_type:
        out.append(_msg("", f"content type {content_type!r}", "VALUE_INVALID"))
    if len(raw) >= MAX_BODY:
        out.append(_msg("", f"body of {len(raw)} bytes, limit 130kB", "VALUE_OUT_OF_BOUNDS"))
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return [*out, _msg("", "body is not JSON", "VALUE_INVALID")]
    if not isinstance(body, dict):
        return [*out, _msg("", "body is not an object", "VALUE_INVALID")]
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        out.append(_msg("client_id", "client_id is required", "VALUE_REQUIRED"))
    if "timestamp_micros" in body:
        _check_time("timestamp_micros", body["timestamp_micros"], now, out)
    if "non_personalized_ads" in body and not isinstance(body["non_personalized_ads"], bool):
        out.append(_msg("non_personalized_ads", "must be a boolean", "VALUE_INVALID"))
    ups = body.get("user_properties", {})
    if not isinstance(ups, dict):
        out.append(_msg("user_properties", "must be an object", "VALUE_INVALID"))
        ups = {}
    if len(ups) > 25:
        out.append(_msg("user_properties", f"{len(ups)} user properties", "EXCEEDED_MAX_ENTITIES"))
    for name, up in ups.items():
        path = f"user_properties.{name}"
        _check_name(path, name, 24, RESERVED_USER_PROPERTIES, out)
        value = up.get("value") if isinstance(up, dict) else None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            out.append(_msg(path, "value must be a string or number", "VALUE_INVALID"))
        elif isinstance(value, str) and len(value) > 36:
            out.append(_msg(path, "value longer than 36", "VALUE_OUT_OF_BOUNDS"))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        return [*out, _msg("events", "events is required", "VALUE_REQUIRED")]
    if len(events) > 25:
        out.append(_msg("events", f"{len(events)} events, limit 25", "EXCEEDED_MAX_ENTITIES"))
    for i, ev in enumerate(events):
        path = f"events[{i}]"
        if not isinstance(ev, dict):
            out.append(_msg(path, "event must be an object", "VALUE_INVALID"))
            continue
        _check_name(f"{path}.name", ev.get("name"), 40, RESERVED_EVENTS, out)
        if "timestamp_micros" in ev:
            _check_time(f"{path}.timestamp_micros", ev["timestamp_micros"], now, out)
        params = ev.get("params", {})
        if not isinstance(params, dict):
            out.append(_msg(f"{path}.params", "must be an object", "VALUE_INVALID"))
            continue
        if len(params) > 25:
            out.append(_msg(f"{path}.params", f"{len(params)} params", "EXCEEDED_MAX_ENTITIES"))
        for key, value in params.items():
            ppath = f"{path}.params.{key}"
            _check_name(ppath, key, 40, RESERVED_PARAMS, out)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                out.append(_msg(ppath, "value must be a string or number", "VALUE_INVALID"))
            elif isinstance(value, str) and len(value) > 100:
                out.append(_msg(ppath, "value longer than 100", "VALUE_OUT_OF_BOUNDS"))
    return out


@dataclass
class Hit:
    """One request the fake received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    body: Any
    messages: list[dict[str, str]]
    status: int

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.body.get("events") or []) if isinstance(self.body, dict) else []


@dataclass
class FakeGA4:
    """The fake server; start with ``with FakeGA4() as ga4:`` (stops on exit)."""

    hits: list[Hit] = field(default_factory=list)
    _queued: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _server: LoopbackHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return self._server.url

    def queue(self, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` /mp/collect requests with ``status``."""
        with self._lock:
            self._queued.extend([(status, dict(headers or {}))] * times)

    def collected(self) -> list[Hit]:
        """Hits on /mp/collect that were answered 2xx."""
        return [h for h in self.hits if h.path.endswith("/mp/collect")
                and "/debug/" not in h.path and 200 <= h.status < 300]  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        """Every event delivered (2xx) to /mp/collect, in arrival order."""
        return [e for h in self.collected() for e in h.events]

    def messages(self) -> list[dict[str, str]]:
        """Validation messages over every hit (collect and debug)."""
        return [m for h in self.hits for m in h.messages]

    # -- server ------------------------------------------------------------------

    def start(self) -> FakeGA4:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                query = parse_qs(parts.query)
                messages = validate(raw, query, self.headers.get("Content-Type", ""))
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                status, headers, payload = 204, {}, b""
                if parts.path.endswith("/debug/mp/collect"):
                    status = 200
                    payload = json.dumps({"validationMessages": messages}).encode()
                elif parts.path.endswith("/mp/collect"):
                    with fake._lock:
                        if fake._queued:
                            status, headers = fake._queued.pop(0)
                else:
                    status = 404
                with fake._lock:
                    fake.hits.append(
                        Hit(parts.path, query, dict(self.headers), raw, body, messages, status)
                    )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

        self._server = LoopbackHTTPServer(Handler).start()
        return self

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections if self._server is not None else 0

    def wait_closed(self, n: int, timeout_s: float = 5.0) -> bool:
        """Wait until the client has closed ``n`` connections."""
        return self._server is not None and self._server.wait_ended(n, timeout_s)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeGA4:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
