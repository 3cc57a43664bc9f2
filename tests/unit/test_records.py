"""SDK signals -> record dicts: what is kept and what is not the tool's."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from optel import records


def test_the_sdk_own_health_metrics_are_not_records() -> None:
    # SDK 1.41 (the newest for Python 3.9) records otel.sdk.span.started and
    # friends unasked, under the meter "opentelemetry-sdk"
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    provider.get_meter(records.SDK_SCOPE).create_counter("otel.sdk.span.started").add(1)
    provider.get_meter("optel.mytool").create_counter("models.converted").add(2)
    found = list(records.from_metrics(reader.get_metrics_data()))
    assert [(r["name"], r["scope"]["name"]) for r in found] == [
        ("models.converted", "optel.mytool")
    ]
    provider.shutdown()
