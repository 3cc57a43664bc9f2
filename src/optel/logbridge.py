"""Logging bridge: warnings and errors from :mod:`logging`, through optel.

``logging.getLogger().addHandler(telemetry.log_handler())`` sends records
at WARNING and above as optel ``log`` records; bodies and attributes go
through the same anonymizer as everything else, on the worker thread.
"""

from __future__ import annotations

import logging
from typing import Any, Callable


class Handler(logging.Handler):
    """A ``logging.Handler`` that hands records to optel; never raises."""

    def __init__(self, offer: Callable[[dict[str, Any]], None], resource: dict[str, Any],
                 level: int = logging.WARNING):
        super().__init__(level)
        self._offer = offer
        self._resource = resource

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "optel" or record.name.startswith("optel."):
            return  # never feed optel's own messages back into optel
        try:
            from . import records

            body = record.getMessage()
            attrs: dict[str, Any] = {"code.function": record.funcName, "code.lineno": record.lineno}
            if record.exc_info and record.exc_info[1] is not None:
                from .anonymize import exceptions

                rep = exceptions.report(record.exc_info[1])
                attrs["exception.type"] = rep["type"]
                attrs["exception.message"] = rep["message"]
                attrs["exception.stacktrace"] = exceptions.stacktrace(rep["frames"])
            self._offer(records.log(body, record.levelname, record.name, attrs, self._resource))
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        return None  # logging's default prints a traceback into the host's stderr
