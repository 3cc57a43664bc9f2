"""GA4 as a plain OpenTelemetry exporter, usable in any SDK pipeline.

Registered under the ``opentelemetry_traces_exporter`` and
``opentelemetry_metrics_exporter`` entry point groups as ``ga4``, so the
SDK's own auto-configuration picks it with ``OTEL_TRACES_EXPORTER=ga4``
(and ``OTEL_METRICS_EXPORTER=ga4``). Each export runs optel's own gate-scrub
step (:mod:`optel.stage`, the one the pipeline uses): consent for the
record's app (``service.name``; ``OPTEL_POLICY``, default opt-in) and the
anonymizer (declared keys from ``OPTEL_ALLOWED_ATTRIBUTES``); the GA4
destination renders the records as it sends them through
:func:`optel.exporters.send`. Without
optel's spool there is no durability: a failed export is reported to the
SDK's processor as a failure, as any exporter would, and a record that
consent holds back (a kill switch) is not kept.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import _errors, config, consent, env, records
from ..anonymize import Anonymizer
from ..identity import session_id
from ..stage import Stage
from . import Destinations, Payload, send


class _GA4Core:
    """The GA4 destination and the gate-scrub step, for both exporters."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        cfg = config.resolve()
        self.destinations = Destinations(cfg)
        self.policy = os.environ.get(env.OPTEL_POLICY, "opt-in").strip() or "opt-in"
        self.timeout_s = timeout_s
        self.stage = Stage(
            Anonymizer(config.declared_keys(os.environ)),
            self.destinations,
            ("ga4",),
            decide=lambda app, policy: consent.decide(app, policy, p=cfg.paths),
            hold=False,  # no spool here: what may not leave now is not kept
            debug=cfg["debug"],
        )

    def _record(self, rec: dict[str, Any]) -> dict[str, Any]:
        app = str(rec.get("resource", {}).get("service.name") or "unknown_service")
        rec.update(app=app, policy=self.policy, session_id=session_id(), version=None)
        return rec

    def export(self, recs: list[dict[str, Any]]) -> bool:
        scrubbed = self.stage(recs, self._record)
        dest = self.destinations.get("ga4")
        if not scrubbed or dest is None:
            return True  # no consent (or debug): nothing leaves, and that is a success
        items = [Payload(i, r["signal"], None, r["time"], record=r) for i, r in enumerate(scrubbed)]
        outcome = send(dest, items, self.timeout_s)  # instrumentation suppressed
        return not outcome.retry and not outcome.rejected

    def close(self) -> None:
        self.destinations.close()


class GA4SpanExporter(SpanExporter):
    """``OTEL_TRACES_EXPORTER=ga4``: spans to GA4 events, with consent and scrubbing."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._core = _GA4Core(timeout_s)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = False
        with _errors.guard("ga4-span-export"):
            ok = self._core.export([records.from_span(s) for s in spans])
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._core.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class GA4MetricExporter(MetricExporter):
    """``OTEL_METRICS_EXPORTER=ga4``: metrics to aggregated GA4 events."""

    def __init__(self, timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._core = _GA4Core(timeout_s)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        ok = False
        with _errors.guard("ga4-metric-export"):
            ok = self._core.export(list(records.from_metrics(metrics_data)))
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._core.close()
