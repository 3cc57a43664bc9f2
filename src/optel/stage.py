"""Gate, scrub, render: the step every record takes before it may leave.

For each record: its consent is checked (the record's own app and policy),
the anonymizer runs, and each destination renders it. The pipeline uses
this step before the spool; the GA4 exporter for plain OpenTelemetry
pipelines (:mod:`optel.exporters.sdk`) uses it before sending, so both
apply the same rule, the same scrubbing and the same rendering.

What a record's consent means (:func:`optel.consent.disposition`): ``send``
passes; ``purge`` (denied) drops it; ``hold`` (a kill switch, no decision
yet) passes only for a caller that can keep the record for later (the
spool), and drops it for one that cannot (the SDK exporter). With
``OPTEL_DEBUG`` each payload is printed to stderr and none is kept.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from . import _errors, consent

if TYPE_CHECKING:
    from .anonymize import Anonymizer
    from .exporters import Destinations

Decider = Callable[[str, str], "consent.Decision"]


@dataclass(frozen=True)
class Rendered:
    """One record rendered for one destination."""

    app: str
    policy: str
    signal: str
    destination: str
    payload: str
    created: float


class Stage:
    """The gate-scrub-render step for records bound for ``names``.

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
    ) -> list[Rendered]:
        """Every destination's payload for each of ``items``; ``to_record`` turns
        an item into a record carrying ``app``, ``policy`` and ``signal``. A
        record that fails on the way is skipped alone."""
        seen: dict[tuple[str, str], str] = {}
        out: list[Rendered] = []
        for item in items:
            with _errors.guard("record"):
                rec = to_record(item)
                key = (str(rec["app"]), str(rec["policy"]))
                if key not in seen:
                    seen[key] = consent.disposition(self.decide(*key))
                action = seen[key]
                if action == consent.PURGE or (action == consent.HOLD and not self.hold):
                    continue
                out.extend(self._render(self.anonymizer.scrub(rec)))
        return out

    def _render(self, rec: dict[str, Any]) -> list[Rendered]:
        out = []
        for name in self.names:
            dest = self.destinations.get(name, warn=True)
            if dest is None:
                continue
            payload = dest.render(rec)
            if payload is None:
                continue
            if self.debug:
                sys.stderr.write(f"optel debug [{name}] {payload}\n")
                continue  # debug: print, keep nothing, send nothing
            out.append(
                Rendered(rec["app"], rec["policy"], rec["signal"], name, payload, rec["time"])
            )
        return out
