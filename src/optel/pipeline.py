"""SDK wiring: providers, the span processor, the metric reader, the workers.

Imported only once consent is given. The host's hot path does as little as
possible: an ended span (or a ready record) is appended to a bounded
in-memory queue. When a burst runs ahead of the worker by more than the exit
could spool in half its budget (:data:`HELP_AT`), the recording thread scrubs
a slice itself (never touching the disk), so the queue, and what the exit must
spool, stay short.
Two daemon threads do the rest:

- ``optel-worker`` drains the queue: each record passes the gate-scrub step
  (:mod:`optel.stage`) and is written to the spool as compact JSON, a chunk
  per transaction. It wakes every :data:`DRAIN_S` and as soon as
  :data:`WAKE_AT` records wait, so a burst reaches the disk while it happens;
- ``optel-sender`` (only with a remote destination) loads the destinations
  at start, then sends what waits every ``flush_interval_ms``, and as soon as
  :data:`SEND_AT` new records were spooled, so records leave during the run.
  It never holds up spooling: a slow network only delays sending.

At exit the remaining queue is spooled on the exiting thread (scrubbing and
a JSON dump per record, nothing rendered, nothing imported), bounded by the
exit budget, and sending gets what is left of it, from a daemon thread once
the destinations are loaded.

The pipeline owns its destination objects for its whole life
(:class:`optel.exporters.Destinations`): made once (the sender warms them),
used by every send (the sender's, ``flush()`` and the exit send), closed at
shutdown, so one HTTP connection or gRPC channel serves the run.

With ``OPTEL_DEBUG`` the pipeline is a *preview* (:attr:`Pipeline.preview`),
whatever the consent: every record is anonymized and printed to stderr as
each destination would send it, none is kept or sent, and nothing is written
to the state folder (the spool is an in-memory one, no run is counted, no
salt is made).

If the host already installed an SDK ``TracerProvider``, optel adds its
processor to it and never replaces it. Otherwise optel installs its own as
the global provider, so tracers taken from ``opentelemetry.trace`` before
or after ``init`` record through optel.

**Process models.** A run is the top-level process of a tool; processes it
starts belong to it:

- ``os.fork`` (and ``multiprocessing`` with fork): the child keeps the
  pipeline, with fresh threads, connections and spool connection, and
  records into the same spool under its parent's session;
- ``multiprocessing`` with spawn or forkserver, and any child process of the
  same tool: the child's own ``init`` finds its parent's run in the
  environment (:data:`optel.env.OPTEL_RUN`, set by the top-level process) and
  joins it: same session, no ``run_start``/``run_end`` of its own;
- a ``multiprocessing`` child spools what it holds when it ends (its exit
  hooks do not run after fork, so a multiprocessing finalizer does it) and
  when it is terminated (``Pool.terminate()``, leaving ``with Pool()``,
  ``Process.terminate()``: SIGTERM, when the program has not set its own
  handler: the queue is spooled, then the process ends by SIGTERM as
  before). A child leaves sending to its parent when the parent is alive.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

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

from . import _errors, consent, delivery, env, exporters, records, sdkenv
from ._version import __version__
from .anonymize import Anonymizer
from .config import Config
from .kinds import KIND_MISMATCH
from .stage import Stage

if TYPE_CHECKING:
    from .spool import NewRecord, Row, Spool

QUEUE_MAX = 16384
"""Records in memory waiting for the worker; a full queue drops (counted)."""
WAKE_AT = 256
"""Queued records that wake the worker before its tick."""
CHUNK = 4096
"""Most records written to the spool per transaction (few, big transactions: see
spool._insert_many on why each statement costs a burst)."""
CHUNK_S = 0.05
"""The worker sizes its chunks to take about this long (its exit check comes
between slices anyway)."""
SLICE = 256
"""Records scrubbed between two looks at whether the exit asked the worker to
stop; and what the recording thread scrubs at a time when the queue runs ahead."""
HELP_AT = (1024, 4096)
"""Bounds of the queue length beyond which the recording thread scrubs a slice
itself (see Pipeline._help). Between them, the mark is what the exit can spool
in half its budget at the pace the worker measured, so what is queued at exit
fits in it. The trade-off: below the mark, recording only appends; a loop
recording faster than the worker keeps up with (thousands a second) pays for
the scrubbing it causes beyond it, instead of records being dropped (as a full
queue would) or the exit running over its budget."""
READY_CHUNK = 1024
"""Most records scrubbed by the recording thread written per transaction."""
KNOWN_MAX = 2048
"""Records kept in memory after spooling so their send need not parse them back."""
CHECKPOINT_AT = 1000
"""Rows written or removed after which SQLite's write-ahead log is copied into
the database, on a thread of its own (see Spool.checkpoint and spool.LOG_PAGES):
during a burst as the worker writes, and at quiet moments for what sends removed."""
DRAIN_S = 0.5
"""Most seconds a recorded record waits in memory before it is on disk."""
SEND_AT = 512
"""Records spooled since the last send that wake the sender before its interval."""
CONSENT_S = 1.0
"""How often the worker reads consent again."""
# kept back from the exit budget for the interpreter's own teardown after
# optel's exit hook (its last collections, the modules loaded): on this
# project's 2-core machine 71 ms for the modules a sending run loads, 100-150 ms
# after a 10,000-span burst (bench/datapath.py's burst row ran 327-361 ms with
# 70 ms kept back, 315 ms with 110); at most a third of a small budget
_EXIT_MARGIN_S = 0.11


def _exit_room(budget_ms: float) -> float:
    """Seconds of an exit budget optel's exit hook may use (see _EXIT_MARGIN_S)."""
    budget = max(0.0, budget_ms / 1000)
    return budget - min(_EXIT_MARGIN_S, budget / 3)


_DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


def _compact_json() -> Callable[[Any], str]:
    """Compact JSON of a record, as ``json.JSONEncoder(separators=(",", ":"),
    ensure_ascii=False, check_circular=False, default=str).encode`` gives it.

    That encoder builds its C encoder again for every call; here one is built
    once (the same object ``JSONEncoder.iterencode`` builds) and used for every
    record, when it gives the same text on a sample, else the plain encoder."""
    plain = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, check_circular=False, default=str
    ).encode
    try:
        from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

        encoder = c_make_encoder(None, str, encode_basestring, None, ":", ",", False, False, True)
        join = "".join

        def fast(o: Any) -> str:
            return join(encoder(o, 0))

        sample = {"a": [1, 2.5, None, True, float("nan")], "é\n": 'q"\u2028', "c": {"d": ()}}
        sample["e"] = frozenset()  # not JSON: default=str
        if fast(sample) == plain(sample):
            return fast
    except Exception:  # another Python (no C encoder, another signature): the plain one
        pass
    return plain


_json = _compact_json()


def _dropin(environ: Any = None) -> bool:
    """Is optel the configurator ``opentelemetry-instrument`` was told to use?"""
    environ = os.environ if environ is None else environ
    return str(environ.get(env.OTEL_PYTHON_CONFIGURATOR, "")).strip() == "optel"


def resource_attributes_from_env(environ: Any = None) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k1=v1,k2=v2``, values URL-encoded) as a
    dict; a malformed entry is left out with one warning."""
    from urllib.parse import unquote

    environ = os.environ if environ is None else environ
    raw = str(environ.get(env.OTEL_RESOURCE_ATTRIBUTES, ""))
    out: dict[str, str] = {}
    bad = []
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            bad.append(part.strip())
            continue
        out[unquote(key.strip())] = unquote(value.strip())
    if bad:
        n = len(bad)
        _errors.warn_invalid(
            env.OTEL_RESOURCE_ATTRIBUTES,
            f"{n} {'entry is' if n == 1 else 'entries are'} not key=value, such as {bad[0][:40]!r}",
            f"the other {len(out)}" if out else "none of it",
        )
    return out


def base_resource(app: str, version: str | None, environ: Any = None) -> Resource:
    """The resource of optel's own providers.

    For a tool that calls ``init(app=...)`` it describes the tool and nothing
    else: ``service.name`` is the app and ``service.version`` its version,
    whatever ``OTEL_SERVICE_NAME`` says (it names the user's own services,
    not a tool whose consent, status and reports key on its app), and
    ``OTEL_RESOURCE_ATTRIBUTES`` is not read (the user's environment does not
    leak into a tool's telemetry; a gateway tags what it receives instead).

    For the drop-in (``OTEL_PYTHON_CONFIGURATOR=optel``) the environment
    configures the program: the app comes from ``OPTEL_APP`` or
    ``OTEL_SERVICE_NAME``, and the pairs of ``OTEL_RESOURCE_ATTRIBUTES`` join
    the resource with OpenTelemetry's precedence (over the SDK's defaults,
    under what the program, here optel, sets itself). Then they pass the
    anonymizer like any attribute: kept only when the key is declared
    (``OPTEL_ALLOWED_ATTRIBUTES``) or built in, and only as its kind.
    """
    from opentelemetry.sdk.version import __version__ as sdk_version

    attrs: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
    }
    if _dropin(environ):
        attrs.update(resource_attributes_from_env(environ))
    attrs.update(
        {
            "service.name": app,
            "os.type": sys.platform if sys.platform != "win32" else "windows",
            "process.runtime.name": platform.python_implementation().lower(),
            "process.runtime.version": platform.python_version(),
            "optel.version": __version__,
        }
    )
    if version:
        attrs["service.version"] = version
    # Resource(...), not Resource.create(...): create() merges the environment
    # (see above) and loads the resource-detector entry points (start-up cost)
    return Resource(attrs)


# -- the run a process belongs to -------------------------------------------------------------


def parent_run(app: str, environ: Any = None) -> tuple[int, str] | None:
    """(pid, session id) of a live ancestor run of ``app`` named in
    ``OPTEL_RUN``, or ``None``: this process is a run of its own."""
    environ = os.environ if environ is None else environ
    for entry in str(environ.get(env.OPTEL_RUN, "")).split(";"):
        pid, _, rest = entry.partition(":")
        session, _, name = rest.partition(":")
        if name.lower() != app.lower() or not pid.isdigit() or not session:
            continue
        if int(pid) != os.getpid() and _alive(int(pid)):
            return int(pid), session
    return None


def _announce_run(app: str, session: str) -> None:
    """Name this run in ``OPTEL_RUN`` for the processes it starts (they inherit it)."""
    entries = [
        e
        for e in os.environ.get(env.OPTEL_RUN, "").split(";")
        if e and e.rpartition(":")[2].lower() != app.lower()
    ]
    entries.append(f"{os.getpid()}:{session}:{app}")
    os.environ[env.OPTEL_RUN] = ";".join(entries[-8:])  # bounded: a few tools at most


def _alive(pid: int) -> bool:
    from .spool import _alive as alive

    return alive(pid)


# -- SDK parts ----------------------------------------------------------------------------------


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


class _OwnView(View):
    """optel's one view (undeclared attribute keys dropped before aggregation)."""


