"""The ``ga4`` destination: Google Analytics 4 through the Measurement Protocol.

``render`` turns a record into a *request fragment* (user properties and up
to 25 events, see :mod:`.mapping`); that is what ``optel show`` prints.
``send`` renders each record of a batch the same way (or takes a fragment
spooled by an older optel as it is), packs the fragments into requests of
at most 25 events and under the body limit (:mod:`.limits`), adds the
envelope and POSTs each to ``{endpoint}/mp/collect``::

    {"client_id": <the install's current random id>, "non_personalized_ads": true,
     "user_properties": {...}, "events": [<the fragments' events>]}

The client id is added at send time, not at render time: records wait in
the spool for up to days, and an id rotated by ``optel opt-out`` must never be
sent afterwards. The api secret lives only in memory and in the request URL;
it is never rendered, printed or logged (reasons never quote the URL).

Answers are classified by :func:`optel.exporters.classify_http` (the rule
every HTTP destination shares; reasons here carry a ``ga4_`` prefix). Events
older than GA4's 72-hour backdating window are dropped and counted
(``dropped_ga4_older_than_72h`` in ``optel status``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlencode

from .. import (
    ACCEPTED,
    REJECTED,
    Outcome,
    Payload,
    Verdict,
    classify_error,
    classify_http,
    transport,
)
from . import limits, mapping

if TYPE_CHECKING:
    from ...config import Config

__all__ = ["Destination", "endpoint", "pack", "validate", "sample_records"]

OLD = "ga4_older_than_72h"
UNREADABLE = "ga4_unreadable_row"


def endpoint(cfg: Config) -> str:
    """Base URL: an explicit ``ga4_endpoint`` wins, else the region's default."""
    if cfg.sources.get("ga4_endpoint", "default") != "default":
        return str(cfg.values["ga4_endpoint"]).rstrip("/")
    if cfg.values.get("ga4_region") == "eu":
        return limits.ENDPOINT_EU
    return str(cfg.values.get("ga4_endpoint") or limits.ENDPOINT).rstrip("/")


