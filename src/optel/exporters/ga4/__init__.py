"""The ``ga4`` destination: Google Analytics 4 through the Measurement Protocol.

``render`` turns a record into a *request fragment* (user properties and up
to 25 events, see :mod:`.mapping`); that is what the spool keeps and
``optel show`` prints. ``send`` packs the fragments of a batch into
requests of at most 25 events and under the body limit (:mod:`.limits`),
adds the envelope and POSTs each to ``{endpoint}/mp/collect``::

    {"client_id": <the install's current random id>, "non_personalized_ads": true,
     "user_properties": {...}, "events": [<the fragments' events>]}

The client id is added at send time, not at render time: rows wait in the
spool for up to days, and an id rotated by ``optel opt-out`` must never be
sent afterwards. The api secret lives only in memory and in the request URL;
it is never rendered, printed or logged (reasons never quote the URL).

Responses: 2xx accepted; 408, 429, 5xx, timeouts and connection errors are
retried (honouring ``Retry-After``); any other status is rejected. Events
older than GA4's 72-hour backdating window are dropped and counted
(``dropped_ga4_older_than_72h`` in ``optel status``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlencode

from .. import Outcome, retry_after
from . import limits, mapping

if TYPE_CHECKING:
    from ...config import Config
    from ...spool import Row

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
    """One request being packed: rows whose events all go in one body."""

    def __init__(self, user_properties: dict[str, Any], up_size: int):
        self.user_properties = user_properties
        self.rows: list[Row] = []
        self.events: list[dict[str, Any]] = []
        self.bytes = up_size

    def fits(self, events: list[dict[str, Any]], nbytes: int) -> bool:
        return (
            len(self.events) + len(events) <= limits.MAX_EVENTS_PER_REQUEST
            and self.bytes + nbytes <= limits.BODY_BUDGET
        )

    def add(self, row: Row, events: list[dict[str, Any]], nbytes: int) -> None:
        self.rows.append(row)
        self.events.extend(events)
        self.bytes += nbytes

    def body(self, client_id: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": client_id, "non_personalized_ads": True, **extra}
        if self.user_properties:
            body["user_properties"] = self.user_properties
        body["events"] = self.events
        return body


def pack(
    rows: Sequence[Row], now: float | None = None
) -> tuple[list[_Request], list[Row], list[Row]]:
    """Rows -> requests within every limit; also the rows too old and unreadable.

    Rows keep their order; rows with different user properties (another app
    or version) never share a request. An event whose timestamp lies in the
    future (the clock went back) is sent as happening now.
    """
    now = time.time() if now is None else now
    cutoff = int((now - limits.MAX_AGE_S + limits.AGE_MARGIN_S) * 1_000_000)
    now_us = int(now * 1_000_000)
    old: list[Row] = []
    unreadable: list[Row] = []
    open_requests: dict[str, _Request] = {}
    done: list[_Request] = []
    for row in rows:
        try:
            frag = json.loads(row.payload)
            events = [e for e in frag["events"] if isinstance(e, dict)]
            user_props = frag.get("user_properties") or {}
        except (ValueError, KeyError, TypeError):
            unreadable.append(row)
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
            (old if events else unreadable).append(row)
            continue
        key = mapping.dumps(user_props)
        nbytes = sum(mapping.size(e) + 1 for e in fresh)
        req = open_requests.get(key)
        if req is not None and not req.fits(fresh, nbytes):
            done.append(req)
            req = None
        if req is None:
            req = open_requests[key] = _Request(user_props, len(key.encode("utf-8")) + 200)
        req.add(row, fresh, nbytes)
    done.extend(open_requests.values())
    done.sort(key=lambda r: r.rows[0].id)  # oldest rows first
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

    def _post(self, path: str, body: dict[str, Any], timeout_s: float) -> tuple[str, Any, str]:
        """POST ``body``: ("ok" | "retry" | "reject", response or retry-after, reason)."""
        import requests
        from opentelemetry import context

        if self._http is None:
            self._http = requests.Session()
        data = mapping.dumps(body).encode("utf-8")
        # the exporter's own HTTP call must not be traced back into the pipeline
        token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            resp = self._http.post(
                self._url(path),
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=max(0.05, timeout_s),
                allow_redirects=False,
            )
        except requests.Timeout:
            return "retry", None, "ga4_timeout"
        except requests.RequestException as exc:  # its text quotes the URL: never use it
            return "retry", None, f"ga4_connection_error_{type(exc).__name__}"
        finally:
            context.detach(token)
        code = resp.status_code
        if 200 <= code < 300:
            return "ok", resp, ""
        if code in (408, 429) or code >= 500:
            return "retry", retry_after(resp.headers.get("Retry-After")), f"ga4_http_{code}"
        return "reject", None, f"ga4_http_{code}"

    def send(self, rows: Sequence[Row], timeout_s: float) -> Outcome:
        out = Outcome()
        reasons: list[str] = []
        if not (self.measurement_id and self._api_secret):
            out.retry = list(rows)
            out.retry_after_s = 3600.0
            out.reason = "ga4 not configured: set OPTEL_GA4_MEASUREMENT_ID and OPTEL_GA4_API_SECRET"
            return out
        deadline = time.monotonic() + timeout_s
        requests_, old, unreadable = pack(rows)
        out.rejected.extend(old + unreadable)
        if old:
            reasons.append(OLD)
        if unreadable:
            reasons.append(UNREADABLE)
        client_id = self._client_id() if requests_ else ""
        for i, req in enumerate(requests_):
            left = deadline - time.monotonic()
            if left <= 0:
                for later in requests_[i:]:
                    out.retry.extend(later.rows)
                reasons.append("ga4_time_budget_spent")
                break
            verdict, extra, reason = self._post(limits.COLLECT_PATH, req.body(client_id), left)
            if verdict == "ok":
                out.accepted.extend(req.rows)
                continue
            reasons.append(reason)
            if verdict == "reject":
                out.rejected.extend(req.rows)
                continue
            # retry: the service is unhealthy, keep the rest for later too
            out.retry_after_s = extra
            for later in requests_[i:]:
                out.retry.extend(later.rows)
            break
        out.reason = "+".join(dict.fromkeys(reasons))
        return out

    # -- validation ---------------------------------------------------------------

    def validate(self, fragments: Sequence[str], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send fragments to ``/debug/mp/collect``; the validation server's answers.

        Returns ``{"requests": n, "events": n, "messages": [...], "errors": [...]}``.
        Nothing sent there shows up in reports.
        """
        from ...spool import Row

        rows = [
            Row(i, "", "", "", self.name, f, time.time(), 0, None) for i, f in enumerate(fragments)
        ]
        requests_, old, unreadable = pack(rows)
        result: dict[str, Any] = {
            "requests": len(requests_),
            "events": sum(len(r.events) for r in requests_),
            "messages": [],
            "errors": [],
        }
        if old or unreadable:
            result["errors"].append(f"{len(old)} too old, {len(unreadable)} unreadable: not sent")
        client_id = self._client_id(create=False) or "optel.validate"  # no consent needed
        for req in requests_:
            body = req.body(client_id, validation_behavior="ENFORCE_RECOMMENDATIONS")
            verdict, resp, reason = self._post(limits.DEBUG_PATH, body, timeout_s)
            if verdict != "ok":
                result["errors"].append(reason)
                continue
            try:
                found = resp.json().get("validationMessages") or []
            except ValueError:
                result["errors"].append("ga4_debug_answer_not_json")
                continue
            result["messages"].extend(found)
        return result


def validate(cfg: Config, fragments: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate ``fragments`` (default: :func:`sample_records` rendered)."""
    dest = Destination(cfg)
    if fragments is None:
        fragments = [f for f in (dest.render(r) for r in sample_records()) if f]
    return dest.validate(fragments)


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
