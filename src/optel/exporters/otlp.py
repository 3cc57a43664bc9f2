"""The ``otlp`` destination: OTLP/HTTP (protobuf or JSON) or OTLP/gRPC.

Records are rendered when they are sent (:mod:`.otlpwire`): a batch becomes
one export request per signal, records sharing a resource and scope grouped
as the SDK's exporter groups them, posted to ``{endpoint}/v1/traces|metrics|logs``
as protobuf (``http/protobuf``, the default), as OTLP/JSON (``http/json``) or
exported over gRPC (``grpc``). ``render`` gives the OTLP/JSON of the request
holding one record: what ``optel show`` prints, the very message that is sent
(the same fields, protobuf-encoded unless the protocol is ``http/json``).

Answers are classified by :func:`optel.exporters.classify_http` and
:func:`optel.exporters.classify_grpc`, the rules every destination shares.

Settings come from optel's settings table (``cfg.otlp(name, signal)``: the
per-signal value, else the general one), which reads the standard variables
(https://opentelemetry.io/docs/specs/otel/protocol/exporter/):
``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]ENDPOINT``, ``..._PROTOCOL``,
``..._HEADERS``, ``..._COMPRESSION`` (gzip), ``..._TIMEOUT`` (bounded by the
caller's deadline), ``..._CERTIFICATE``, ``..._CLIENT_CERTIFICATE``/``..._CLIENT_KEY``,
``..._INSECURE`` (gRPC). A per-signal endpoint is used as it is; without one,
the general endpoint gets ``/v1/<signal>``; a signal with neither while
another signal has its own endpoint is not sent by OTLP (see
:meth:`optel.config.Config.otlp_endpoint`).

Each request's resources carry ``optel.install.id``, the install's random
client id (:func:`optel.identity.client_id`, the one GA4 gets as
``client_id``), so installs can be counted without GA4. As for GA4 it is
added at send time, never rendered: not in the spool, not in ``optel show``,
and an id rotated by ``optel opt-out`` is never sent afterwards (a value a
record's resource already had for that key is replaced).

One destination keeps its HTTP connections (:class:`.transport.Client`) and
one gRPC channel per target for its whole life, so its owner's sends reuse
them; ``close()`` ends them. Payloads spooled by an older optel (already
rendered, the protobuf JSON mapping) are sent as they are; reading them needs
the ``protobuf`` runtime, imported only then.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from typing import Any, Sequence

from .._version import __version__
from ..config import OTLP_SIGNAL, Config, parse_otlp_headers
from . import (
    RETRY,
    Outcome,
    Payload,
    Verdict,
    classify_error,
    classify_grpc,
    classify_http,
    otlpwire,
    transport,
)

SIGNALS = OTLP_SIGNAL  # optel record signal -> OTLP signal
_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_CONTENT_TYPE = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
INSTALL_ID = "optel.install.id"
UNRENDERABLE = "unrenderable_record"


def parse_headers(text: str | None) -> dict[str, str]:
    """``k1=v1,k2=v2`` (values URL-encoded) as the OTLP exporter spec defines;
    malformed entries are left out (the settings warned about them)."""
    return parse_otlp_headers(text)[0]


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class Destination:
    """OTLP destination: HTTP with protobuf or JSON bodies, or gRPC."""

    name = "otlp"
    remote = True

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._http: transport.Client | None = None
        self._channels: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()  # the worker and an exit send may share it

    # -- rendering ------------------------------------------------------------------------

    def render(self, record: dict[str, Any]) -> str | None:
        """The OTLP/JSON export request holding ``record`` (``None``: not an OTLP signal)."""
        if record.get("signal") not in SIGNALS:
            return None
        doc, bad = otlpwire.to_json([record])
        return None if bad else dumps(doc)

    # -- settings -------------------------------------------------------------------------

    def protocol(self, signal: str) -> str:
        """``http/protobuf`` (default), ``http/json`` or ``grpc``."""
        return str(self.cfg.otlp("protocol", signal) or "http/protobuf")

    def url(self, signal: str) -> str | None:
        """Where ``signal`` goes (``None``: not sent by OTLP in this configuration)."""
        return self.cfg.otlp_endpoint(signal, grpc=self.protocol(signal) == "grpc")

    def _gzip(self, signal: str) -> bool:
        return self.cfg.otlp("compression", signal) == "gzip"

    def _tls(self, signal: str) -> transport.TLS:
        return transport.TLS(
            self.cfg.otlp("certificate", signal),
            self.cfg.otlp("client_certificate", signal),
            self.cfg.otlp("client_key", signal),
        )

    # -- lifetime -------------------------------------------------------------------------

    def warm(self) -> None:
        """Load what sending needs ahead of time (the worker does, at start), so
        an exit budget is spent sending, not importing."""
        for signal in set(SIGNALS.values()):
            url = self.url(signal)
            if url is None:
                continue
            if self.protocol(signal) == "grpc":
                self._channel(signal)
            else:
                self._client()
                if url.startswith("https:"):
                    import ssl  # noqa: F401 - loaded now rather than at the first send

    def close(self) -> None:
        with self._lock:
            client, self._http = self._http, None
            channels, self._channels = list(self._channels.values()), {}
        if client is not None:
            client.close()
        for channel in channels:
            channel.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome:
        outcome = Outcome()
        by_signal: dict[str, list[Payload]] = {}
        for item in items:
            by_signal.setdefault(SIGNALS.get(item.signal, ""), []).append(item)
        deadline = time.monotonic() + timeout_s
        for signal, group in by_signal.items():
            if signal not in _GRPC_METHODS:
                outcome.rejected.extend(i.key for i in group)
                outcome.reason = "unknown_signal"
                continue
            if self.url(signal) is None:
                # an endpoint for other signals only: these wait, in case one is set
                outcome.retry.extend(i.key for i in group)
                outcome.retry_after_s = 3600.0
                outcome.reason = f"otlp_no_endpoint_for_{signal}"
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or outcome.retry:
                outcome.retry.extend(i.key for i in group)  # no time, or it already failed
                continue
            body, good, bad = self._request(signal, group)
            if bad:
                outcome.rejected.extend(bad)
                outcome.reason = UNRENDERABLE  # a damaged record can never be sent
            if not good:
                continue
            if self.protocol(signal) == "grpc":
                verdict = self._export_grpc(signal, body, remaining)
            else:
                verdict = self._post(signal, body, remaining)
            getattr(outcome, verdict.kind).extend(good)
            if verdict.reason:
                outcome.reason = verdict.reason
            if verdict.kind == RETRY:
                outcome.retry_after_s = verdict.retry_after_s
        return outcome

    def _request(self, signal: str, group: Sequence[Payload]) -> tuple[bytes, list[Any], list[Any]]:
        """The body of one export request for ``group`` (records rendered now,
        older payloads as they were), the keys in it and the keys left out."""
        as_json = self.protocol(signal) == "http/json"
        fresh = [i for i in group if i.record is not None]
        old = [i for i in group if i.record is None]
        records = [i.record for i in fresh if i.record is not None]
        stamp = self._install_id()
        doc: dict[str, Any] = {}
        body = b""
        if as_json:
            doc, bad_at = otlpwire.to_json(records, stamp)
        else:
            body, bad_at = otlpwire.encode(records, stamp)
        left_out = set(bad_at)
        good = [i.key for n, i in enumerate(fresh) if n not in left_out]
        bad = [fresh[n].key for n in bad_at]
        if old:
            parts, old_good, old_bad = _legacy(signal, old, as_json, stamp)
            good += old_good
            bad += old_bad
            for part in parts:
                if as_json:
                    for field, entries in part.items():
                        doc.setdefault(field, []).extend(entries)
                else:
                    body += part  # protobuf: concatenated requests merge
        return (dumps(doc).encode("utf-8") if as_json else body), good, bad

    def _install_id(self) -> tuple[str, str] | None:
        """(key, the install's current id) for every resource sent (``None``: no id)."""
        from ..identity import client_id

        # created when missing, as for GA4: an opt-out policy tool has consent without a grant
        install = client_id(self.cfg.paths, create=True)
        return (INSTALL_ID, install) if install else None

    # -- HTTP -----------------------------------------------------------------------------

    def _client(self) -> transport.Client:
        with self._lock:
            if self._http is None:
                self._http = transport.Client()
            return self._http

    def _post(self, signal: str, body: bytes, timeout_s: float) -> Verdict:
        cfg = self.cfg
        headers = {
            "Content-Type": _CONTENT_TYPE.get(self.protocol(signal), "application/x-protobuf"),
            "User-Agent": f"optel/{__version__}",
        }
        headers.update(parse_headers(cfg.otlp("headers", signal)))
        if self._gzip(signal):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        configured = cfg.otlp("timeout", signal)
        if configured:
            timeout_s = min(timeout_s, configured / 1000)  # spec: milliseconds
        url = self.url(signal)
        assert url is not None
        try:
            answer = self._client().post(url, body, headers, timeout_s, self._tls(signal))
        except Exception as exc:  # no answer: timeout, refused, TLS, DNS, not HTTP
            return classify_error(exc)
        return classify_http(answer.status, answer.headers.get("retry-after"))

    # -- gRPC -----------------------------------------------------------------------------

    def _grpc_target(self, signal: str) -> tuple[str, bool]:
        """(host:port, secure) from the endpoint; http:// or the insecure setting is plain."""
        endpoint = self.url(signal) or "http://localhost:4317"
        scheme, _, rest = endpoint.partition("://")
        if not rest:
            scheme, rest = "https", endpoint
        insecure = bool(self.cfg.otlp("insecure", signal))
        return rest.split("/", 1)[0], scheme == "https" and not insecure

    def _channel(self, signal: str) -> Any:
        import grpc

        key = self._grpc_target(signal)
        with self._lock:
            if key not in self._channels:
                target, secure = key
                if secure:
                    roots = cert_chain = private_key = None
                    cert = self.cfg.otlp("certificate", signal)
                    if cert:
                        with open(cert, "rb") as f:
                            roots = f.read()
                    client_cert = self.cfg.otlp("client_certificate", signal)
                    client_key = self.cfg.otlp("client_key", signal)
                    if client_cert and client_key:
                        with open(client_cert, "rb") as f:
                            cert_chain = f.read()
                        with open(client_key, "rb") as f:
                            private_key = f.read()
                    creds = grpc.ssl_channel_credentials(roots, private_key, cert_chain)
                    self._channels[key] = grpc.secure_channel(target, creds)
                else:
                    self._channels[key] = grpc.insecure_channel(target)
            return self._channels[key]

    def _export_grpc(self, signal: str, body: bytes, timeout_s: float) -> Verdict:
        import grpc

        headers = parse_headers(self.cfg.otlp("headers", signal))
        metadata = [(k.lower(), v) for k, v in headers.items()]
        try:
            # the request is already protobuf: sent as bytes, the answer not decoded
            call = self._channel(signal).unary_unary(_GRPC_METHODS[signal])
            call(
                body,
                timeout=timeout_s,
                metadata=metadata or None,
                compression=grpc.Compression.Gzip if self._gzip(signal) else None,
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            return classify_grpc(code.name)
        except (OSError, ValueError) as exc:  # a bad certificate file, a bad target
            return classify_error(exc)
        return classify_grpc("OK")


# -- payloads an older optel rendered ---------------------------------------------------------

_REQUEST_TYPES = {
    "traces": (
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        "ExportTraceServiceRequest",
    ),
    "metrics": (
        "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
        "ExportMetricsServiceRequest",
    ),
    "logs": (
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        "ExportLogsServiceRequest",
    ),
}
_IDS = {"traceId", "spanId", "parentSpanId"}
_FIELDS = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}


def _legacy(
    signal: str, items: Sequence[Payload], as_json: bool, stamp: tuple[str, str] | None
) -> tuple[list[Any], list[Any], list[Any]]:
    """Payloads spooled by optel before schema 2 (``MessageToJson`` of a one-record
    request): (request parts, good keys, bad keys). Protobuf parts merge by
    concatenation; JSON parts are OTLP/JSON documents to merge by field."""
    import base64
    import importlib

    from google.protobuf import json_format

    module, name = _REQUEST_TYPES[signal]
    kind = getattr(importlib.import_module(module), name)
    parts: list[Any] = []
    good: list[Any] = []
    bad: list[Any] = []
    for item in items:
        try:
            msg = json_format.Parse(item.payload or "", kind())
        except (json_format.ParseError, TypeError, ValueError):
            bad.append(item.key)  # a corrupt payload can never be sent
            continue
        if stamp is not None:
            for group in getattr(msg, _FIELDS[signal]):
                attrs = group.resource.attributes
                for i in reversed(range(len(attrs))):
                    if attrs[i].key == stamp[0]:
                        del attrs[i]
                attrs.add(key=stamp[0]).value.string_value = stamp[1]
        if as_json:
            doc = json_format.MessageToDict(msg, use_integers_for_enums=True)

            def hex_ids(node: Any) -> Any:
                if isinstance(node, dict):
                    return {
                        k: base64.b64decode(v).hex() if k in _IDS else hex_ids(v)
                        for k, v in node.items()
                    }
                if isinstance(node, list):
                    return [hex_ids(v) for v in node]
                return node

            parts.append(hex_ids(doc))
        else:
            parts.append(msg.SerializeToString())
        good.append(item.key)
    return parts, good, bad
