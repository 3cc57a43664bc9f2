"""The ``local`` destination: records stay on this machine.

Rendering is the record itself as compact JSON. Nothing is ever sent: local
rows wait in the spool (bounded by count, bytes and age), where
``optel show`` lists them, until the user flushes them elsewhere or they
age out.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..config import Config
from ..spool import Row
from . import Outcome


class Destination:
    name = "local"
    remote = False

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def render(self, record: dict[str, Any]) -> str | None:
        return json.dumps(record, sort_keys=True, separators=(",", ":"))

    def send(self, rows: Sequence[Row], timeout_s: float) -> Outcome:
        return Outcome(retry=list(rows))  # never leaves the machine
