"""Gate and scrub: the step every record takes before it may be kept or leave.

For each record: its consent is checked (the record's own app and policy),
then the anonymizer runs. The pipeline uses this step before the spool (the
spool keeps the scrubbed record; destinations render it when they send it);
the GA4 exporter for plain OpenTelemetry pipelines (:mod:`optel.exporters.sdk`)
uses it before sending, so both apply the same rule and the same scrubbing.

What a record's consent means (:func:`optel.consent.disposition`): ``send``
passes; ``purge`` (denied) drops it; ``hold`` (a kill switch, no decision
yet) passes only for a caller that can keep the record for later (the
spool), and drops it for one that cannot (the SDK exporter). With
``OPTEL_DEBUG`` each record is rendered for each destination and printed to
stderr, and none is kept.

No destination code runs here unless debugging: this step runs on the
exiting thread at exit, where nothing may be imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from . import _errors, consent

if TYPE_CHECKING:
    from .anonymize import Anonymizer
    from .exporters import Destinations

Decider = Callable[[str, str], "consent.Decision"]


class Stage:
    """The gate-scrub step for records bound for ``names``.

    ``hold``: the caller keeps held records (the spool) rather than dropping
    them. ``decide(app, policy)`` gives a record's consent; it is asked once
    per app and policy in each call.
    """

    def __init__(
        self,
        anonymizer: Anonymizer,
        destinations: Destinations,
        names: Sequence[str],
        decide: Decider,
        hold: bool,
        debug: bool = False,
    ):
        self.anonymizer = anonymizer
        self.destinations = destinations
        self.names = tuple(names)
        self.decide = decide
        self.hold = hold
        self.debug = debug

    def __call__(
        self, items: Iterable[Any], to_record: Callable[[Any], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The scrubbed record of each of ``items`` that may be kept; ``to_record``
        turns an item into a record carrying ``app``, ``policy`` and ``signal``.
        A record that fails on the way is skipped alone."""
        seen: dict[tuple[str, str], str] = {}
        out: list[dict[str, Any]] = []
        scrub = self.anonymizer.scrub
        for item in items:
            try:  # (not a guard per record: entering one costs more than the rest of a burst)
                rec = to_record(item)
                key = (str(rec["app"]), str(rec["policy"]))
                action = seen.get(key)
                if action is None:
                    action = seen[key] = consent.disposition(self.decide(*key))
                if action == consent.PURGE or (action == consent.HOLD and not self.hold):
                    continue
                out.append(scrub(rec))
            except Exception:
                with _errors.guard("record"):  # logged once (raised in tests); skipped alone
                    raise
        if self.debug:
            self._print(out)
            return []  # debug: print, keep nothing, send nothing
        return out

    def _print(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            for name in self.names:
                dest = self.destinations.get(name, warn=True)
                payload = dest.render(rec) if dest is not None else None
                if payload is not None:
                    sys.stderr.write(f"optel debug [{name}] {payload}\n")
