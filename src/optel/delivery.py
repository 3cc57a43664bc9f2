"""Sending what waits in the spool, within a deadline.

:func:`deliver` is used by the worker thread, by ``flush()``, at exit (with
the exit budget as deadline) and by ``optel flush``; each caller owns its
destination objects (:class:`optel.exporters.Destinations`) and passes them
in, so one connection serves all of that caller's sends. Just before each
batch goes out it checks each row's consent again (the row's own app and
policy): a row whose consent was withdrawn is deleted, a row held back by a
kill switch stays for later. A row leaves the spool only when its
destination accepted it.

Destinations never see rows: a batch goes out as payloads keyed by row id
(through :func:`optel.exporters.send`, which suppresses instrumentation), and
the outcome's keys are mapped back to rows here. :func:`payload` is the one
place a claimed row becomes what a destination gets: the anonymized record,
re-checked (:mod:`optel.recheck`: a row read back from disk that is not
exactly a record optel writes is dropped and counted, never sent), which the
destination renders as it sends. :func:`shown` is the text ``optel show``
prints for a row: the same re-check, rendered by the same code.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Union

from . import consent, exporters, recheck
from .exporters import Destination, Payload

if TYPE_CHECKING:
    from .config import Config
    from .spool import Row, Spool

BATCH = 512  # records per request, as the SDK's batch processor sends them
LEASE_S = 60.0
MAX_REQUEST_S = 10.0
MAX_BACKOFF_S = 3600.0
MIN_REQUEST_S = 0.05  # less left: keep the rows for later (a request cut off mid-way may
# have reached the server, and then a later send is a duplicate)
BACKGROUND_MAX_ROWS = 500  # per worker cycle (default 5 s): about 100 rows a second


@dataclass
class Report:
    sent: int = 0
    retried: int = 0
    dropped: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int, retry_after_s: float | None = None) -> float:
    """Seconds to wait before the next attempt: exponential, full jitter."""
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), MAX_BACKOFF_S)
    ceiling = min(MAX_BACKOFF_S, 2.0 ** min(attempts, 20))
    return random.uniform(ceiling / 2, ceiling)


Decider = Callable[[str, str], "consent.Decision"]


Unreadable = recheck.Unreadable
"""A spooled row that is not sent: not a record (``reason``: ``unreadable_record``),
or :class:`optel.recheck.Unverified` (``unverified``)."""


class Spooled:
    """The records this process spooled, by the JSON text it wrote: what
    :func:`payload` takes as ``known``.

    ``records`` holds the newest of them as the records themselves (sent
    without parsing; the pipeline fills and bounds it as it encodes). Beyond
    them it remembers the hash of every text spooled (up to ``remember``,
    through :meth:`remember`), so such a row is parsed back but not
    re-checked: the same text is the same record, fresh from this process's
    anonymizer (``hash`` of a str is keyed per process: no text made
    elsewhere collides on purpose). A burst larger than ``records`` was
    re-checked record by record before, which cost more than rendering and
    sending it."""

    def __init__(self, remember: int = 1 << 15):
        self.records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._hashes: set[int] = set()
        self._remember = remember
        self._tails: dict[str, tuple[str, dict[str, Any]]] = {}

    def share(self, key: str, value: dict[str, Any], text: str) -> None:
        """Texts this process spools may end in ``key`` with ``value`` (a dict
        records share, its JSON ``text``) as their last field: such a text is
        parsed without it, and the record gets ``value`` itself. (A process's
        records share one resource: a third of a span's text, parsed once
        rather than for each record; bounded.)"""
        if len(self._tails) >= 16:
            self._tails.clear()
        self._tails[f",{json.dumps(key)}:{text}}}"] = (key, value)

    def remember(self, texts: Iterable[str]) -> None:
        """Note ``texts`` as spooled by this process (bounded: when full, it
        starts again, and older rows are re-checked)."""
        hashes = self._hashes
        if len(hashes) >= self._remember:
            hashes.clear()
        hashes.update(map(hash, texts))

    def clear(self) -> None:
        self.records.clear()
        self._hashes.clear()
        self._tails.clear()

    def get(self, text: str) -> dict[str, Any] | None:
        record = self.records.get(text)
        if record is None and hash(text) in self._hashes:
            record = self._parse(text)
        return record

    def _parse(self, text: str) -> dict[str, Any] | None:
        shared: tuple[str, dict[str, Any]] | None = None
        for tail, value in self._tails.items():
            if text.endswith(tail):
                text, shared = text[: len(text) - len(tail)] + "}", value
                break
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, dict):
            return None
        if shared is not None:  # the last field (the same key earlier in the text: this one wins)
            parsed[shared[0]] = shared[1]
        return parsed


Known = Union[Mapping[str, dict[str, Any]], Spooled, None]
"""Records this process spooled, by the JSON text it wrote (see :func:`payload`)."""


def payload(row: Row, known: Known = None) -> Payload:
    """What a destination gets for ``row``: the one place a claimed record
    becomes something to send. ``known``: records this process spooled, by
    the JSON text it wrote (the same text is the same record, fresh from this
    process's anonymizer: it is neither parsed nor checked again). Any other
    row is parsed and re-checked (:func:`optel.recheck.verify`). Raises
    :class:`Unreadable` for a row that must not be sent (it is then dropped
    and counted under the exception's ``reason``)."""
    return Payload(row.id, row.signal, None, row.created, record=_record(row, known))


def _record(row: Row, known: Known = None) -> dict[str, Any]:
    if row.rendered:
        # spooled already rendered by an older optel: a wire payload, not a
        # record, so it cannot be re-checked against the record's shape
        raise recheck.Unverified("rendered by an older optel")
    record = known.get(row.payload) if known is not None else None
    if record is None:
        return recheck.checked(row.payload, row.app, row.policy, row.signal)
    if (record.get("app", row.app), record.get("policy", row.policy), record.get("signal")) != (
        row.app,
        row.policy,
        row.signal,
    ):  # the row's columns (consent is checked on them) changed under the record
        raise recheck.Unverified("not a record of its row's app, policy or signal")
    return record


def shown(row: Row, dest: Destination | None) -> str | None:
    """The payload ``optel show`` prints for ``row``: what ``dest`` would send
    (``None``: the destination is not available, does not take the record,
    or the row fails the re-check and will not be sent: see :func:`preview`)."""
    return preview(row, dest)[0]


def preview(row: Row, dest: Destination | None) -> tuple[str | None, str | None]:
    """(what ``dest`` would send for ``row``, why it will not be sent): the
    re-check's answer first, so what is shown is what would leave."""
    try:
        record = _record(row)
    except Unreadable as exc:
        return None, f"{exc.reason}: {exc}"
    return (dest.render(record) if dest is not None else None), None


def shown_text(text: str, rendered: bool, dest: Destination | None) -> str | None:
    """``text`` as ``dest`` sends it: a record rendered, a rendered payload as it
    is (for what was sent already: the audit log; what waits goes through
    :func:`shown`, re-checked)."""
    if rendered:
        return text
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or dest is None:
        return None
    return dest.render(record)


def deliver(
    spool: Spool,
    destinations: exporters.Destinations,
    cfg: Config,
    deadline: float,
    owner: str,
    decide: Decider | None = None,
    lease_s: float = LEASE_S,
    force: bool = False,
    max_rows: int | None = None,
    stop: Callable[[], bool] | None = None,
    known: Known = None,
) -> Report:
    """Send due rows of every remote destination until done or ``deadline``
    (a ``time.monotonic()`` value), through the caller's ``destinations``;
    ``force`` also sends rows still backing off; ``max_rows`` bounds the rows
    tried per destination (the background rate); ``stop()`` ends it before
    the next batch (the exit takes over from a background sender); ``known``:
    see :func:`payload`."""
    report = Report()
    decide = decide or (lambda app, policy: consent.decide(app, policy, p=cfg.paths))
    held: list[Row] = []  # kept leased until the end, so the next claim looks past them
    try:
        for name in spool.destinations_due():
            dest = destinations.get(name)
            if dest is None or not dest.remote:
                continue
            _deliver_to(
                name, dest, spool, cfg, deadline, owner, decide, lease_s, force, max_rows,
                report, held, stop, known,
            )  # fmt: skip
    finally:
        spool.release(held)
    return report


def _deliver_to(
    name: str,
    dest: Destination,
    spool: Spool,
    cfg: Config,
    deadline: float,
    owner: str,
    decide: Decider,
    lease_s: float,
    force: bool,
    max_rows: int | None,
    report: Report,
    held: list[Row],
    stop: Callable[[], bool] | None = None,
    known: Known = None,
) -> None:
    budget = max_rows if max_rows is not None else -1
    while time.monotonic() < deadline and budget != 0 and not (stop and stop()):
        limit = BATCH if budget < 0 else min(BATCH, budget)
        rows = spool.claim(name, owner, limit, lease_s, due_only=not force)
        if not rows:
            break
        rows = _consented(spool, rows, decide, report, held)
        if not rows:
            continue  # all withdrawn or held: look at the next ones
        items: list[Payload] = []
        refused: dict[str, list[Row]] = {}  # reason -> rows: never sent, dropped and counted
        for row in rows:
            try:
                items.append(payload(row, known))
            except Unreadable as exc:
                refused.setdefault(exc.reason, []).append(row)
        if refused:
            for reason, bad in refused.items():
                spool.drop(bad, reason)
                report.dropped += len(bad)
            gone = {id(r) for bad in refused.values() for r in bad}
            rows = [r for r in rows if id(r) not in gone]
            if not rows:
                continue
        if cfg["debug"]:
            for row in rows:
                sys.stderr.write(f"optel debug [{name}] {shown(row, dest)}\n")
            spool.release(rows)
            report.held += len(rows)
            break
        timeout = min(MAX_REQUEST_S, deadline - time.monotonic())
        if timeout < MIN_REQUEST_S:
            spool.release(rows)
            break
        if budget > 0:
            budget = max(0, budget - len(rows))
        try:
            outcome = exporters.send(dest, items, timeout)  # instrumentation suppressed
        except Exception:
            spool.release(rows)  # a destination's bug must not strand leased rows
            raise
        by_id = {row.id: row for row in rows}
        accepted = [by_id.pop(k) for k in outcome.accepted if k in by_id]
        rejected = [by_id.pop(k) for k in outcome.rejected if k in by_id]
        retry = [by_id.pop(k) for k in outcome.retry if k in by_id]
        spool.release(list(by_id.values()))  # rows the outcome did not name: free them
        spool.ack(accepted)
        spool.drop(rejected, outcome.reason or "rejected")
        report.sent += len(accepted)
        report.dropped += len(rejected)
        if retry:
            worst = max(r.attempts for r in retry)
            spool.retry_later(
                retry, backoff(worst, outcome.retry_after_s), outcome.reason or "retry"
            )
            report.retried += len(retry)
            report.errors.append(f"{name}: {outcome.reason}")
            break  # the destination is unhealthy: do not hammer it
        if by_id:  # a destination's bug: do not claim the same rows again in a loop
            report.errors.append(f"{name}: no outcome for {len(by_id)} record(s)")
            break


def _consented(
    spool: Spool, rows: list[Row], decide: Decider, report: Report, held: list[Row]
) -> list[Row]:
    """Rows whose consent holds now; withdrawn ones deleted, held ones added to ``held``."""
    seen: dict[tuple[str, str], consent.Decision] = {}
    ok, withdrawn = [], []
    for row in rows:
        key = (row.app, row.policy)
        if key not in seen:
            seen[key] = decide(row.app, row.policy)
        action = consent.disposition(seen[key])
        if action == consent.SEND:
            ok.append(row)
        elif action == consent.PURGE:
            withdrawn.append(row)
        else:
            held.append(row)
    spool.drop(withdrawn, "consent_withdrawn")
    report.dropped += len(withdrawn)
    report.held += len(rows) - len(ok) - len(withdrawn)
    return ok
