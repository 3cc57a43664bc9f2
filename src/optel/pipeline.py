"""SDK wiring: providers, the span processor, the metric reader, the worker.

Imported only once consent is given. The host's hot path does as little as
possible: an ended span is appended to a bounded in-memory queue. The one
worker thread turns queued spans into records, passes them through the
gate-scrub-render step (:mod:`optel.stage`), writes the spool, and sends; at
exit the remaining queue is written to the spool in the exiting thread and
sending gets what is left of the exit budget.

The pipeline owns its destination objects for its whole life
(:class:`optel.exporters.Destinations`): made once (the worker warms them),
used by every send (the worker's, ``flush()`` and the exit send), closed at
shutdown, so one HTTP session or gRPC channel serves the run.

With ``OPTEL_DEBUG`` the pipeline is a *preview* (:attr:`Pipeline.preview`),
whatever the consent: every record is anonymized and printed to stderr as
each destination would send it, none is kept or sent, and nothing is written
to the state folder (the spool is an in-memory one, no run is counted, no
salt is made).

If the host already installed an SDK ``TracerProvider``, optel adds its
processor to it and never replaces it. Otherwise optel installs its own as
the global provider, so tracers taken from ``opentelemetry.trace`` before
or after ``init`` record through optel.
"""

from __future__ import annotations

import atexit
import os
import platform
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from . import _errors, consent, delivery, exporters, records
from ._version import __version__
from .anonymize import Anonymizer
from .config import Config
from .kinds import KIND_MISMATCH
from .spool import NewRecord, Row, Spool, limits_from
from .stage import Stage

QUEUE_MAX = 8192
DRAIN_S = 1.0  # most seconds a recorded span waits in memory before it is on disk
# kept back from the exit budget: interpreter teardown, which with the HTTP and
# protobuf modules loaded takes ~40 ms more than without a destination
_EXIT_MARGIN_S = 0.07

_DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


def base_resource(app: str, version: str | None) -> Resource:
    """Anonymous facts about the tool; ``OTEL_*`` resource settings merge in."""
    attrs: dict[str, Any] = {
        "service.name": app,
        "os.type": sys.platform if sys.platform != "win32" else "windows",
        "process.runtime.name": platform.python_implementation().lower(),
        "process.runtime.version": platform.python_version(),
        "optel.version": __version__,
    }
    if version:
        attrs["service.version"] = version
    return Resource.create(attrs)


class _SpanQueue(SpanProcessor):
    """Hands ended spans to the worker; never blocks, counts what it drops."""

    def __init__(self, pipeline: Pipeline):
        self._pipeline = pipeline

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self._pipeline.offer(span)

    def shutdown(self) -> None:
        self._pipeline.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._pipeline.flush(timeout_millis / 1000)


