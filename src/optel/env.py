"""Every environment variable optel reads, one constant each, with its meaning.

This module is the one place a variable's name is written. Settings (values
with a type and a default, shown by ``optel settings``) are declared in
:mod:`optel.config`'s table with the variable named here; kill switches and
the drop-in's variables are read where they act, through these constants.
The standard ``OTEL_*`` variables keep their OpenTelemetry meaning
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Mapping

# -- optel's state and switches --------------------------------------------------------

OPTEL_HOME = "OPTEL_HOME"
"""Folder for all optel state (consent, id, settings, spool). Default: the
per-user config and data folders from platformdirs."""

OPTEL_DISABLED = "OPTEL_DISABLED"
"""Kill switch: a true value (1/true/yes/on) means nothing is sent."""

DO_NOT_TRACK = "DO_NOT_TRACK"
"""The cross-tool kill switch (https://consoledonottrack.com/); same effect
as OPTEL_DISABLED."""

OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
"""OpenTelemetry's own switch: ``true`` disables the SDK, so optel sends
nothing."""

# -- what the OpenTelemetry SDK reads for optel's providers (checked first: optel.sdkenv) --

OTEL_ATTRIBUTE_COUNT_LIMIT = "OTEL_ATTRIBUTE_COUNT_LIMIT"
OTEL_SPAN_EVENT_COUNT_LIMIT = "OTEL_SPAN_EVENT_COUNT_LIMIT"
OTEL_SPAN_LINK_COUNT_LIMIT = "OTEL_SPAN_LINK_COUNT_LIMIT"
OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"
"""Also read by the SDK's tracing module as it loads: invalid, it cannot be imported."""
OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT = "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"
OTEL_LINK_ATTRIBUTE_COUNT_LIMIT = "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"
OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"
OTEL_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"
OTEL_TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"
OTEL_METRICS_EXEMPLAR_FILTER = "OTEL_METRICS_EXEMPLAR_FILTER"

OPTEL_ALLOW_CI = "OPTEL_ALLOW_CI"
"""A true value lets optel send from a CI run (off by default)."""

OPTEL_PARENT_PID = "OPTEL_PARENT_PID"
"""Set by the process that may ask for consent; its children inherit it and
so know not to ask (or print the notice) again."""

OPTEL_RUN = "OPTEL_RUN"
"""Set by a tool's top-level process (``pid:session:app``, ``;``-separated for
several tools): processes it starts (multiprocessing workers, children of the
same tool) inherit it and join that run instead of starting their own."""

# -- settings (see optel.config.SETTINGS for type, default and meaning) -----------------

OPTEL_DEBUG = "OPTEL_DEBUG"
OPTEL_DESTINATIONS = "OPTEL_DESTINATIONS"
OPTEL_EXIT_BUDGET_MS = "OPTEL_EXIT_BUDGET_MS"
OPTEL_GA4_MEASUREMENT_ID = "OPTEL_GA4_MEASUREMENT_ID"
OPTEL_GA4_API_SECRET = "OPTEL_GA4_API_SECRET"
OPTEL_GA4_ENDPOINT = "OPTEL_GA4_ENDPOINT"
OPTEL_GA4_REGION = "OPTEL_GA4_REGION"
OPTEL_SPOOL_MAX_RECORDS = "OPTEL_SPOOL_MAX_RECORDS"
OPTEL_SPOOL_MAX_BYTES = "OPTEL_SPOOL_MAX_BYTES"
OPTEL_SPOOL_MAX_AGE_HOURS = "OPTEL_SPOOL_MAX_AGE_HOURS"
OPTEL_FLUSH_INTERVAL_MS = "OPTEL_FLUSH_INTERVAL_MS"
OPTEL_PROMPT_TIMEOUT_S = "OPTEL_PROMPT_TIMEOUT_S"

OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_EXPORTER_OTLP_COMPRESSION = "OTEL_EXPORTER_OTLP_COMPRESSION"
OTEL_EXPORTER_OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
OTEL_EXPORTER_OTLP_CERTIFICATE = "OTEL_EXPORTER_OTLP_CERTIFICATE"
OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
OTEL_EXPORTER_OTLP_CLIENT_KEY = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
OTEL_EXPORTER_OTLP_INSECURE = "OTEL_EXPORTER_OTLP_INSECURE"
# the OTLP metric exporter's own: checked, not applied (see optel.sdkenv.metrics_shape)
OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = (
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
)
OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION = (
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
)

OTLP_SIGNALS = ("traces", "metrics", "logs")
"""The OTLP signals that have their own ``OTEL_EXPORTER_OTLP_<SIGNAL>_*`` variables."""


def otlp_signal_var(general: str, signal: str) -> str:
    """The per-signal form of an ``OTEL_EXPORTER_OTLP_*`` variable:
    ``OTEL_EXPORTER_OTLP_HEADERS`` -> ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``."""
    prefix = "OTEL_EXPORTER_OTLP_"
    return f"{prefix}{signal.upper()}_{general[len(prefix) :]}"


# -- the drop-in (opentelemetry-instrument with OTEL_PYTHON_CONFIGURATOR=optel) ----------

OTEL_PYTHON_CONFIGURATOR = "OTEL_PYTHON_CONFIGURATOR"
"""Which configurator ``opentelemetry-instrument`` runs; optel acts only as ``optel``."""

OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
"""Standard service name; names the tool for the drop-in."""

OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
"""Standard resource attributes; read by the SDK, anonymized by optel."""

OPTEL_APP = "OPTEL_APP"
"""The drop-in's app name when it differs from OTEL_SERVICE_NAME."""

OPTEL_POLICY = "OPTEL_POLICY"
"""The drop-in's consent policy: opt-in (default) or opt-out."""

OPTEL_ALLOWED_ATTRIBUTES = "OPTEL_ALLOWED_ATTRIBUTES"
"""Comma list of attribute keys the drop-in's program declares safe to send."""

OTEL_EXPORTER_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
"""The standard exporter choices, mapped to optel destinations by the drop-in."""

OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
"""``none`` here means no logs, also through the drop-in."""

OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED = (
    "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"
)
"""The SDK's switch for sending :mod:`logging` records (``true``); the drop-in
then captures them through optel (templates, never arguments)."""

OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION = "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"
"""opentelemetry-instrumentation-logging's switch for the same (``true``)."""

OTEL_PYTHON_LOG_HANDLER_LEVEL = "OTEL_PYTHON_LOG_HANDLER_LEVEL"
"""The lowest level of the records sent (``debug``, ``info``, ``warning``,
``error``); unset: every record the program's loggers let through."""

# -- CI ------------------------------------------------------------------------------------

CI_VARIABLES = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "TF_BUILD",  # Azure Pipelines
    "JENKINS_URL",
    "CIRCLECI",
    "TRAVIS",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ID",  # AWS CodeBuild
    "APPVEYOR",
    "DRONE",
)
"""Variables whose presence marks a CI run."""

_UNSET_WORDS = ("", "0", "false", "no", "off")


def ci_variable(environ: Mapping[str, str]) -> str | None:
    """The CI marker set in ``environ`` (the one CI detection), or ``None``."""
    for name in CI_VARIABLES:
        value = environ.get(name)
        if value is not None and value.strip().lower() not in _UNSET_WORDS:
            return name
    return None
