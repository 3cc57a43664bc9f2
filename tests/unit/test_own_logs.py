"""Secrets never printed, no loops: optel's own HTTP requests never show the GA4
api secret in anyone's log output, and log capture never takes records of
optel's own making (its loggers, its threads, its HTTP libraries)."""

from __future__ import annotations

import logging
import threading

import pytest

from optel import _redact, logbridge

URL = "/mp/collect?measurement_id=G-1&api_secret=s3cr3t-V4lue"


def _record(
    name: str, msg: str = "x", args: tuple = (), thread: str | None = None
) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.DEBUG, __file__, 1, msg, args, None)
    if thread is not None:
        record.threadName = thread
    return record


@pytest.mark.parametrize(
    "name, thread, own",
    [("urllib3.connectionpool", "MainThread", True), ("requests", "MainThread", True),
     ("charset_normalizer.api", "MainThread", True), ("grpc._cython", "MainThread", True),
     ("optel", "MainThread", True), ("optel.pipeline", "MainThread", True),
     ("hostapp", "optel-worker", True), ("hostapp", "optel-exit", True),
     ("hostapp", "MainThread", False), ("urllib3x", "MainThread", False),
     ("optelish", "MainThread", False)],
)  # fmt: skip
def test_records_of_optels_own_making_are_never_captured(name: str, thread: str, own: bool) -> None:
    record = _record(name, thread=thread)
    assert logbridge.own(record) is own
    offered: list[dict] = []
    handler = logbridge.Handler(offered.append, {}, logging.DEBUG)
    handler.emit(record)
    assert (offered == []) is own


def test_the_api_secret_is_redacted_in_messages_and_tracebacks() -> None:
    r = _record("urllib3.connectionpool", '%s "POST %s HTTP/1.1" %s', ("http://h", URL, 204))
    assert _redact.RedactSecrets().filter(r)
    assert "s3cr3t" not in r.getMessage() and "api_secret=***" in r.getMessage()
    try:
        raise ValueError("Max retries exceeded with url: " + URL)
    except ValueError:
        import sys

        r = logging.LogRecord("optel", logging.DEBUG, __file__, 1, "boom", (), sys.exc_info())
    _redact.RedactSecrets().filter(r)
    text = logging.Formatter().format(r)
    assert "s3cr3t" not in text and "api_secret=***" in text


def test_a_host_logging_at_debug_never_sees_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    _redact.install()
    _redact.install()  # once is enough: no second filter
    assert sum(isinstance(f, _redact.RedactSecrets)
               for f in logging.getLogger("urllib3.connectionpool").filters) == 1  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3.connectionpool").debug('"POST %s HTTP/1.1"', URL)
        other = threading.Thread(
            target=logging.getLogger("urllib3.util.retry").warning, args=("Retrying %s", URL)
        )
        other.start()
        other.join()
    assert len(caplog.records) == 2 and "s3cr3t" not in caplog.text
