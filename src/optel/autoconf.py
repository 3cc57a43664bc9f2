"""Drop-in for tools already instrumented with OpenTelemetry.

``opentelemetry-instrument`` (and anything else that runs the SDK's
auto-configuration) loads the configurator registered under the
``opentelemetry_configurator`` entry point group. optel registers one named
``optel``; it acts only when chosen explicitly, so installing optel as some
tool's dependency never takes over another program's set-up::

    OTEL_PYTHON_CONFIGURATOR=optel OTEL_SERVICE_NAME=mytool \\
        opentelemetry-instrument python script.py

It calls :func:`optel.init` for the app named by ``OTEL_SERVICE_NAME`` (or
``OPTEL_APP``), so consent, the anonymizer and the spool sit between the
script's unmodified OpenTelemetry calls and whatever exporters the
environment names. ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` /
``OTEL_LOGS_EXPORTER`` values ``otlp``, ``ga4`` and ``none`` map to optel
destinations (``console`` maps to ``local``); ``OPTEL_DESTINATIONS`` still
wins over them. What the instrumentations record leaves with no declaration
when it says what kind of work happened (:mod:`optel.semconv`).

Logs: when the standard variables ask for them
(``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true``, see
:func:`logs_level`), :mod:`logging` records go through optel's log capture,
under its rules: the template, the level, the logger, the function and line,
never the arguments. optel is then the process's only logs pipeline
(:func:`_own_logs`); records made with the OpenTelemetry logs API directly
are not sent.

Chosen, without consent (or without an app name): the SDK is switched off
for the whole process (``OTEL_SDK_DISABLED=true``, which every SDK tracer,
meter and logger provider reads when it is built), so no provider exports,
not even one a plugin builds later (pytest-opentelemetry builds its own).
Child processes inherit it, and are off too.

Not chosen (``OTEL_PYTHON_CONFIGURATOR`` unset, and optel's entry point
happened to come first): optel runs the configurator that would have run
without optel (the next one in the same order), or none if there is none,
so every program behaves exactly as without optel installed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from . import config, env

NAME = "optel"
_MAP = {
    "otlp": "otlp",
    "otlp_proto_http": "otlp",
    "otlp_proto_grpc": "otlp",
    "ga4": "ga4",
    "console": "local",
    "none": "none",
}


def destinations_from_env(environ: Mapping[str, str]) -> list[str] | None:
    """optel destinations named by the standard ``OTEL_*_EXPORTER`` variables.
    An exporter optel cannot send to (``zipkin``, ``prometheus``) sends nowhere,
    with one line naming it."""
    found: list[str] = []
    unknown: list[tuple[str, str]] = []
    named = False
    for var in env.OTEL_EXPORTER_VARIABLES:
        for name in environ.get(var, "").split(","):
            name = name.strip().lower()
            if not name:
                continue
            named = True
            dest = _MAP.get(name)
            if dest is None:
                unknown.append((var, name))
            elif dest != "none" and dest not in found:
                found.append(dest)
    if not named:
        return None
    result = found or ["none"]
    if unknown:
        from . import _errors

        for var, name in unknown:
            _errors.warn_invalid(
                var, f"expected one of {', '.join(_MAP)}, got {name[:40]!r}", ", ".join(result)
            )
    return result


def configure(environ: Mapping[str, str] | None = None) -> Any:
    """Set optel up from the environment; returns the telemetry object or ``None``."""
    from . import _errors, init

    environ = os.environ if environ is None else environ
    if environ.get(env.OTEL_PYTHON_CONFIGURATOR, "").strip() != NAME:
        return None  # not chosen: leave the program's own set-up alone
    app = (environ.get(env.OPTEL_APP) or environ.get(env.OTEL_SERVICE_NAME) or "").strip()
    if not app:
        _errors.warn_once("autoconf-app", "set OTEL_SERVICE_NAME (or OPTEL_APP) to name the tool")
        return None
    allowed = config.declared_keys(environ)
    policy = environ.get(env.OPTEL_POLICY, "opt-in").strip() or "opt-in"
    dests = destinations_from_env(environ)
    logs = logs_level(environ)
    try:
        telemetry = init(
            app=app,
            policy=policy,
            allowed_attributes=allowed,
            destinations=dests,
            capture_logs=logs if logs is not None else False,
        )
    except ValueError as exc:  # an environment mistake: say so, never crash the program
        _errors.warn_once("autoconf", f"not configured: {exc}")
        return None
    if telemetry.enabled:
        with _errors.guard("autoconf-logs"):
            _own_logs(logs is not None)
    return telemetry


_LEVELS = {"notset": 1, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40,
           "critical": 50}  # fmt: skip


def logs_level(environ: Mapping[str, str]) -> int | None:
    """The level from which :mod:`logging` records go through optel, or ``None``.

    Logs are sent when a standard variable asks for them:
    ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true`` (the SDK's) or
    ``OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION=true`` (the logging
    instrumentation's), and ``OTEL_LOGS_EXPORTER`` is not ``none``. The level
    is ``OTEL_PYTHON_LOG_HANDLER_LEVEL``; unset, every record the program's
    loggers let through, as the SDK's handler would take.
    """

    def true(name: str) -> bool:
        return environ.get(name, "").strip().lower() == "true"

    if not (
        true(env.OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED)
        or true(env.OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION)
    ):
        return None
    if environ.get(env.OTEL_LOGS_EXPORTER, "").strip().lower() == "none":
        return None
    level = environ.get(env.OTEL_PYTHON_LOG_HANDLER_LEVEL, "").strip().lower()
    if level and level not in _LEVELS:
        from . import _errors

        _errors.warn_once(
            "autoconf-log-level",
            f"{env.OTEL_PYTHON_LOG_HANDLER_LEVEL}={level!r} is not a level; every record is taken",
        )
    return _LEVELS.get(level, 1)


def _own_logs(captured: bool) -> None:
    """optel is this process's logs pipeline: nothing else may send log records.

    The global OpenTelemetry logger provider becomes a no-op one (the logging
    instrumentation's handler and any plugin's logger then send nothing, and
    no later ``set_logger_provider`` can install an exporting one). An SDK
    configurator that a plugin runs later (pytest-opentelemetry does) would
    hang a handler with its own exporter on the root logger when the SDK's
    variable asks for logs: the variable is turned off for it, and the
    logging instrumentation's variable on, so child processes still ask
    optel for logs.
    """
    from opentelemetry._logs import NoOpLoggerProvider, set_logger_provider

    set_logger_provider(NoOpLoggerProvider())
    if captured and env.OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED in os.environ:
        os.environ[env.OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED] = "false"
        os.environ[env.OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION] = "true"


def _disable_sdk() -> None:
    """No SDK provider in this process may export: every one built from now on
    (the drop-in runs before the program and its plugins) is a no-op."""
    os.environ[env.OTEL_SDK_DISABLED] = "true"


def _chosen(environ: Mapping[str, str]) -> bool:
    return environ.get(env.OTEL_PYTHON_CONFIGURATOR, "").strip() == NAME


def _base() -> type:
    try:
        from opentelemetry.sdk._configuration import _BaseConfigurator

        return _BaseConfigurator
    except ImportError:  # pragma: no cover - very old SDKs
        return object


_LOADER_LOGGER = "opentelemetry.instrumentation.auto_instrumentation._load"
_SKIPPED = "Configuration of %s not loaded, %s already loaded"


class _AsIfWithoutOptel:
    """The auto-instrumentation loader's "not loaded, optel already loaded"
    warnings, told as they would be without optel: none about the configurator
    that really ran (the first one after optel's: two may share a name), the
    others naming it instead of optel."""

    def __init__(self, ran: str):
        self.ran = ran
        self.skipped_it = False

    def filter(self, record: Any) -> bool:
        args = record.args
        if record.msg == _SKIPPED and isinstance(args, tuple) and args[1:] == (NAME,):
            if not self.skipped_it and args[0] == self.ran:
                self.skipped_it = True
                return False
            record.args = (args[0], self.ran)
        return True


def _delegate(**kwargs: Any) -> str | None:
    """Run the configurator that would have run without optel; its name, or
    ``None`` when there is none (then nothing is configured, as without optel)."""
    try:
        from opentelemetry.util._importlib_metadata import entry_points
    except ImportError:  # pragma: no cover - an SDK without the helper
        return None
    for ep in entry_points(group="opentelemetry_configurator"):
        if ep.name == NAME or ep.value.split(":")[0] == __name__:
            continue
        import logging

        logging.getLogger(_LOADER_LOGGER).addFilter(_AsIfWithoutOptel(ep.name))
        ep.load()().configure(**kwargs)  # its failure is its own, as without optel
        return str(ep.name)
    return None


class OptelConfigurator(_base()):  # type: ignore[misc]
    """The ``opentelemetry_configurator`` entry point named ``optel``."""

    def _configure(self, **kwargs: Any) -> None:
        if not _chosen(os.environ):
            _delegate(**kwargs)
            return
        telemetry = None
        try:
            telemetry = configure()
        finally:
            if telemetry is None or not telemetry.recording:  # (a preview records)
                _disable_sdk()  # no consent: nothing in this process exports

    def configure(self, **kwargs: Any) -> None:
        self._configure(**kwargs)
