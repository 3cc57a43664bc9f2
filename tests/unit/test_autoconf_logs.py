"""Logs through the drop-in: which standard variables ask for them, and at which level."""

from __future__ import annotations

import pytest

from optel import autoconf


@pytest.mark.parametrize(
    "environ,level",
    [
        ({}, None),
        ({"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"}, 1),
        ({"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "TRUE "}, 1),
        ({"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "false"}, None),
        ({"OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION": "true"}, 1),
        (
            {
                "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
                "OTEL_PYTHON_LOG_HANDLER_LEVEL": "warning",
            },
            30,
        ),
        (
            {
                "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION": "true",
                "OTEL_PYTHON_LOG_HANDLER_LEVEL": "Info",
            },
            20,
        ),
        (
            {
                "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
                "OTEL_LOGS_EXPORTER": "none",
            },
            None,
        ),
    ],
)
def test_logs_level(environ: dict[str, str], level: int | None) -> None:
    assert autoconf.logs_level(environ) == level


def test_a_wrong_level_takes_every_record_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
        "OTEL_PYTHON_LOG_HANDLER_LEVEL": "loud",
    }
    assert autoconf.logs_level(environ) == 1
    assert "OTEL_PYTHON_LOG_HANDLER_LEVEL='loud' is not a level" in capsys.readouterr().err
