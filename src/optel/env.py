"""Names of the environment variables optel reads, one constant each.

Only names live here; what a value means is decided where it is used
(``config`` for settings, ``consent`` for kill switches).
"""

from __future__ import annotations

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

OPTEL_ALLOW_CI = "OPTEL_ALLOW_CI"
"""A true value lets optel send from a CI run (off by default)."""

OPTEL_DEBUG = "OPTEL_DEBUG"
"""A true value prints each payload to stderr instead of sending it."""

OPTEL_DESTINATIONS = "OPTEL_DESTINATIONS"
"""Comma list of ga4, otlp, local, none: overrides the tool's choice."""

OPTEL_EXIT_BUDGET_MS = "OPTEL_EXIT_BUDGET_MS"
"""Most milliseconds optel may add to the host's exit (default 300)."""

OPTEL_GA4_MEASUREMENT_ID = "OPTEL_GA4_MEASUREMENT_ID"
"""GA4 measurement id (``G-XXXXXXX``)."""

OPTEL_GA4_API_SECRET = "OPTEL_GA4_API_SECRET"
"""GA4 Measurement Protocol API secret; never printed."""

OPTEL_GA4_ENDPOINT = "OPTEL_GA4_ENDPOINT"
"""Base URL of the GA4 service (default https://www.google-analytics.com)."""

OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Standard OTLP endpoint; enables the otlp destination."""

OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
"""Standard service name; applied after anonymization."""

OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
"""Standard resource attributes; applied after anonymization."""

CI = "CI"
"""Set to a true value by most CI services."""

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
