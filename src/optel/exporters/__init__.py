"""Destinations behind the spool.

Each destination is a module with a ``Destination`` that can

- ``render(record) -> str | None``: the payload stored in the spool for this
  destination, exactly what ``optel show`` prints and what goes on the wire
  (``None``: this destination does not take that kind of record);
- ``send(rows, timeout_s) -> Outcome``: deliver a batch of rendered rows.

Destinations are imported only when a record is about to be spooled or
sent, so a process without consent never imports them.
"""

from __future__ import annotations

import importlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ..config import Config
    from ..spool import Row

NAMES = ("ga4", "otlp", "local")


@dataclass
class Outcome:
    """What a destination did with a batch.

    ``accepted`` rows leave the spool; ``retry`` rows are tried again after
    ``retry_after_s``; ``rejected`` rows can never succeed and are dropped,
    counted under ``reason``.
    """

    accepted: list[Row] = field(default_factory=list)
    retry: list[Row] = field(default_factory=list)
    rejected: list[Row] = field(default_factory=list)
    retry_after_s: float | None = None
    reason: str = ""


class Destination(Protocol):
    name: str
    remote: bool

    def render(self, record: dict[str, Any]) -> str | None: ...

    def send(self, rows: Sequence[Row], timeout_s: float) -> Outcome: ...


@contextmanager
def suppressed() -> Iterator[None]:
    """Run a destination's own network calls with instrumentation suppressed, so
    an instrumented ``requests`` or gRPC client is not traced back into optel."""
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # the spec says integer; some servers send "1.5"
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    import email.utils  # only for an HTTP-date answer

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def load(name: str, cfg: Config) -> Destination | None:
    """The destination called ``name``, or ``None`` when it is not available."""
    if name not in NAMES:
        return None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
    factory = getattr(module, "Destination", None)
    return factory(cfg) if factory is not None else None
