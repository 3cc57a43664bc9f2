"""GA4 as a plain OpenTelemetry exporter, usable in any SDK pipeline.

Registered under the ``opentelemetry_traces_exporter`` and
``opentelemetry_metrics_exporter`` entry point groups as ``ga4``, so the
SDK's own auto-configuration picks it with ``OTEL_TRACES_EXPORTER=ga4``
(and ``OTEL_METRICS_EXPORTER=ga4``). Each export checks consent for the
app (``service.name``; ``OPTEL_POLICY``, default opt-in), runs the
anonymizer (declared keys from ``OPTEL_ALLOWED_ATTRIBUTES``) and maps to
GA4 exactly as optel's spool-backed destination does. Without optel's
spool there is no durability: a failed export is reported to the SDK's
processor as a failure, as any exporter would.
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
from ..spool import Row


class _GA4Core:
    """Consent, anonymizer and GA4 mapping shared by both exporters."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        from .ga4 import Destination

        self.cfg = config.resolve()
        self.dest = Destination(self.cfg)
        self.anonymizer = Anonymizer(config.declared_keys(os.environ))
        self.policy = os.environ.get(env.OPTEL_POLICY, "opt-in").strip() or "opt-in"
        self.timeout_s = timeout_s

    def export(self, recs: list[dict[str, Any]]) -> bool:
        rows: list[Row] = []
        for i, rec in enumerate(recs):
            app = str(rec.get("resource", {}).get("service.name") or "unknown_service")
            if not consent.decide(app, self.policy, p=self.cfg.paths).enabled:
                continue  # no consent: nothing leaves, and that is a success
            rec.update(app=app, policy=self.policy, session_id=session_id(), version=None)
            payload = self.dest.render(self.anonymizer.scrub(rec))
            if payload is not None:
                rows.append(
                    Row(i, app, self.policy, rec["signal"], "ga4", payload, rec["time"], 0, None)
                )
        if not rows:
            return True
        outcome = self.dest.send(rows, self.timeout_s)
        return not outcome.retry and not outcome.rejected


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
        return None

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
        return None
