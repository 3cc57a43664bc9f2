"""The ``local`` destination: records stay on this machine.

Rendering is the record itself as compact JSON. Nothing is ever sent: local
records wait where the caller keeps them (the spool, bounded by count, bytes
and age), where ``optel show`` lists them, until they age out.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..config import Config
from . import Outcome, Payload


class Destination:
    name = "local"
    remote = False

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def render(self, record: dict[str, Any]) -> str | None:
        return json.dumps(record, sort_keys=True, separators=(",", ":"))

    def send(self, items: Sequence[Payload], timeout_s: float) -> Outcome:
        return Outcome(retry=[i.key for i in items])  # never leaves the machine

    def warm(self) -> None:
        return None

    def close(self) -> None:
        return None
