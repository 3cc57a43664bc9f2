"""Consent: may anything leave this machine for ``app`` now?

:func:`decide` answers, in this order (first match wins):

1. kill switches in the environment (``OPTEL_DISABLED``, ``DO_NOT_TRACK``:
   1/true/yes/on in any case; ``OTEL_SDK_DISABLED=true``) -> off;
2. a CI run (``CI`` or a well-known CI variable) without
   ``OPTEL_ALLOW_CI=1`` -> off;
3. a consent record that cannot be read or parsed -> off (fail closed, one
   warning per process);
   (also: a state folder another user owns or others can write: nothing in
   it is used, as ssh refuses such a folder);
4. the tool's own recorded decision, else the global one -> that decision
   (a global refusal withdraws every per-tool grant made before it; app
   names compare case-insensitively);
5. no decision: policy ``opt-out`` -> on once the tool's notice reached a
   person (a terminal or a notebook's output, see :func:`notice_due`; until
   then, or when it cannot be recorded, off), ``opt-in`` -> off.

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
    app_problem,
    check_app,
    decide,
    disposition,
    kill_switch,
    notice_due,
    notice_unrecorded,
    notice_unseen,
)
from .store import (
    ASK_AGAIN_S,
    DENIED,
    GRANTED,
    SCHEMA,
    SOURCES,
    ConsentFileError,
    UntrustedState,
    app_key,
    cached_records,
    note_asked,
    note_notice,
    record,
)

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from .effect import take_effect
    from .notice import check_text, check_url, notice_text, show_notice, why_unseen
    from .prompt import (
        AGAIN,
        PARENT_ENV,
        ask,
        is_child,
        mark_parent,
        parse_answer,
        should_ask,
        why_not,
    )

# Loaded on first use (PEP 562), see above.
_LAZY = {
    "take_effect": "effect",
    "notice_text": "notice",
    "show_notice": "notice",
    "why_unseen": "notice",
    "check_text": "notice",
    "check_url": "notice",
    "PARENT_ENV": "prompt",
    "AGAIN": "prompt",
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
    "AGAIN",
    "ASK_AGAIN_S",
    "Decision",
    "ConsentFileError",
    "UntrustedState",
    "app_key",
    "app_problem",
    "check_app",
    "cached_records",
    "decide",
    "kill_switch",
    "disposition",
    "notice_due",
    "notice_unrecorded",
    "notice_unseen",
    "record",
    "note_notice",
    "note_asked",
    "take_effect",
    "notice_text",
    "show_notice",
    "why_unseen",
    "check_text",
    "check_url",
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


def settle(
    app: str,
    policy: str,
    notice_version: int,
    prompt: bool,
    p: Paths,
    notice_text: str | None = None,
    notice_url: str | None = None,
    free_text: bool = False,
) -> Decision:
    """The decision ``optel.init`` acts on, asking first when the tool wants to.

    Decides; with ``prompt`` asks when :func:`should_ask` and the terminal
    allow it (an answer counts in this run); under the ``opt-out`` policy
    shows the notice when due and a person can see it, and stays off until
    one did (or when it cannot be recorded). Never raises for state on disk
    or in the environment (Ctrl-C at the question ends the program quietly).
    """
    decision = decide(app, policy, p=p, notice_version=notice_version)
    if prompt:
        with _errors.guard("prompt"):
            from .prompt import ask, should_ask

            if should_ask(decision, notice_version, p) and ask(
                app, p, notice_version, policy, free_text=free_text
            ):
                decision = decide(app, policy, p=p, notice_version=notice_version)
    if notice_due(decision, policy, notice_version):
        import sys

        from .notice import show_notice, why_unseen

        unseen = why_unseen(sys.stderr)
        if unseen:
            decision = notice_unseen(decision, unseen)
        elif show_notice(app, notice_version, p, notice_text, notice_url, free_text=free_text):
            decision = decide(app, policy, p=p, notice_version=notice_version)
        else:
            decision = notice_unrecorded(decision, p)
    return decision
