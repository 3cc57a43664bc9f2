"""The ``OTEL_*`` variables the OpenTelemetry SDK reads when optel makes its own providers,
checked before the SDK sees them.

The SDK raises ``ValueError`` for a span limit that is not a whole number of 0 or
more, and for an unknown exemplar filter: optel's ``init`` failed on it, and
the tool lost its telemetry with "internal error in init". For an unknown
sampler, or a sampler argument that is not a number, it logs a message of its
own into the host's output. Here each invalid value gives optel's one line
instead (``optel: VAR is not valid (...); using ... instead``) and the value
the SDK uses when the variable is unset; a valid value is left to the SDK to
read, as it would have.

The rules are OpenTelemetry's
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
an unknown value is warned about and ignored; a boolean is true only for
``true`` (any case), and a value other than ``true``, ``false`` or empty falls
back to false with a warning.
"""

from __future__ import annotations

import os

from . import _errors, env

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Mapping

# SpanLimits argument -> (its variable, the argument whose value it falls back to).
# Counts default to 128, lengths to no limit (the spec's defaults:
# https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#attribute-limits).
_COUNTS = {
    "max_attributes": (env.OTEL_ATTRIBUTE_COUNT_LIMIT, None),
    "max_events": (env.OTEL_SPAN_EVENT_COUNT_LIMIT, None),
    "max_links": (env.OTEL_SPAN_LINK_COUNT_LIMIT, None),
    "max_span_attributes": (env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
    "max_event_attributes": (env.OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
    "max_link_attributes": (env.OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
}
_LENGTHS = {
    "max_attribute_length": (env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, None),
    "max_span_attribute_length": (
        env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
        "max_attribute_length",
    ),
}
DEFAULT_COUNT = 128

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"

EXEMPLAR_FILTERS = ("trace_based", "always_on", "always_off")


def _invalid(var: str, expected: str, got: str, using: str) -> None:
    _errors.warn_invalid(var, f"expected {expected}, got {got[:60]!r}", using)


def _named(environ: Mapping[str, str], var: str, known: tuple[str, ...], default: str) -> str:
    """The name ``var`` holds, case-insensitive: ``""`` when it is unset or
    empty; ``default``, with one warning, when it is none of ``known``."""
    raw = environ.get(var, "")
    name = raw.strip().lower()
    if name and name not in known:
        _invalid(var, "one of " + ", ".join(known), raw, default)
        return default
    return name


def _read_limit(environ: Mapping[str, str], var: str) -> tuple[bool, int | None]:
    """(valid, value) of a limit variable as the SDK reads it: ``None`` when it is
    empty (the SDK's "no limit") or absent (the caller's default)."""
    raw = environ.get(var)
    if raw is None:
        return True, None
    text = raw.strip().lower()
    if text == "":
        return True, None
    try:
        value = int(text)
    except ValueError:
        return False, None
    return value >= 0, value if value >= 0 else None


def sdk_unloadable(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the SDK's tracing module cannot be imported under ``environ``, or
    ``None``: it reads ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` as it loads (a
    constant it keeps for backward compatibility, ``SPAN_ATTRIBUTE_COUNT_LIMIT``)
    and raises for an invalid value, in any program that imports it. optel
    does not change the host's environment to get round it (``os.environ``
    written while another thread reads it can crash a process): sending is off
    (a kill switch, :func:`optel.consent.rule.kill_switch`), with one line."""
    environ = os.environ if environ is None else environ
    var = env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT
    if _read_limit(environ, var)[0]:
        return None
    why = (
        f"{var} is not valid (expected a whole number of 0 or more, got {environ[var][:60]!r}),"
        " and the OpenTelemetry SDK cannot load with it"
    )
    _errors.warn_once("env:" + var, f"{why}: nothing is recorded")
    return why


def span_limits(environ: Mapping[str, str] | None = None) -> Any:
    """``SpanLimits`` for optel's ``TracerProvider``: ``None`` (the SDK reads the
    variables itself) when every limit variable is valid; else one that gives
    each invalid one the value it has when unset, with one warning each."""
    environ = os.environ if environ is None else environ
    read = {arg: _read_limit(environ, var) for arg, (var, _) in {**_COUNTS, **_LENGTHS}.items()}
    if all(ok for ok, _ in read.values()):
        return None
    from opentelemetry.sdk.trace import SpanLimits

    explicit: dict[str, int] = {}
    for table, unset in ((_COUNTS, DEFAULT_COUNT), (_LENGTHS, SpanLimits.UNSET)):
        for arg, (var, falls_back_to) in table.items():
            ok, _ = read[arg]
            if ok:
                continue
            value: int = unset
            if falls_back_to is not None:
                base_ok, base = read[falls_back_to]
                if base_ok and base is not None:
                    value = base
            explicit[arg] = value
            _invalid(
                var,
                "a whole number of 0 or more",
                environ[var],
                "no limit" if value == SpanLimits.UNSET else str(value),
            )
    return SpanLimits(**explicit)  # type: ignore[arg-type]


def sampler(environ: Mapping[str, str] | None = None) -> Any:
    """The sampler ``OTEL_TRACES_SAMPLER`` (and ``_ARG``) name, made here (``None``
    when the variable is unset or empty: the SDK's default); an unknown name, or
    a ratio that is not a number from 0 to 1, gives one warning and the default
    (``parentbased_always_on``; a ratio of 1.0). Names are case-insensitive."""
    environ = os.environ if environ is None else environ
    name = _named(environ, env.OTEL_TRACES_SAMPLER, SAMPLERS, DEFAULT_SAMPLER)
    if not name:
        return None
    from opentelemetry.sdk.trace import sampling

    fixed = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "parentbased_always_on": sampling.DEFAULT_ON,
        "parentbased_always_off": sampling.DEFAULT_OFF,
    }
    if name in fixed:
        return fixed[name]
    rate = 1.0  # the spec's default for a ratio sampler without an argument
    arg = environ.get(env.OTEL_TRACES_SAMPLER_ARG, "").strip()
    if arg:
        try:
            rate = float(arg)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:  # (NaN too)
            _invalid(env.OTEL_TRACES_SAMPLER_ARG, "a number from 0 to 1", arg, "1.0")
            rate = 1.0
    if name == "traceidratio":
        return sampling.TraceIdRatioBased(rate)
    return sampling.ParentBasedTraceIdRatio(rate)


def exemplar_filter(environ: Mapping[str, str] | None = None) -> Any:
    """The exemplar filter ``OTEL_METRICS_EXEMPLAR_FILTER`` names, made here
    (``None`` when unset or empty: the SDK's default, ``trace_based``); an
    unknown name gives one warning and the default. Case-insensitive."""
    environ = os.environ if environ is None else environ
    name = _named(environ, env.OTEL_METRICS_EXEMPLAR_FILTER, EXEMPLAR_FILTERS, "trace_based")
    if not name:
        return None
    from opentelemetry.sdk.metrics import (
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        TraceBasedExemplarFilter,
    )

    if name == "always_on":
        return AlwaysOnExemplarFilter()
    if name == "always_off":
        return AlwaysOffExemplarFilter()
    return TraceBasedExemplarFilter()


# The OTLP metric exporter's variables and the values the spec knows
# (https://opentelemetry.io/docs/specs/otel/metrics/sdk_exporters/otlp/), each with
# the one optel sends: metrics are collected once, in one shape, for every
# destination (GA4 counts a counter's value as what happened since the last one).
_METRICS_SHAPE = (
    (
        env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
        ("cumulative", "delta", "lowmemory"),
        "delta",
        "counters and histograms as deltas (the spec's delta preference)",
    ),
    (
        env.OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
        ("explicit_bucket_histogram", "base2_exponential_bucket_histogram"),
        "explicit_bucket_histogram",
        "histograms with explicit buckets",
    ),
)


def metrics_shape(environ: Mapping[str, str] | None = None) -> None:
    """Say so when the OTLP metric exporter's variables ask for a shape of
    metric other than the one optel sends (the spec's ``delta`` temporality
    preference: counters and histograms as what changed since the last
    collection, up-down counters and gauges as they stand; histograms with
    explicit buckets). One line each, for an invalid value too; an unset,
    empty or matching one says nothing. Case-insensitive, as the spec has it."""
    environ = os.environ if environ is None else environ
    for var, known, sent, what in _METRICS_SHAPE:
        value = _named(environ, var, known, sent)  # (an invalid one: its line, and what is sent)
        if value and value != sent:
            _errors.warn_once(
                "env:" + var,
                f"{var}={value} is not applied; optel sends {what} to every destination",
            )


def sdk_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """``OTEL_SDK_DISABLED`` as a boolean: true for ``true`` in any case; a value
    other than ``true``, ``false`` or empty is false, with one warning."""
    environ = os.environ if environ is None else environ
    raw = environ.get(env.OTEL_SDK_DISABLED, "")
    text = raw.strip().lower()
    if text not in ("", "true", "false"):
        _invalid(env.OTEL_SDK_DISABLED, "true or false", raw, "false")
    return text == "true"