class _Request:
    """One request being packed: items whose events all go in one body."""

    def __init__(self, user_properties: dict[str, Any], up_size: int, first: int):
        self.user_properties = user_properties
        self.items: list[Payload] = []
        self.events: list[dict[str, Any]] = []
        self.bytes = up_size
        self.first = first  # position of its first item in the batch

    @property
    def keys(self) -> list[Any]:
        return [item.key for item in self.items]

    def fits(self, events: list[dict[str, Any]], nbytes: int) -> bool:
        return (
            len(self.events) + len(events) <= limits.MAX_EVENTS_PER_REQUEST
            and self.bytes + nbytes <= limits.BODY_BUDGET
        )

    def add(self, item: Payload, events: list[dict[str, Any]], nbytes: int) -> None:
        self.items.append(item)
        self.events.extend(events)
        self.bytes += nbytes

    def body(self, client_id: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": client_id, "non_personalized_ads": True, **extra}
        if self.user_properties:
            body["user_properties"] = self.user_properties
        body["events"] = self.events
        return body


def _fragment(item: Payload) -> Any:
    """The item's request fragment: its record rendered now, or the fragment an
    older optel rendered (raises for one that cannot be read)."""
    if item.record is not None:
        frag = mapping.fragment(item.record)
        if frag is None:
            raise ValueError("not a record GA4 takes")
        return frag
    return json.loads(item.payload or "")


def pack(
    items: Sequence[Payload], now: float | None = None
) -> tuple[list[_Request], list[Payload], list[Payload]]:
    """Items -> requests within every limit; also the items too old and unreadable.

    Items keep their order; items with different user properties (another app
    or version) never share a request. An event whose timestamp lies in the
    future (the clock went back) is sent as happening now.
    """
    now = time.time() if now is None else now
    cutoff = int((now - limits.MAX_AGE_S + limits.AGE_MARGIN_S) * 1_000_000)
    now_us = int(now * 1_000_000)
    old: list[Payload] = []
    unreadable: list[Payload] = []
    open_requests: dict[str, _Request] = {}
    done: list[_Request] = []
    for position, item in enumerate(items):
        try:
            frag = _fragment(item)
            events = [e for e in frag["events"] if isinstance(e, dict)]
            user_props = frag.get("user_properties") or {}
        except (ValueError, KeyError, TypeError):
            unreadable.append(item)
            continue
        fresh = []
        for e in events:
            ts = e.get("timestamp_micros")
            if isinstance(ts, int) and ts < cutoff:
                continue
            if isinstance(ts, int) and ts > now_us:
                e = {**e, "timestamp_micros": now_us}
            fresh.append(e)
        if not fresh:
            (old if events else unreadable).append(item)
            continue
        key = mapping.dumps(user_props)
        nbytes = sum(mapping.size(e) + 1 for e in fresh)
        req = open_requests.get(key)
        if req is not None and not req.fits(fresh, nbytes):
            done.append(req)
            req = None
        if req is None:
            req = open_requests[key] = _Request(
                user_props, len(key.encode("utf-8")) + 200, position
            )
        req.add(item, fresh, nbytes)
    done.extend(open_requests.values())
    done.sort(key=lambda r: r.first)  # in the order the items came
    return done, old, unreadable


class Destination:
    """GA4 Measurement Protocol; see the module docstring."""

    name = "ga4"
    remote = True

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.measurement_id: str | None = cfg.values.get("ga4_measurement_id")
        self._api_secret: str | None = cfg.values.get("ga4_api_secret")
        self.endpoint = endpoint(cfg)
        self._http: Any = None

    def __repr__(self) -> str:  # never show the secret
        return f"<ga4 destination {self.measurement_id!r} at {self.endpoint} secret=***>"

    # -- rendering ---------------------------------------------------------------

    def render(self, record: dict[str, Any]) -> str | None:
        frag = mapping.fragment(record)
        return None if frag is None else mapping.dumps(frag)

    # -- sending ------------------------------------------------------------------

    def _url(self, path: str) -> str:
        query = urlencode({"measurement_id": self.measurement_id, "api_secret": self._api_secret})
        return f"{self.endpoint}{path}?{query}"

    def _client_id(self, create: bool = True) -> str:
        from ...identity import client_id

        # created when missing: an opt-out policy tool has consent without a grant
        return client_id(self.cfg.paths, create=create) or ""

    def warm(self) -> None:
        """Load the HTTP client and TLS ahead of time (the worker does, at start)."""
        self._session()
        if self.endpoint.startswith("https:"):
            import ssl  # noqa: F401 - loaded now rather than at the first send

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _session(self) -> transport.Client:
        if self._http is None:
            from ... import _redact

            # the secret is in the URL: optel's own log records (an internal
            # error's traceback) never show it (the HTTP client itself logs nothing)
            _redact.install()
            self._http = transport.Client()  # one per destination: connections are reused
        return self._http

    def _post(
        self, path: str, body: dict[str, Any], timeout_s: float
    ) -> tuple[Verdict, transport.Answer | None]:
        """POST ``body``: the verdict (reasons prefixed ``ga4_``) and the answer."""
        data = mapping.dumps(body).encode("utf-8")
        try:
            # never follows a redirect: see classify_http
            answer = self._session().post(
                self._url(path), data, {"Content-Type": "application/json"}, max(0.05, timeout_s)
            )
        except Exception as exc:  # no answer (its text may quote the URL: never used)
            verdict = classify_error(exc)
            return Verdict(verdict.kind, f"ga4_{verdict.reason}"), None
        verdict = classify_http(answer.status, answer.headers.get("retry-after"))
        if verdict.reason:
            verdict = Verdict(verdict.kind, f"ga4_{verdict.reason}", verdict.retry_after_s)
        return verdict, answer

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome:
        out = Outcome()
        reasons: list[str] = []
        if not (self.measurement_id and self._api_secret):
            out.retry = [i.key for i in items]
            out.retry_after_s = 3600.0
            out.reason = "ga4 not configured: set OPTEL_GA4_MEASUREMENT_ID and OPTEL_GA4_API_SECRET"
            return out
        deadline = time.monotonic() + timeout_s
        requests_, old, unreadable = pack(items)
        out.rejected.extend(i.key for i in old + unreadable)
        if old:
            reasons.append(OLD)
        if unreadable:
            reasons.append(UNREADABLE)
        client_id = self._client_id() if requests_ else ""
        for i, req in enumerate(requests_):
            left = deadline - time.monotonic()
            if left <= 0:
                for later in requests_[i:]:
                    out.retry.extend(later.keys)
                reasons.append("ga4_time_budget_spent")
                break
            verdict, _ = self._post(limits.COLLECT_PATH, req.body(client_id), left)
            if verdict.kind == ACCEPTED:
                out.accepted.extend(req.keys)
                continue
            reasons.append(verdict.reason)
            if verdict.kind == REJECTED:
                out.rejected.extend(req.keys)
                continue
            # retry: the service is unhealthy, keep the rest for later too
            out.retry_after_s = verdict.retry_after_s
            for later in requests_[i:]:
                out.retry.extend(later.keys)
            break
        out.reason = "+".join(dict.fromkeys(reasons))
        return out

    # -- validation ---------------------------------------------------------------

    def validate(self, fragments: Sequence[str], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send fragments to ``/debug/mp/collect``; the validation server's answers.

        Returns ``{"requests": n, "answered": n, "events": n, "messages": [...],
        "errors": [...]}`` (``answered``: requests the server answered).
        Nothing sent there shows up in reports.
        """
        now = time.time()
        requests_, old, unreadable = pack([Payload(i, "", f, now) for i, f in enumerate(fragments)])
        result: dict[str, Any] = {
            "requests": len(requests_),
            "answered": 0,
            "events": sum(len(r.events) for r in requests_),
            "messages": [],
            "errors": [],
        }
        if old or unreadable:
            result["errors"].append(f"{len(old)} too old, {len(unreadable)} unreadable: not sent")
        client_id = self._client_id(create=False) or "optel.validate"  # no consent needed
        for req in requests_:
            body = req.body(client_id, validation_behavior="ENFORCE_RECOMMENDATIONS")
            verdict, resp = self._post(limits.DEBUG_PATH, body, timeout_s)
            if verdict.kind != ACCEPTED:
                result["errors"].append(verdict.reason)
                continue
            result["answered"] += 1
            try:
                found = (
                    json.loads(resp.body if resp is not None else b"").get("validationMessages")
                    or []
                )
            except (ValueError, AttributeError):
                result["errors"].append("ga4_debug_answer_not_json")
                continue
            result["messages"].extend(found)
        return result


def validate(cfg: Config, fragments: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate ``fragments`` (default: :func:`sample_records` rendered)."""
    from .. import suppressed

    dest = Destination(cfg)
    try:
        if fragments is None:
            fragments = [f for f in (dest.render(r) for r in sample_records()) if f]
        with suppressed():  # not a delivery, but optel's own calls are never traced either
            return dest.validate(fragments)
    finally:
        dest.close()


def sample_records() -> list[dict[str, Any]]:
    """A small batch of every record kind, with awkward names on purpose."""
    import platform
    import sys

    now = time.time()
    ns = time.time_ns()
    common = {
        "app": "optel-validate",
        "version": "0.0.0",
        "policy": "opt-in",
        "session_id": str(int(now)),
        "resource": {
            "os.type": sys.platform,
            "process.runtime.name": platform.python_implementation().lower(),
            "process.runtime.version": platform.python_version(),
        },
    }
    return [
        {
            **common,
            "signal": "event",
            "time": now,
            "name": "model.converted",
            "time_ns": ns,
            "attributes": {"framework": "onnx", "duration_ms": 12.5, "_private": 1},
        },
        {
            **common,
            "signal": "event",
            "time": now,
            "name": "error",
            "time_ns": ns,
            "attributes": {},
        },
        {
            **common,
            "signal": "span",
            "time": now,
            "name": "convert model (" + "x" * 60 + ")",
            "start_ns": ns - 250_000_000,
            "end_ns": ns,
            "status": {"code": "ERROR", "message": ""},
            "attributes": {"ga_session": "1", "batch.size": 32},
            "events": [],
        },
        {
            **common,
            "signal": "event",
            "time": now,
            "name": "exception",
            "time_ns": ns,
            "attributes": {
                "exception.type": "ValueError",
                "exception.message": "bad shape <path>",
                "exception.stacktrace": "site-packages/tool/convert.py:42 in run",
            },
        },
        {
            **common,
            "signal": "metric",
            "time": now,
            "name": "models.converted",
            "type": "sum",
            "unit": "1",
            "points": [{"attributes": {"framework": "onnx"}, "time_ns": ns, "value": 3}],
        },
    ]
