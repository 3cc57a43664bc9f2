"""Secrets never printed: optel's own HTTP requests and its own log records.

The GA4 Measurement Protocol takes the api secret in the request URL, and
urllib3 (under ``requests``) logs request URLs: every request at DEBUG, a
retry at WARNING. A host that logs at DEBUG would print the secret. :func:`install`
adds a filter to urllib3's loggers, and to optel's own, that replaces the
value of every secret URL parameter with ``***`` in the message and in a
logged traceback, whatever the host's level, handlers or formatters.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("api_secret",)
"""URL query parameters whose values are secrets (GA4's Measurement Protocol)."""

_NAMES = "|".join(map(re.escape, SECRET_PARAMS))
_PATTERN = re.compile(rf"((?:{_NAMES})=)[^&\s'\"#<>]+")

LOGGERS = (
    "urllib3.connectionpool",  # the request line at DEBUG, retries at WARNING
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "urllib3.connection",
    "optel",  # optel's own (an internal error's traceback may quote a URL)
)


def redact(text: str) -> str:
    """``text`` with every secret URL parameter's value replaced by ``***``."""
    return _PATTERN.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record that would show a secret; never drops one, never raises."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            if any(p in message for p in SECRET_PARAMS):
                record.msg, record.args = redact(message), None
            if record.exc_info and not record.exc_text:
                text = logging.Formatter().formatException(record.exc_info)
                if any(p in text for p in SECRET_PARAMS):
                    record.exc_text = redact(text)  # formatters use it as it is
        except Exception:  # a record that cannot be formatted is the host's to report
            pass
        return True


_installed = False


def install() -> None:
    """Add :class:`RedactSecrets` to the loggers that may show optel's secrets (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    redactor = RedactSecrets()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(redactor)
