"""Logging bridge: warnings and errors from :mod:`logging`, through optel.

``logging.getLogger().addHandler(telemetry.log_handler())`` sends records
at WARNING and above as optel ``log`` records; bodies and attributes go
through the same anonymizer as everything else, on the worker thread.

What a log record sends: the logger name, the level, the function and line
that logged, and the message *template*: ``record.msg`` when the call had
arguments (``log.warning("cannot open %s", path)`` sends ``cannot open
%s``), never the arguments. A message without arguments is free text: it
is very often an f-string or a ``str(exc)`` holding data
(``log.error(f"cannot open {path}")``, ``log.error(traceback.format_exc())``),
and nothing tells it apart from a constant, so its body is empty unless the
tool opted in to free text (``free_text=True``: then the formatted message
is sent as the text kind). An exception attached to the record
(``log.exception``) sends its type and module-relative frames.

``optel.init(..., capture_logs=True)`` does not add a handler anywhere: a
handler on the root logger would turn a later ``logging.basicConfig()``
into a no-op and silence Python's last-resort printing of warnings.
:func:`capture` instead chains the log record factory, which sees every
record a logger creates, and leaves the host's logging set-up as it was.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

HTTP_LOGGERS = frozenset(
    {"urllib3", "requests", "charset_normalizer", "chardet", "grpc", "h2", "hpack", "httpx",
     "httpcore"}
)  # fmt: skip
"""Top-level loggers of the HTTP libraries optel sends with (and their relatives)."""


def own(record: logging.LogRecord) -> bool:
    """A record of optel's own making: its loggers, its threads (``optel-*``),
    or the HTTP libraries it sends with. Capturing one would send it, which
    makes another, without end (one event became 29 requests in 6 s)."""
    name = record.name
    return (
        name == "optel"
        or name.startswith("optel.")
        or name.partition(".")[0] in HTTP_LOGGERS
        or (record.threadName or "").startswith("optel-")
    )


class Handler(logging.Handler):
    """A ``logging.Handler`` that hands records to optel; never raises."""

    def __init__(
        self,
        offer: Callable[[dict[str, Any]], None],
        resource: dict[str, Any],
        level: int = logging.WARNING,
    ):
        super().__init__(level)
        self._offer = offer
        self._resource = resource

    def emit(self, record: logging.LogRecord) -> None:
        if own(record):
            return  # never feed optel's own activity back into optel: that loops
        try:
            from . import records

            # the template only when there were arguments; see the module docstring
            template = record.msg if record.args and isinstance(record.msg, str) else ""
            message = record.getMessage()
            attrs: dict[str, Any] = {"code.function": record.funcName, "code.lineno": record.lineno}
            if record.exc_info and record.exc_info[1] is not None:
                from .anonymize import exceptions

                exc = record.exc_info[1]
                rep = exceptions.report(exc)
                attrs["exception.type"] = rep["type"]
                attrs["exception.message"] = str(exc)  # free text: dropped unless opted in
                attrs["exception.stacktrace"] = exceptions.stacktrace(rep["frames"])
            self._offer(
                records.log(template, record.levelname, record.name, attrs, self._resource, message)
            )
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        return None  # logging's default prints a traceback into the host's stderr


_captured: list[logging.Handler] = []
_previous_factory: Callable[..., logging.LogRecord] | None = None


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = (_previous_factory or logging.LogRecord)(*args, **kwargs)
    for handler in _captured:
        if record.levelno >= handler.level:
            handler.handle(record)  # applies the handler's filters; emit never raises
    return record


def capture(handler: logging.Handler) -> None:
    """Feed every log record at ``handler.level`` and above to ``handler``.

    Chains :func:`logging.setLogRecordFactory` to the factory in place, so
    the host's handlers, levels and ``basicConfig`` are untouched.
    """
    global _previous_factory
    if handler not in _captured:
        _captured.append(handler)
    if _previous_factory is None:
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_factory)


def release() -> None:
    """Stop capturing; restores the previous factory if none was chained on top."""
    global _previous_factory
    _captured.clear()
    if _previous_factory is not None and logging.getLogRecordFactory() is _factory:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None
