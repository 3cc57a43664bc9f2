"""Consent: may anything leave this machine for ``app`` now?

:func:`decide` answers, in this order (first match wins):

1. kill switches in the environment (``OPTEL_DISABLED``, ``DO_NOT_TRACK``:
   1/true/yes/on in any case; ``OTEL_SDK_DISABLED=true``) -> off;
2. a CI run (``CI`` or a well-known CI variable) without
   ``OPTEL_ALLOW_CI=1`` -> off;
3. a consent record that cannot be read or parsed -> off (fail closed, one
   warning per process);
4. the tool's own recorded decision, else the global one -> that decision;
5. no decision: policy ``opt-out`` -> on (after a one-time notice, see
   :func:`notice_due`; a notice that cannot be recorded means off),
   ``opt-in`` -> off.

The environment is read on every call, the record only when it changed, so
the re-check before each send is cheap and still sees ``optel opt-out``
from another process. Records already waiting follow :func:`disposition`:
denied means purge, otherwise hold.

The modules, each with one job:

- :mod:`.rule`: the rule above (:class:`Decision`, :func:`decide`,
  :func:`kill_switch`, :func:`disposition`, :func:`notice_due`); reads, never writes;
- :mod:`.store`: ``consent.json``: reading, migration, cache, atomic writes
  under the lock (:func:`record`, :func:`note_notice`);
- :mod:`.notice`: the opt-out policy's one-time notice (:func:`show_notice`);
- :mod:`.prompt`: the question at a terminal (:func:`should_ask`, :func:`ask`);
- :mod:`.effect`: what a recorded decision does to the state on disk
  (:func:`take_effect`), for ``optel opt-in/opt-out`` and the prompt alike.

:func:`settle` puts them together for ``optel.init``. The notice, the prompt
and the effect load on first use: a run that only decides never needs them.
"""

from __future__ import annotations

from .. import _errors
from ..config import Paths
from .rule import (
    HOLD,
    POLICIES,
    PURGE,
    SEND,
    UNSET,
    Decision,
    decide,
    disposition,
    kill_switch,
    notice_due,
    notice_unrecorded,
)
from .store import DENIED, GRANTED, SCHEMA, SOURCES, ConsentFileError, note_notice, record

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from .effect import take_effect
    from .notice import notice_text, show_notice
    from .prompt import PARENT_ENV, ask, is_child, mark_parent, parse_answer, should_ask, why_not

# Loaded on first use (PEP 562), see above.
_LAZY = {
    "take_effect": "effect",
    "notice_text": "notice",
    "show_notice": "notice",
    "PARENT_ENV": "prompt",
    "ask": "prompt",
    "is_child": "prompt",
    "mark_parent": "prompt",
    "parse_answer": "prompt",
    "should_ask": "prompt",
    "why_not": "prompt",
}

__all__ = [
    "GRANTED",
    "DENIED",
    "UNSET",
    "POLICIES",
    "SOURCES",
    "SCHEMA",
    "SEND",
    "HOLD",
    "PURGE",
    "PARENT_ENV",
    "Decision",
    "ConsentFileError",
    "decide",
    "kill_switch",
    "disposition",
    "notice_due",
    "notice_unrecorded",
    "record",
    "note_notice",
    "take_effect",
    "notice_text",
    "show_notice",
    "why_not",
    "is_child",
    "mark_parent",
    "parse_answer",
    "should_ask",
    "ask",
    "settle",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value  # found directly from now on
    return value


def settle(app: str, policy: str, notice_version: int, prompt: bool, p: Paths) -> Decision:
    """The decision ``optel.init`` acts on, asking first when the tool wants to.

    Decides; with ``prompt`` asks when :func:`should_ask` and the terminal
    allow it (an answer counts in this run); shows the opt-out notice when
    due, and stays off when it cannot be recorded. Never raises for state on
    disk or in the environment.
    """
    decision = decide(app, policy, p=p)
    if prompt:
        with _errors.guard("prompt"):
            from .prompt import ask, should_ask

            if should_ask(decision, notice_version) and ask(app, p, notice_version, policy):
                decision = decide(app, policy, p=p)  # the answer counts now
    if notice_due(decision, policy, notice_version):
        from .notice import show_notice

        if not show_notice(app, notice_version, p):
            decision = notice_unrecorded(decision, p)
    return decision
