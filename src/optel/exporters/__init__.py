"""Destinations: where records go (``ga4``, ``otlp``, ``local``).

A destination knows records and payloads, never where a record waited. Each
module has a ``Destination`` that can

- ``render(record) -> str | None``: the payload for this destination, exactly
  what ``optel show`` prints and what goes on the wire (``None``: it does not
  take that kind of record);
- ``send(items, timeout_s) -> Outcome``: deliver :class:`Payload` items, each
  carrying the anonymized record (rendered by the destination now, with the
  same code as ``render``; several records may share one request) and a key of
  the caller's choosing; the :class:`Outcome` names the keys accepted, to
  retry and rejected;
- ``warm()``: load what sending needs (the worker does it at start, so an
  exit budget is spent sending, not importing);
- ``close()``: end its connections (its owner does, once, at the end).

Whoever sends owns the destination objects for its lifetime
(:class:`Destinations`): a pipeline for the whole run, ``optel flush`` for
one command. Every send runs with instrumentation suppressed (:func:`send`
applies :func:`suppressed`; both callers, delivery and the GA4 SDK exporter,
send through it), and every answer is classified here, once: :func:`classify_http`,
:func:`classify_error` and :func:`classify_grpc`. HTTP goes through
:mod:`.transport` (the standard library's client, kept alive).

Destinations are imported only when a record is about to be rendered or
sent, so a process without consent never imports them.
"""

from __future__ import annotations

import importlib
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ..config import Config

NAMES = ("ga4", "otlp", "local")

ACCEPTED, RETRY, REJECTED = "accepted", "retry", "rejected"


@dataclass(frozen=True)
class Payload:
    """One record to send; ``key`` is the caller's, returned in the outcome.

    ``record`` is the anonymized record, rendered by the destination as it
    sends; without one, ``payload`` is text already rendered for this
    destination (spooled by an older optel, or fragments to validate), sent as
    it is."""

    key: Hashable
    signal: str
    payload: str | None
    created: float
    record: dict[str, Any] | None = None


@dataclass
class Outcome:
    """What a destination did with a batch, by the items' keys.

    ``accepted`` keys were delivered; ``retry`` ones may succeed later, after
    ``retry_after_s`` when the server said; ``rejected`` ones can never
    succeed and are dropped, counted under ``reason``.
    """

    accepted: list[Hashable] = field(default_factory=list)
    retry: list[Hashable] = field(default_factory=list)
    rejected: list[Hashable] = field(default_factory=list)
    retry_after_s: float | None = None
    reason: str = ""


class Destination(Protocol):
    name: str
    remote: bool

    def render(self, record: dict[str, Any]) -> str | None: ...

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome: ...

    def warm(self) -> None: ...

    def close(self) -> None: ...


# -- answers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How one request went: ``kind`` is accepted, retry or rejected."""

    kind: str
    reason: str = ""
    retry_after_s: float | None = None


def classify_http(status: int, retry_after_header: str | None = None) -> Verdict:
    """The one rule for an HTTP answer, for every HTTP destination.

    - 2xx: accepted.
    - 408, 429, 5xx: retry, after ``Retry-After`` when given
      (https://opentelemetry.io/docs/specs/otlp/#otlphttp-response).
    - 3xx: retry, with the status as the error. Redirects are never followed:
      optel sends telemetry only where the administrator pointed it, not where
      an answer points. Not dropped either: the usual 3xx is a captive portal
      or a proxy's login page, which passes, and a moved endpoint is a
      configuration to fix (``optel status`` shows ``http_3xx`` as the last
      error) while the records wait, bounded by the spool's age and size.
    - any other 4xx: rejected, the request itself is wrong and resending it
      cannot help.
    - anything else (not a status HTTP defines): retry; the record is kept, so
      trying again can only help.
    """
    reason = f"http_{status}"
    if 200 <= status < 300:
        return Verdict(ACCEPTED)
    if 400 <= status < 500 and status not in (408, 429):
        return Verdict(REJECTED, reason)
    return Verdict(RETRY, reason, retry_after(retry_after_header))


def classify_error(exc: BaseException) -> Verdict:
    """A request that got no answer: a timeout, a refused or broken connection,
    a TLS failure, a bad certificate file. Always retry (the reason names the
    kind of failure, never the URL: its text may hold a secret)."""
    from .transport import is_timeout

    if is_timeout(exc):
        return Verdict(RETRY, "timeout")
    return Verdict(RETRY, f"connection_error_{type(exc).__name__}")


# gRPC status codes the OTLP spec lists as retryable
# (https://opentelemetry.io/docs/specs/otlp/#failures); RESOURCE_EXHAUSTED is
# retried too (the spec: when the server can recover; the record is kept anyway).
GRPC_RETRYABLE = frozenset(
    {
        "CANCELLED",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNAVAILABLE",
        "DATA_LOSS",
    }
)


def classify_grpc(code: str) -> Verdict:
    """A gRPC status by name (``grpc.StatusCode.X.name``): OK accepted, the
    retryable ones retry, every other one rejected."""
    if code == "OK":
        return Verdict(ACCEPTED)
    kind = RETRY if code in GRPC_RETRYABLE else REJECTED
    return Verdict(kind, f"grpc_{code.lower()}")


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


@contextmanager
def suppressed() -> Iterator[None]:
    """Run a destination's own network calls with instrumentation suppressed, so
    an instrumented HTTP or gRPC client is not traced back into optel."""
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def send(dest: Destination, items: Sequence[Payload], timeout_s: float) -> Outcome:
    """``dest.send`` with instrumentation suppressed: the one place that applies
    it, for every destination and every caller (delivery and the GA4 SDK
    exporter); destinations do not suppress anything themselves."""
    with suppressed():
        return dest.send(items, timeout_s)


# -- finding and owning destinations ------------------------------------------------------


def load(name: str, cfg: Config) -> Destination | None:
    """A new destination called ``name``, or ``None`` when it is not available.
    Its caller owns it and closes it; see :class:`Destinations`."""
    if name not in NAMES:
        return None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
    factory = getattr(module, "Destination", None)
    return factory(cfg) if factory is not None else None


class Destinations:
    """The destination objects of one owner, each made once and closed once.

    A pipeline holds one for its lifetime (the worker, ``flush()`` and the
    exit send all use it, so one HTTP session or gRPC channel serves the whole
    run); ``optel flush`` holds one for the command. After :meth:`close` it
    hands out nothing: that owner sends no more.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._made: dict[str, Destination | None] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, name: str, warn: bool = False) -> Destination | None:
        """The destination ``name`` (made on first use), or ``None`` when it is
        not available or this set is closed; ``warn``: say so once on stderr."""
        with self._lock:
            if self._closed:
                return None
            if name not in self._made:
                self._made[name] = load(name, self.cfg)
            dest = self._made[name]
        if dest is None and warn:
            from .. import _errors

            _errors.warn_once(f"dest:{name}", f"destination {name!r} is not available; skipped")
        return dest

    def warm(self, names: Sequence[str]) -> None:
        """Make and warm ``names`` now (the worker does, off the host's path)."""
        for name in names:
            dest = self.get(name, warn=True)
            if dest is not None:
                dest.warm()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every destination made (sessions, channels); never raises."""
        from .. import _errors

        with self._lock:
            self._closed = True
            made, self._made = list(self._made.values()), {}
        for dest in made:
            if dest is not None:
                with _errors.guard("destination-close"):
                    dest.close()

    def __enter__(self) -> Destinations:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
