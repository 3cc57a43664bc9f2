"""Sending what waits in the spool, within a deadline.

:func:`deliver` is used by the worker thread, at exit (with the exit
budget as deadline) and by ``optel flush``. Just before each batch goes out
it checks each row's consent again (the row's own app and policy): a row
whose consent was withdrawn is deleted, a row held back by a kill switch
stays for later. A row leaves the spool only when its destination accepted
it.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from . import consent, exporters
from .config import Config
from .spool import Row, Spool

BATCH = 100
LEASE_S = 60.0
MAX_REQUEST_S = 10.0
MAX_BACKOFF_S = 3600.0


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


def deliver(
    spool: Spool,
    cfg: Config,
    deadline: float,
    owner: str,
    decide: Decider | None = None,
    lease_s: float = LEASE_S,
    force: bool = False,
) -> Report:
    """Send due rows of every remote destination until done or ``deadline``
    (a ``time.monotonic()`` value); ``force`` also sends rows still backing off."""
    report = Report()
    decide = decide or (lambda app, policy: consent.decide(app, policy, p=cfg.paths))
    for name in spool.destinations_due():
        dest = exporters.load(name, cfg)
        if dest is None or not dest.remote:
            continue
        while time.monotonic() < deadline:
            rows = spool.claim(name, owner, BATCH, lease_s, due_only=not force)
            if not rows:
                break
            held_before = report.held
            rows = _consented(spool, rows, decide, report)
            if not rows:
                if report.held > held_before:
                    break  # held back by a kill switch: claiming again would spin
                continue  # all withdrawn (deleted): look at the next ones
            if cfg["debug"]:
                for row in rows:
                    sys.stderr.write(f"optel debug [{name}] {row.payload}\n")
                spool.release(rows)
                report.held += len(rows)
                break
            timeout = min(MAX_REQUEST_S, deadline - time.monotonic())
            if timeout <= 0:
                spool.release(rows)
                break
            try:
                outcome = dest.send(rows, timeout)
            except Exception:
                spool.release(rows)  # a destination's bug must not strand leased rows
                raise
            spool.ack(outcome.accepted)
            spool.drop(outcome.rejected, outcome.reason or "rejected")
            report.sent += len(outcome.accepted)
            report.dropped += len(outcome.rejected)
            if outcome.retry:
                worst = max(r.attempts for r in outcome.retry)
                spool.retry_later(
                    outcome.retry, backoff(worst, outcome.retry_after_s), outcome.reason or "retry"
                )
                report.retried += len(outcome.retry)
                report.errors.append(f"{name}: {outcome.reason}")
                break  # the destination is unhealthy: do not hammer it
    return report


def _consented(spool: Spool, rows: list[Row], decide: Decider, report: Report) -> list[Row]:
    """Rows whose consent holds now; withdrawn ones deleted, held ones released."""
    seen: dict[tuple[str, str], consent.Decision] = {}
    ok, withdrawn, held = [], [], []
    for row in rows:
        key = (row.app, row.policy)
        if key not in seen:
            seen[key] = decide(row.app, row.policy)
        d = seen[key]
        if d.enabled:
            ok.append(row)
        elif d.consent == consent.DENIED:
            withdrawn.append(row)
        else:
            held.append(row)
    spool.drop(withdrawn, "consent_withdrawn")
    spool.release(held)
    report.dropped += len(withdrawn)
    report.held += len(held)
    return ok