class _PullReader(MetricReader):
    """A metric reader the worker collects from; no thread of its own."""

    def __init__(self, pipeline: Pipeline):
        super().__init__(preferred_temporality=_DELTA)
        self._pipeline = pipeline

    def _receive_metrics(
        self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any
    ) -> None:
        if metrics_data is None:
            return
        for rec in records.from_metrics(metrics_data):
            self._pipeline.offer_record(rec)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class Pipeline:
    """Everything between the SDK and the destinations, for one app."""

    def __init__(
        self,
        cfg: Config,
        app: str,
        version: str | None,
        policy: str,
        anonymizer: Anonymizer,
    ):
        self.cfg = cfg
        self.app = app
        self.version = version
        self.policy = policy
        self.anonymizer = anonymizer
        self.enabled = True
        self.preview = bool(cfg["debug"])
        """``OPTEL_DEBUG``: print what would be sent; send, keep and write nothing."""
        if self.preview:
            from .anonymize import hashing

            hashing.preview()  # hashes with the salt there is, or one kept in memory
        self.dropped = 0  # queue full; written to the spool's stats
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._lock = threading.Lock()  # one drain at a time
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._spool: Spool | None = None
        self._decision: consent.Decision | None = None
        self._users = 0  # threads using the destinations now
        self._finished = False  # shutdown done: the last user closes the destinations
        self._users_lock = threading.Lock()
        self._new_destinations()
        self.resource = base_resource(app, version)
        self._resource_attrs = records.attributes(self.resource.attributes)
        self._thread: threading.Thread | None = None
        # held while the worker imports: a fork then would leave the child's
        # import locks held by a thread that does not exist there
        self._importing = threading.Lock()
        self._fork_held = False
        self.tracer_provider = self._attach_tracing()
        self.reader = _PullReader(self)
        self.meter_provider = self._attach_metrics()
        self._start_worker()
        atexit.register(self.shutdown)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_parent,
                after_in_child=self._after_fork,
            )

    @property
    def closed(self) -> bool:
        """Shut down: nothing more is recorded by this pipeline."""
        return self._closed

    @property
    def resource_attributes(self) -> dict[str, Any]:
        """The resource's attributes as a dict shared (never mutated) by every
        event and log record of this pipeline, so the anonymizer scrubs it once."""
        return self._resource_attrs

    def count_drop(self, key: str, n: int) -> None:
        """Add ``n`` to the spool's drop counter ``key`` (``optel status`` shows it)."""
        self.spool().count_drop(key, n)

    # -- SDK providers --------------------------------------------------------

    def _attach_tracing(self) -> TracerProvider:
        current = trace_api.get_tracer_provider()
        if isinstance(current, TracerProvider):
            current.add_span_processor(_SpanQueue(self))  # the host's stays in charge
            return current
        provider = TracerProvider(resource=self.resource, shutdown_on_exit=False)
        provider.add_span_processor(_SpanQueue(self))
        if isinstance(current, trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(provider)
        return provider

    def _attach_metrics(self) -> MeterProvider:
        # Undeclared metric attributes are dropped before aggregation, so they
        # can neither leak nor blow up the number of series kept in memory.
        keep = set(self.anonymizer.kinds)  # declared, optel's own and built-in keys
        provider = MeterProvider(
            resource=self.resource,
            metric_readers=[self.reader],
            views=[View(instrument_name="*", attribute_keys=keep)],
            shutdown_on_exit=False,
        )
        current = metrics_api.get_meter_provider()
        if not isinstance(current, MeterProvider):
            # a host that set its own SDK MeterProvider keeps it: SDK readers
            # cannot be added later, so optel's meter stays private then
            metrics_api.set_meter_provider(provider)
        return provider

    # -- the host's hot path --------------------------------------------------------

    def offer(self, span: Any) -> None:
        if not self.enabled or self._closed:
            return
        if len(self._queue) >= QUEUE_MAX:
            self.dropped += 1
            return
        self._queue.append(span)
        if len(self._queue) == QUEUE_MAX // 2:
            self._wake.set()

    def offer_record(self, rec: dict[str, Any]) -> None:
        """A ready record (event, error, metric) instead of a span."""
        self.offer(rec)

    # -- what it holds (read-only; tests look here, not at private fields) ---------

    @property
    def queued(self) -> int:
        """Records waiting in memory for the worker to write them to the spool."""
        return len(self._queue)

    def pending(self, destination: str | None = None, limit: int = 1000) -> list[Row]:
        """Records waiting in this pipeline's spool (for ``destination``, or all),
        oldest first; call :meth:`flush` first to include what is still queued."""
        return self.spool().pending(destination, limit)

    def stop_worker(self, timeout_s: float = 5.0) -> bool:
        """Stop the background worker: from now on records move only on
        :meth:`flush` and :meth:`shutdown`. True when it ended within ``timeout_s``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._thread is None or not self._thread.is_alive()

    # -- queue -> spool ----------------------------------------------------------

    def spool(self) -> Spool:
        if self._spool is None:
            # a preview writes nothing: its counters live in memory and die with it
            where = ":memory:" if self.preview else self.cfg.paths.spool
            self._spool = Spool(where, limits_from(self.cfg.values))
        return self._spool

    def _new_destinations(self) -> None:
        """This pipeline's destination objects and the step that renders for them."""
        self.destinations = exporters.Destinations(self.cfg)
        self._stage = Stage(
            self.anonymizer,
            self.destinations,
            self.cfg.destinations(),
            decide=self._consent,
            hold=True,  # held records wait in the spool for the switch to clear
            debug=self.cfg["debug"],
        )

    def _consent(self, app: str, policy: str) -> consent.Decision:
        """The decision the worker last checked (this pipeline records one app)."""
        if self.preview:  # nothing leaves a preview: every record is shown
            return consent.Decision(app, consent.UNSET, True, "preview (OPTEL_DEBUG)")
        if self._decision is None or (app, policy) != (self.app, self.policy):
            return consent.decide(app, policy, p=self.cfg.paths)
        return self._decision

    def drain(self) -> int:
        """Move everything queued into the spool (anonymized and rendered)."""
        with self._lock:
            items = []
            while self._queue:
                items.append(self._queue.popleft())
            if not items and not self.dropped:
                return 0
            common = {
                "app": self.app,
                "version": self.version,
                "policy": self.policy,
                "session_id": _session_id(),
            }

            def to_record(item: Any) -> dict[str, Any]:
                rec: dict[str, Any] = item if isinstance(item, dict) else records.from_span(item)
                rec.update(common)
                return rec

            new = [
                NewRecord(r.app, r.policy, r.signal, r.destination, r.payload, r.created)
                for r in self._stage(items, to_record)
            ]
            if new:
                self.spool().add(new)
            if self.dropped:
                n, self.dropped = self.dropped, 0
                self.spool().count_drop("dropped_queue_full", n)
            for app, n in self.anonymizer.take_mismatches().items():
                self.spool().count_drop(KIND_MISMATCH + app, n)  # 'optel status' shows it
            return len(items)

    def collect_metrics(self) -> None:
        with _errors.guard("metrics"):
            self.reader.collect(timeout_millis=1000)

    # -- the worker ------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._thread = threading.Thread(target=self._run, name="optel-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.cfg["flush_interval_ms"] / 1000
        # Make the destinations (requests, protobuf, gRPC) now, in the
        # background, so the exit budget is spent sending rather than importing.
        with _errors.guard("preload"), self._importing, self._using_destinations():
            self.destinations.warm(self.cfg.destinations())
        # Spans reach the disk every DRAIN_S, so a host killed without running
        # its exit hooks (SIGKILL, SIGTERM unhandled, os._exit) loses at most
        # that much; sending (and metric collection) keeps its own interval.
        tick = min(interval, DRAIN_S)
        next_send = time.monotonic() + interval
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            with _errors.guard("worker"):
                self.recheck_consent()
                due = time.monotonic() >= next_send
                if due:
                    self.collect_metrics()
                self.drain()
                if due and self.enabled:
                    self._deliver(
                        time.monotonic() + interval,
                        max_rows=delivery.BACKGROUND_MAX_ROWS,  # a backlog drains gently
                    )
                if due:
                    next_send = time.monotonic() + interval

    def recheck_consent(self) -> None:
        """Read consent again now; a refusal drops what is queued in memory."""
        if self.preview:
            return  # a preview records whatever the decision, and sends nothing
        d = self._decision = consent.decide(self.app, self.policy, p=self.cfg.paths)
        if consent.disposition(d) == consent.PURGE:
            self._queue.clear()  # withdrawn mid-run: keep nothing more
        self.enabled = d.enabled

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Spool everything recorded so far, then send until ``timeout_s``."""
        with _errors.guard("flush"):
            deadline = time.monotonic() + max(0.0, timeout_s)
            self.recheck_consent()
            self.collect_metrics()
            self.drain()
            if self.enabled:
                self._deliver(deadline)
            return True
        return False  # the guard swallowed a failure

    def shutdown(self) -> None:
        """Spool what is queued, send within the exit budget, stop the worker."""
        if self._closed:
            return
        start = time.monotonic()
        budget = self.cfg["exit_budget_ms"] / 1000
        sender: threading.Thread | None = None
        with _errors.guard("shutdown"):
            self.collect_metrics()
            self._closed = True
            self._stop.set()
            self._wake.set()
            self.drain()
            remaining = budget - (time.monotonic() - start)
            if self._thread is not None and self._thread.is_alive():
                self._thread.join(max(0.0, min(remaining, 0.05)))
            remaining = budget - (time.monotonic() - start)
            if remaining > _EXIT_MARGIN_S + delivery.MIN_REQUEST_S and self.enabled:
                self.recheck_consent()
                if self.enabled:
                    # Sockets can outlive any timeout (a trickling server, a slow
                    # DNS answer): send from a daemon thread and wait for it only
                    # as long as the budget allows. What is not acknowledged by
                    # then stays in the spool for a later run or `optel flush`.
                    deadline = start + budget - _EXIT_MARGIN_S
                    sender = threading.Thread(
                        target=self._send_until, args=(deadline,), name="optel-exit", daemon=True
                    )
                    sender.start()
                    sender.join(max(0.0, deadline - time.monotonic()))
                    if sender.is_alive():
                        # cut off mid-send: free its rows for the next sender now (at
                        # worst the server got them and a later run sends a duplicate)
                        self.spool().release_owner(self._owner)
        with _errors.guard("shutdown-close"):
            with self._users_lock:
                self._finished = True  # from now on, the last user closes the destinations
            self._close_destinations_when_idle()
            if self._spool is not None and (sender is None or not sender.is_alive()):
                self._spool.close()

    # -- the destinations' lifetime ---------------------------------------------------

    def _deliver(self, deadline: float, **kw: Any) -> delivery.Report:
        with self._using_destinations():
            return delivery.deliver(
                self.spool(), self.destinations, self.cfg, deadline, self._owner, **kw
            )

    @contextmanager
    def _using_destinations(self) -> Iterator[None]:
        """Counts the threads using the destinations, so that once shutdown is
        done the last one to finish closes them: a send the exit budget cut off
        may still be on a socket, and closing it under that send would only
        break it."""
        with self._users_lock:
            self._users += 1
        try:
            yield
        finally:
            with self._users_lock:
                self._users -= 1
            self._close_destinations_when_idle()

    def _close_destinations_when_idle(self) -> None:
        with self._users_lock:
            if not self._finished or self._users:
                return
        self.destinations.close()  # idempotent; closes HTTP sessions and gRPC channels

    def _send_until(self, deadline: float) -> None:
        with _errors.guard("exit-send"):
            lease = max(5.0, deadline - time.monotonic() + 5.0)  # short: a cut send frees soon
            self._deliver(deadline, lease_s=lease)

    def _before_fork(self) -> None:
        # Let the worker finish importing first (once, ~0.1 s; bounded so a
        # host's fork never waits long).
        self._fork_held = self._importing.acquire(timeout=2.0)

    def _after_fork_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._importing.release()

    def _after_fork(self) -> None:
        # The worker thread does not exist in a forked child; start a fresh one.
        self._importing = threading.Lock()
        self._fork_held = False
        self._queue.clear()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._spool = None
        # fresh sessions and channels: never share the parent's sockets (nor close them)
        self._users = 0
        self._users_lock = threading.Lock()
        self._new_destinations()
        if not self._closed:
            self._start_worker()


def _session_id() -> str:
    from .identity import session_id

    return session_id()