class _QuietOwnViews:
    """Filters the SDK's "Views ... will cause conflicting metrics identities"
    warning when both views are optel's: two instruments of one name in two
    meters (common in an instrumented program) are no conflict optel made, the
    SDK without views says nothing about them, and the host's output is not
    optel's to fill."""

    def filter(self, record: Any) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) == 2 and all(isinstance(a, _OwnView) for a in args))


_QUIET = _QuietOwnViews()


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
        self._closed = False
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._spool: Spool | None = None
        self._decision: consent.Decision | None = None
        self._next_consent = 0.0
        self._finished = False  # shutdown done: the last user closes the destinations
        self._fork_held: list[Any] = []
        self._mp_hooked = False
        self._mp_child = 0  # the process _in_mp_child ran in
        self._mp_finalizer: Any = None
        self._exiting = False  # spooling at the end (see _exit_phase)
        self._sigterm = False  # a SIGTERM came meanwhile: end by it afterwards
        self._new_locks()
        parent = parent_run(app)
        self._parent_pid = parent[0] if parent else None
        if parent is not None:
            self.session_id = parent[1]  # a worker belongs to its parent's run
        else:
            from .identity import session_id

            self.session_id = session_id()
            with _errors.guard("announce-run"):
                _announce_run(app, self.session_id)
        self.names = tuple(cfg.destinations())
        self._routes = self._routing()
        self.remote = any(n in ("ga4", "otlp") for n in self.names) and not cfg["debug"]
        self._new_destinations()
        self.resource = base_resource(app, version)
        self._resource_attrs = records.attributes(self.resource.attributes)
        self._common = {
            "app": app,
            "version": version,
            "policy": policy,
            "session_id": self.session_id,
        }
        self.tracer_provider = self._attach_tracing()
        self.reader = _PullReader(self)
        self.meter_provider = self._attach_metrics()
        with _errors.guard("preload"):
            # Opened now, on the host's thread (4-8 ms), unless another process
            # holds the spool's lock (then the worker opens it): a host busy from
            # its first line kept the worker opening it for about 0.5 s (each
            # SQLite step waits for the interpreter), and a 10,000-event burst
            # ended before any of it was written.
            self.spool().open(wait_s=0)
        self._start_threads()
        atexit.register(self._shutdown_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_parent,
                after_in_child=self._after_fork,
            )
        self._hook_multiprocessing()

    def _new_locks(self) -> None:
        self._spool_made = threading.Lock()  # spool() makes one Spool
        self._wake = threading.Event()
        self._send_wake = threading.Event()
        self._stop = threading.Event()
        self._warm = threading.Event()  # the destinations are loaded
        # chunks taken from the queue and not yet in the spool (drains run side by
        # side: the exit never waits for the worker's whole chunk to start its own)
        self._inflight = 0
        self._settled = threading.Condition()
        self._ready: deque[NewRecord] = deque()  # scrubbed by the recording thread, to write
        self._helping = False
        self._help_at = HELP_AT[0]  # until the worker has measured its pace
        # the records spooled, by the JSON written: the last KNOWN_MAX themselves
        # (sent without parsing them back), every text's hash (sent without
        # checking them again)
        self._spooled = delivery.Spooled()
        self._per_record_s = 100e-6  # the last chunk's cost a record: sizes the next
        self._users_lock = threading.Lock()
        self._users = 0  # threads using the destinations now
        self._fresh = 0  # records spooled since the sender last ran
        # held while a thread of ours imports (one each: the worker's spool and
        # the sender's destinations load side by side, as the worker must not wait
        # for the sender's imports before it can write): a fork then would leave
        # the child's import locks held by a thread that does not exist there
        self._importing = threading.Lock()
        self._importing_sender = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._checkpointer: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        """Shut down: nothing more is recorded by this pipeline."""
        return self._closed

    @property
    def joined_run(self) -> bool:
        """This process works for a parent's run (a fork, a multiprocessing
        worker, a child of the same tool): the parent records the run's start
        and end, and sends what the child spooled."""
        return self._parent_pid is not None

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
        provider = TracerProvider(
            resource=self.resource,
            shutdown_on_exit=False,
            # an invalid OTEL_* value the SDK reads: optel's warning and the default
            sampler=sdkenv.sampler(),
            span_limits=sdkenv.span_limits(),
        )
        provider.add_span_processor(_SpanQueue(self))
        if isinstance(current, trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(provider)
        return provider

    def _attach_metrics(self) -> MeterProvider:
        import logging

        logging.getLogger("opentelemetry.sdk.metrics._internal.metric_reader_storage").addFilter(
            _QUIET
        )
        # Undeclared metric attributes are dropped before aggregation, so they
        # can neither leak nor blow up the number of series kept in memory.
        keep = set(self.anonymizer.kinds)  # declared, optel's own and built-in keys
        if "otlp" in self._routes["metric"]:  # metrics go to OTLP
            sdkenv.metrics_shape()  # asked of the OTLP exporter, not applied: say so
        provider = MeterProvider(
            resource=self.resource,
            metric_readers=[self.reader],
            views=[_OwnView(instrument_name="*", attribute_keys=keep)],
            shutdown_on_exit=False,
            exemplar_filter=sdkenv.exemplar_filter(),
        )
        current = metrics_api.get_meter_provider()
        if not isinstance(current, MeterProvider):
            # a host that set its own SDK MeterProvider keeps it: SDK readers
            # cannot be added later, so optel's meter stays private then
            metrics_api.set_meter_provider(provider)
        return provider

    # -- the host's hot path --------------------------------------------------------

    def offer(self, item: Any) -> None:
        if not self.enabled or self._closed:
            return
        q = self._queue
        n = len(q)
        if n >= QUEUE_MAX:
            self.dropped += 1
            return
        q.append(item)
        if n + 1 == WAKE_AT:
            self._wake.set()
        elif n >= self._help_at and not self._helping:
            self._help()

    def _help(self) -> None:
        """The queue runs ahead of the worker (a burst faster than it can scrub):
        the recording thread scrubs and encodes a slice itself, and leaves it
        for the worker to write (it never touches the disk or waits on a lock).
        So the queue stays short whatever the burst, and what the exit has to
        spool fits in its budget."""
        self._helping = True
        try:
            chunk = self._take(self._queue, SLICE)
            try:
                ready, _ = self._encode(chunk)
                self._ready.extend(ready)
            finally:
                self._settle(chunk)
            self._wake.set()
        except Exception:
            with _errors.guard("help"):
                raise
        finally:
            self._helping = False

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
        """Stop the background threads: from now on records move only on
        :meth:`flush` and :meth:`shutdown`. True when they ended within ``timeout_s``."""
        self._stop.set()
        self._wake.set()
        self._send_wake.set()
        until = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, until - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # -- queue -> spool ----------------------------------------------------------

    def spool(self) -> Spool:
        spool = self._spool
        if spool is None:
            # One Spool, whoever asks first: the worker's preload and a short run's
            # exit ask at the same moment, and two would open two connections that
            # lock each other out while one creates the tables (records were lost).
            with self._spool_made:
                if self._spool is None:
                    from .spool import Spool, limits_from

                    # a preview writes nothing: its counters live in memory and die with it
                    where = ":memory:" if self.preview else self.cfg.paths.spool
                    self._spool = Spool(where, limits_from(self.cfg.values))
                spool = self._spool
        return spool

    def _routing(self) -> dict[str, tuple[str, ...]]:
        """The destinations each record signal is kept for: every destination in
        effect, except OTLP for a signal it has no endpoint for."""
        from .config import OTLP_SIGNAL

        routes = {}
        for signal, otlp_signal in OTLP_SIGNAL.items():
            routes[signal] = tuple(
                n
                for n in self.names
                if n != "otlp" or self.cfg.otlp_endpoint(otlp_signal) is not None
            )
        return routes

    def _new_destinations(self) -> None:
        """This pipeline's destination objects and the step that scrubs for them."""
        self.destinations = exporters.Destinations(self.cfg)
        self._stage = Stage(
            self.anonymizer,
            self.destinations,
            self.names,
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

    def _to_record(self, item: Any) -> dict[str, Any]:
        rec: dict[str, Any] = item if isinstance(item, dict) else records.from_span(item)
        rec.update(self._common)
        return rec

    def drain(self, deadline: float | None = None, wait_s: float = 5.0) -> int:
        """Move what is queued into the spool (gated, scrubbed, as JSON), a chunk
        per transaction, then wait (up to ``wait_s``, and never past
        ``deadline``) for chunks other threads took to be written, and take
        over what the worker, told to stop, gave back. Stops early at
        ``deadline`` (``time.monotonic()``), or when the pipeline is told to
        stop and this is its worker. Returns how many queued items it took."""
        worker = threading.current_thread() in self._threads
        until = time.monotonic() + wait_s
        if deadline is not None:
            until = min(until, deadline)
        taken = 0
        while True:
            taken += self._write_ready(deadline, worker)
            taken += self._drain_queue(deadline, worker)
            if worker:
                break
            with self._settled:
                settled = self._settled.wait_for(
                    lambda: self._inflight == 0, max(0.0, until - time.monotonic())
                )
            taken += self._write_ready(deadline, worker)
            if not settled or not self._queue or time.monotonic() >= until:
                break  # (a worker stopped for the exit puts back what it had not scrubbed)
        if self.dropped:
            n, self.dropped = self.dropped, 0
            self.spool().count_drop("dropped_queue_full", n)
        for app, n in self.anonymizer.take_mismatches().items():
            self.spool().count_drop(KIND_MISMATCH + app, n)  # 'optel status' shows it
        return taken

    def _drain_queue(self, deadline: float | None, worker: bool) -> int:
        """Chunks from the queue into the spool until it is empty (or the
        deadline, or the worker is told to stop); how many items were taken."""
        taken = 0
        queue = self._queue
        while queue:
            size = CHUNK
            if deadline is not None:  # half the time left, at the last pace: then look again
                left = deadline - time.monotonic()
                size = max(64, min(CHUNK, int(left / 2 / self._per_record_s)))
            elif worker:  # short chunks: the exit waits for the worker's last one
                size = max(256, min(CHUNK, int(CHUNK_S / self._per_record_s)))
            chunk = self._take(queue, size)
            if not chunk:
                break
            started = time.monotonic()
            done = 0
            stop: Callable[[], bool] | None = None
            if worker:
                stop = self._stop.is_set
            elif deadline is not None:
                stop = partial(_past, deadline)  # a slice past the deadline at most
            try:
                new, done = self._encode(chunk, stop)
                self._add(new)
            finally:
                # stopped for the exit: the rest is its to spool
                self._settle(chunk, chunk[done:] if 0 < done < len(chunk) else ())
            self._per_record_s = max(1e-6, (time.monotonic() - started) / max(done, 1))
            room = _exit_room(self.cfg["exit_budget_ms"])
            low, high = HELP_AT
            self._help_at = max(low, min(high, int(room / 2 / self._per_record_s)))
            taken += done
            self._count_fresh(done)
            taken += self._write_ready(deadline, worker)  # what the recording thread scrubbed
            if deadline is not None and time.monotonic() >= deadline:
                break
            if worker and self._stop.is_set():
                break  # the exit takes over from here
        return taken

    def _take(self, source: deque[Any], n: int) -> list[Any]:
        """Up to ``n`` items from ``source``, counted in flight in the same step:
        the exit, counting what is left, never sees them in neither place."""
        taken: list[Any] = []
        with self._settled:
            try:
                for _ in range(n):
                    taken.append(source.popleft())
            except IndexError:
                pass
            self._inflight += len(taken)
        return taken

    def _settle(self, taken: list[Any], put_back: Sequence[Any] = ()) -> None:
        """``taken`` (by :meth:`_take`) is no longer in flight; ``put_back``, the
        part of it not spooled, goes back to the front of the queue in the same
        step (the exit, counting what is left, never sees it in neither place)."""
        with self._settled:
            if put_back:
                self._queue.extendleft(reversed(put_back))
            self._inflight -= len(taken)
            self._settled.notify_all()

    def _add(self, new: list[NewRecord]) -> None:
        """Write ``new`` to the spool, and remember its texts as this process's."""
        if new:
            self.spool().add(new)
            self._spooled.remember(map(_BODY, new))
            if not self._closed:
                self._checkpoint_soon()  # (the exit's own writes: its checkpoint, or the close)

    def _checkpoint_soon(self) -> None:
        """Once :data:`CHECKPOINT_AT` rows changed, copy SQLite's log into the
        database on a thread of its own (one at a time): the thread writing
        the spool goes on meanwhile, where SQLite would have made it wait."""
        spool = self._spool
        if spool is None or spool.changed < CHECKPOINT_AT:
            return
        running = self._checkpointer
        if running is not None and running.is_alive():
            return
        self._checkpointer = threading.Thread(
            target=self._checkpoint, args=(spool,), name="optel-checkpoint", daemon=True
        )
        self._checkpointer.start()

    @staticmethod
    def _checkpoint(spool: Spool) -> None:
        with _errors.guard("checkpoint"):
            spool.checkpoint()

    def _count_fresh(self, n: int) -> None:
        """``n`` more records spooled: the sender goes once :data:`SEND_AT` wait
        (whichever thread scrubbed them: in a burst the recording thread does)."""
        self._fresh += n
        if self._fresh >= SEND_AT:
            self._send_wake.set()

    def _write_ready(self, deadline: float | None = None, worker: bool = False) -> int:
        """Write what the recording thread scrubbed (see :meth:`_help`), a
        transaction per :data:`READY_CHUNK` records, until none is left (or
        ``deadline``, or the worker is told to stop): the exit, which waits for
        the chunk the worker is writing, never waits for a long one (a run too
        short for the worker to start left 9,216 records to write in one).
        ``worker``: the caller is the worker thread."""
        ready = self._ready
        written = 0
        while ready:
            batch = self._take(ready, READY_CHUNK)
            try:
                self._add(batch)
            finally:
                self._settle(batch)
            self._count_fresh(len(batch))
            written += len(batch)
            if (deadline is not None and time.monotonic() >= deadline) or (
                worker and self._stop.is_set()
            ):
                break
        return written

    def _encode(
        self, chunk: list[Any], stop: Callable[[], bool] | None = None
    ) -> tuple[list[NewRecord], int]:
        """``chunk`` gated, scrubbed and encoded for the spool, and how many of
        its items were taken. ``stop()`` is asked between slices: when it says
        so, it stops, and the caller puts the items not taken back at the front
        of the queue (the exit, which asks the worker to stop, spools them)."""
        from .spool import NewRecord

        routes = self._routes
        known = self._spooled.records
        new = []
        # the resource most records share (one dict after scrubbing), encoded once
        shared: dict[int, tuple[Any, str]] = {}
        done = 0
        while done < len(chunk):
            if stop is not None and done and stop():
                break  # the caller puts the rest back
            part = chunk[done : done + SLICE]
            done += len(part)
            for rec in self._stage(part, self._to_record):
                try:
                    signal = rec["signal"]
                    resource = rec.pop("resource", None)  # the scrubbed copy is ours to change
                    if resource is None or not rec:
                        body = _json(rec if resource is None else {**rec, "resource": resource})
                    else:
                        hit = shared.get(id(resource))
                        if hit is None or hit[0] is not resource:
                            hit = shared[id(resource)] = (resource, _json(resource))
                            self._spooled.share("resource", resource, hit[1])
                        body = f'{_json(rec)[:-1]},"resource":{hit[1]}}}'
                        rec["resource"] = resource
                    known[body] = rec  # the sender renders it without parsing it again
                    if len(known) > KNOWN_MAX:
                        known.popitem(last=False)
                    new.append(
                        NewRecord(
                            rec["app"],
                            rec["policy"],
                            signal,
                            routes.get(signal, self.names),
                            body,
                            rec["time"],
                        )
                    )
                except Exception:
                    with _errors.guard("spool-record"):
                        raise
        return new, done

    def collect_metrics(self) -> None:
        with _errors.guard("metrics"):
            self.reader.collect(timeout_millis=1000)

    # -- the threads ------------------------------------------------------------------

    def _start_threads(self) -> None:
        targets = [("optel-worker", self._run)]
        if self.remote:
            targets.append(("optel-sender", self._send_loop))
        self._threads = [threading.Thread(target=f, name=n, daemon=True) for n, f in targets]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        """The worker: queue -> spool, metrics, consent."""
        with _errors.guard("preload"), self._importing:
            # the spool opened (and its module loaded) now, rather than by the
            # first chunk of a burst or at exit
            self.spool().open()

        interval = self.cfg["flush_interval_ms"] / 1000
        next_metrics = time.monotonic() + interval
        while not self._stop.is_set():
            self._wake.wait(DRAIN_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            with _errors.guard("worker"):
                now = time.monotonic()
                if now >= self._next_consent:
                    self.recheck_consent()
                if now >= next_metrics:
                    self.collect_metrics()
                    next_metrics = now + interval
                    self._send_wake.set()  # the interval: the sender goes too
                self.drain()
                self._checkpoint_soon()  # what sends removed: not left to the exit

    def _send_loop(self) -> None:
        """The sender: loads the destinations, then sends what waits."""
        # Loaded now, in the background, so an exit budget is spent sending
        # rather than importing.
        with _errors.guard("preload"), self._importing_sender, self._using_destinations():
            self.destinations.warm(self.names)
        self._warm.set()
        interval = self.cfg["flush_interval_ms"] / 1000
        while not self._stop.is_set():
            self._send_wake.wait(interval)
            self._send_wake.clear()
            if self._stop.is_set():
                break
            with _errors.guard("sender"):
                if not self.enabled:
                    continue
                fresh, self._fresh = self._fresh, 0
                # this run's records all go; an older backlog drains gently
                self._deliver(
                    time.monotonic() + interval,
                    max_rows=delivery.BACKGROUND_MAX_ROWS + fresh,
                    stop=self._stop.is_set,  # at exit the exit send takes over
                )

    def recheck_consent(self) -> None:
        """Read consent again now; a refusal drops what is queued in memory."""
        if self.preview:
            return  # a preview records whatever the decision, and sends nothing
        d = self._decision = consent.decide(self.app, self.policy, p=self.cfg.paths)
        self._next_consent = time.monotonic() + CONSENT_S
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
            if self.enabled and self.remote:
                self._deliver(deadline)
            return True
        return False  # the guard swallowed a failure

    @contextmanager
    def _exit_phase(self) -> Iterator[None]:
        """Marks the exit's spooling, so a SIGTERM arriving meanwhile (a
        terminated multiprocessing worker) waits for it to finish."""
        self._exiting = True
        try:
            yield
        finally:
            self._exiting = False
            if self._sigterm:
                _die_by_sigterm()

    def shutdown(self) -> None:
        """Spool what is queued, send within the exit budget, stop the threads."""
        if self._closed:
            return
        with self._exit_phase():
            self._shutdown()

    def _shutdown_at_exit(self) -> None:
        """:meth:`shutdown` as the interpreter's exit hook. A Ctrl-C meanwhile (a
        person tired of the exit waiting on a slow destination) ends the wait
        quietly, without a traceback from inside optel: what was not sent stays
        spooled for the next run. (Elsewhere a Ctrl-C is the host's, as ever.)"""
        try:
            self.shutdown()
        except KeyboardInterrupt:
            try:
                self._closed = True
                if self._spool is not None:  # free its rows for the next sender now
                    self._spool.release_owner(self._owner, wait=False)
            except BaseException:  # pressed again, or anything else: just go
                pass

    def _shutdown(self) -> None:
        start = time.monotonic()
        end = start + _exit_room(self.cfg["exit_budget_ms"])
        sender: threading.Thread | None = None
        with _errors.guard("shutdown"):
            self.collect_metrics()
            self._closed = True
            self._stop.set()
            self._wake.set()
            self._send_wake.set()
            self._spool_at_exit(end)
            if not (self.remote and self.enabled and self._sends_at_exit()):
                self._checkpoint_at_exit()  # nothing to send: the budget has room for it
            if self.remote and self.enabled and self._sends_at_exit():
                if end - time.monotonic() > delivery.MIN_REQUEST_S:
                    self.recheck_consent()
                if self.enabled and end - time.monotonic() > delivery.MIN_REQUEST_S:
                    # Sockets can outlive any timeout (a trickling server, a slow
                    # DNS answer): send from a daemon thread and wait for it only
                    # as long as the budget allows. What is not acknowledged by
                    # then stays in the spool for a later run or `optel flush`.
                    sender = threading.Thread(
                        target=self._send_until, args=(end,), name="optel-exit", daemon=True
                    )
                    sender.start()
                    self._checkpoint_at_exit()  # meanwhile: the send mostly waits on the network
                    sender.join(max(0.0, end - time.monotonic()))
                    if sender.is_alive():
                        # cut off mid-send: free its rows for the next sender now (at
                        # worst the server got them and a later run sends a duplicate)
                        self.spool().release_owner(self._owner, wait=False)
        with _errors.guard("shutdown-close"):
            with self._users_lock:
                self._finished = True  # from now on, the last user closes the destinations
            self._close_destinations_when_idle()
            busy = [t for t in (sender, *self._threads) if t is not None and t.is_alive()]
            if self._spool is not None and not busy:
                # (a thread still at work keeps it: the process ends anyway)
                self._close_spool_by(end)
            # Let go of the records kept for sending now: left to the interpreter's
            # teardown, 2,048 of them made it 30-50 ms longer (after a 10,000-span
            # burst: 145-179 ms against 101-126 ms, 6 runs each), past the budget.
            self._spooled.clear()

    def _close_spool_by(self, end: float) -> None:
        """Close the spool, waiting for it until ``end`` at most. The last
        connection to close copies SQLite's log into the database: after an
        exit that sent, that is what the sends acknowledged since the
        checkpoint (16-37 ms measured after a 10,000-record burst). Past
        ``end`` the process ends meanwhile; an interrupted copy is safe
        (https://www.sqlite.org/wal.html#checkpointing: the log stays valid,
        and the next connection to open the spool finishes it)."""
        spool = self._spool
        if spool is None:
            return
        closing = threading.Thread(target=spool.close, name="optel-close", daemon=True)
        closing.start()
        closing.join(max(0.0, end - time.monotonic()))

    def _spool_at_exit(self, end: float) -> None:
        """Everything queued to the spool, within the budget; what does not fit is
        dropped and counted (``dropped_exit_budget``) rather than delay the exit.
        The worker, told to stop, writes the chunk it holds meanwhile."""
        with _errors.guard("exit-waits"):  # another process's write lock: not past the budget
            self.spool().limit_waits(end - time.monotonic())
        self.drain(deadline=end, wait_s=max(0.0, end - time.monotonic()))
        with self._settled:
            # a chunk the worker still holds at the deadline dies with the process
            left = len(self._queue) + len(self._ready) + self._inflight
        if left:
            self._queue.clear()
            self._ready.clear()
            self.spool().count_drop("dropped_exit_budget", left)

    def _checkpoint_at_exit(self) -> None:
        """Copy SQLite's log into the database now, within the budget: the last
        connection to close does it otherwise, after the budget (a burst's log
        took 50-100 ms there)."""
        spool = self._spool
        if spool is not None and spool.changed:
            with _errors.guard("exit-checkpoint"):
                spool.checkpoint()

    def _sends_at_exit(self) -> bool:
        """A worker leaves the sending to its parent run while that is alive."""
        return self._parent_pid is None or not _alive(self._parent_pid)

    # -- the destinations' lifetime ---------------------------------------------------

    def _deliver(self, deadline: float, **kw: Any) -> delivery.Report:
        with self._using_destinations():
            return delivery.deliver(
                self.spool(),
                self.destinations,
                self.cfg,
                deadline,
                self._owner,
                known=self._spooled,
                **kw,
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
        self.destinations.close()  # idempotent; closes HTTP connections and gRPC channels

    def _send_until(self, deadline: float) -> None:
        with _errors.guard("exit-send"):
            # the destinations are loaded by the sender thread: wait for it (within
            # the budget) rather than import anything here
            if not self._warm.wait(max(0.0, deadline - time.monotonic())):
                return
            lease = max(5.0, deadline - time.monotonic() + 5.0)  # short: a cut send frees soon
            self._deliver(deadline, lease_s=lease)

    # -- fork and multiprocessing ----------------------------------------------------------

    def _before_fork(self) -> None:
        # No thread of ours may hold an import lock or be inside SQLite when the
        # process forks: the child would inherit them held by a
        # thread that does not exist there. Each wait is bounded, so a host's
        # fork is never held up long (a chunk is a few ms; the imports ~0.1 s once).
        self._hook_multiprocessing()
        spool = self._spool
        for lock, timeout in (
            (self._importing, 2.0),
            (self._importing_sender, 2.0),
            (spool.lock if spool is not None else None, 1.0),
            (spool.checkpoint_lock if spool is not None else None, 1.0),
        ):
            if lock is not None and lock.acquire(timeout=timeout):
                self._fork_held.append(lock)

    def _after_fork_parent(self) -> None:
        held, self._fork_held = self._fork_held, []
        for lock in reversed(held):
            lock.release()

    def _after_fork(self) -> None:
        # The threads do not exist in a forked child; start fresh ones. The
        # child works for the parent's run: same session, its own lease owner.
        self._fork_held = []
        if self._parent_pid is None:
            self._parent_pid = os.getppid()
        self._new_locks()
        self._queue = deque()  # what the parent queued is the parent's to spool
        self.dropped = 0
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if self._spool is not None:
            _INHERITED.append(self._spool)  # (never closed, never freed: see _INHERITED)
        self._spool = None  # a connection of its own
        self._finished = False
        # fresh connections: never share the parent's sockets (nor close them)
        self._new_destinations()
        if not self._closed:
            self._start_threads()

    def _hook_multiprocessing(self) -> None:
        """When ``multiprocessing`` is in use, have its children (fork, spawn,
        forkserver) spool what they hold when they end or are terminated."""
        mp = sys.modules.get("multiprocessing")
        if mp is None or self._mp_hooked:
            return
        with _errors.guard("multiprocessing"):
            from multiprocessing import util

            self._mp_hooked = True
            # children forked from this process (fork, and forkserver when the
            # server imported the tool) get it from here: multiprocessing runs
            # the after-fork registry in each such child once it is set up
            util.register_after_fork(self, Pipeline._in_mp_child)
            me = mp.current_process()
            if mp.parent_process() is not None or getattr(me, "_inheriting", False):
                # created inside a multiprocessing child: running already, or being
                # prepared (spawn and forkserver import the main module, and
                # unpickle the target, before the child runs)
                self._in_mp_child()

    def _in_mp_child(self) -> None:
        with _errors.guard("multiprocessing-child"):
            from multiprocessing import util

            if self._parent_pid is None:
                self._parent_pid = os.getppid()  # a worker belongs to its parent's run
            # After fork a child leaves through os._exit: its atexit hooks do not
            # run, multiprocessing's finalizers do. A child set up by fork or
            # forkserver clears the finalizers it inherited (and any made while it
            # was being prepared), then calls this again: register once more then.
            done = self._mp_finalizer
            if done is None or self._mp_child != os.getpid() or not done.still_active():
                self._mp_finalizer = util.Finalize(None, self.shutdown, exitpriority=100)
            self._mp_child = os.getpid()
            _on_terminate(self)


_BODY = attrgetter("body")  # of a NewRecord


_INHERITED: list[Any] = []
"""Spools a forked child inherited from its parent: their SQLite connections may
not be used or closed in the child (https://www.sqlite.org/howtocorrupt.html,
section 2.6), and a connection freed unclosed warns (ResourceWarning, Python
3.13), so the child keeps them."""


def _past(deadline: float) -> bool:
    return time.monotonic() >= deadline


def _on_terminate(pipeline: Pipeline) -> None:
    """In a multiprocessing child: spool what is queued when it gets SIGTERM
    (``Pool.terminate()``, the end of ``with Pool()``, ``Process.terminate()``),
    then end by SIGTERM as before. Only where SIGTERM still has its default
    action and only from the main thread (a program's own handler stays)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: Any) -> None:
        if pipeline._exiting:
            # the child is already spooling (its normal end, or a first SIGTERM):
            # it ends by SIGTERM once that is done, not in the middle of it
            pipeline._sigterm = True
            return
        pipeline._sigterm = True
        with pipeline._exit_phase():
            if not pipeline.closed:
                with _errors.guard("sigterm"):
                    pipeline._closed = True
                    end = time.monotonic() + pipeline.cfg["exit_budget_ms"] / 1000
                    pipeline._spool_at_exit(end)
                    if pipeline._spool is not None:
                        pipeline._spool.close()  # writes what a busy database refused

    signal.signal(signal.SIGTERM, handler)


def _die_by_sigterm() -> None:
    """End this process by SIGTERM, as it would have without optel's handler."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
