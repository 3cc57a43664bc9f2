"""Making a value fit its kind: the first line of the anonymizer.

:func:`fit` takes a :class:`optel.kinds.Kind` and a value and gives what is
sent: the value itself when it has the kind's shape, a derived value for the
kinds that never send the original (path kind, hashed), or a typed
placeholder when it does not fit (``<not-label>``, ``<not-number>``,
``<other>``, ...), together with whether it was a mismatch (counted and
shown by ``optel status``).

The rules are shapes, not patterns over free text: a label is a short
token of identifier characters, so an e-mail address, a path, a sentence, a
phone number or a host name cannot be one, whatever their variant. Only the
text kind runs the pattern scrubbers (:mod:`.values`), as a second line.
:func:`name` reduces event, span, metric and scope names to identifiers
(literals become ``?``). Results are memoized: labels and names repeat.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable

from ..kinds import Kind
from ..records import Cut
from . import reduce
from .exceptions import _frame_location as frame_location
from .exceptions import is_traceback, scrub_stacktrace
from .shapes import (
    ON_IDENTITY_CHANGE,
    card_int,
    label_ok,
    library_location,
    name,
    path_kind,
    version_ok,
)
from .values import text

DROP: Any = object()
"""Returned for a value that is not sent at all (free text when it is off)."""

PLACEHOLDER = {
    "label": "<not-label>",
    "labels": "<not-label>",
    "number": "<not-number>",
    "bool": "<not-bool>",
    "version": "<not-version>",
    "path": "<not-path>",
    "oneof": "<other>",
    "url": "<not-url>",
    "route": "<not-route>",
    "statement": "<not-statement>",
    "location": "<not-location>",
}

# -- every kind --------------------------------------------------------------------------------


def _label(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        if isinstance(value, Cut):
            return PLACEHOLDER["label"], True  # a cut value is not a whole label
        return (value, False) if label_ok(value) else (PLACEHOLDER["label"], True)
    if isinstance(value, bool) or value is None:
        return value, False
    if isinstance(value, int):
        return (PLACEHOLDER["label"], True) if card_int(value) else (value, False)
    if isinstance(value, float):
        return value, False
    return PLACEHOLDER["label"], True


def _labels(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str) and all(label_ok(p) for p in value.split(kind.sep) if p):
        return value, False
    return PLACEHOLDER["labels"], True


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return int(value), False
    if isinstance(value, int):
        return (PLACEHOLDER["number"], True) if card_int(value) else (value, False)
    if isinstance(value, float):
        return value, False
    if isinstance(value, str) and len(value) <= 40 and _NUMBER.fullmatch(value.strip()):
        s = value.strip()
        try:
            parsed: float | int = int(s)
        except ValueError:
            parsed = float(s)
        return _number(kind, parsed, free_text)
    return PLACEHOLDER["number"], True


_TRUE = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _bool(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return value, False
    if isinstance(value, int) and value in (0, 1):
        return bool(value), False
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return _TRUE[value.strip().lower()], False
    return PLACEHOLDER["bool"], True


def _version(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (
            (value, False) if math.isfinite(value) and abs(value) < 1e8 else ("<not-version>", True)
        )
    if isinstance(value, str) and version_ok(value):
        return value, False
    return PLACEHOLDER["version"], True


def _path(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.strip():
        return path_kind(value), False
    return PLACEHOLDER["path"], True


_HASH = re.compile(r"h:[0-9a-f]{16}|<hashed>")


def _hashed(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str) and _HASH.fullmatch(value):
        return value, False  # hashed by the tool already (optel.hashed)
    from .hashing import hashed

    return hashed(value), False


def _text(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        if is_traceback(value):
            return scrub_stacktrace(value, free_text=True), False
        return text(value), False
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    return text(str(value)), False


def _message(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    return _text(kind, value, free_text) if free_text else (DROP, False)


def _stack(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        return scrub_stacktrace(value, free_text), False
    return DROP, False


_FINGERPRINT = re.compile(r"[0-9a-f]{12}")


def _fingerprint(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str) and _FINGERPRINT.fullmatch(value):
        return value, False
    return PLACEHOLDER["label"], True


def _oneof(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if value in kind.values and any(type(value) is type(v) for v in kind.values if v == value):
        return value, False
    return PLACEHOLDER["oneof"], True


def _name_kind(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        return name(value), False
    return name(str(value)), False


def _url(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        out = reduce.url(value)
        if out is not None:
            return out, False
    return PLACEHOLDER["url"], True


def _route(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        return reduce.route(value), False
    return PLACEHOLDER["route"], True


def _statement(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str):
        return reduce.statement(value), False
    return PLACEHOLDER["statement"], True


def _location(kind: Kind, value: Any, free_text: bool) -> tuple[Any, bool]:
    if isinstance(value, str) and value.strip():
        # a location optel wrote already, checked again; else the path's location
        loc = frame_location(value)
        if loc is None:
            loc = library_location(value) or "<user-code>"
        return loc, False
    return PLACEHOLDER["location"], True


Fitter = Callable[[Kind, Any, bool], "tuple[Any, bool]"]
FITTERS: dict[str, Fitter] = {
    "label": _label,
    "labels": _labels,
    "number": _number,
    "bool": _bool,
    "version": _version,
    "path": _path,
    "hashed": _hashed,
    "text": _text,
    "message": _message,
    "stacktrace": _stack,
    "oneof": _oneof,
    "fingerprint": _fingerprint,
    "name": _name_kind,
    "url": _url,
    "route": _route,
    "statement": _statement,
    "location": _location,
}
"""Kind name -> how a value is made to fit it."""

_SCALAR = (str, bool, int, float)


_MEMOIZED = frozenset({"label", "labels", "number", "bool", "version", "path", "oneof", "name",
                       "fingerprint", "url", "route", "statement", "location"})  # fmt: skip
"""Kinds whose result depends on the value alone (not text: it has its own memo;
not hashed: the salt may change)."""
MEMO_MAX = 4096
_MEMOS: dict[int, dict[Any, Any]] = {}
"""Every kind's memo in use, so a change of the local user or host names can drop them."""


def _forget() -> None:
    for memo in _MEMOS.values():
        memo.clear()


ON_IDENTITY_CHANGE.append(_forget)


def fit(kind: Kind, value: Any, free_text: bool = False) -> tuple[Any, bool]:
    """(what is sent, whether it was a mismatch) for ``value`` of ``kind``.

    Sequences (OpenTelemetry's homogeneous arrays) fit item by item; a
    value of any other type is a mismatch. ``DROP`` means: send nothing.
    Scalars are memoized per kind: values repeat.
    """
    t = type(value)
    if t is str or t is int or t is float or t is bool:
        memo = kind.fitted
        key = value if t is str else (t, value)  # True == 1, but not as a label
        hit = memo.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        fitter = FITTERS.get(kind.name)
        if fitter is None:
            return DROP, True  # a kind this module does not know: fail closed
        out = fitter(kind, value, free_text)
        if kind.name in _MEMOIZED:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            elif not memo:
                _MEMOS[id(memo)] = memo
            memo[key] = out
        return out
    fitter = FITTERS.get(kind.name)
    if fitter is None:
        return DROP, True
    if isinstance(value, (list, tuple)) and kind.name not in ("message", "stacktrace"):
        items, bad = [], False
        for item in value:
            v, b = fitter(kind, item, free_text) if isinstance(item, _SCALAR) else (None, True)
            bad = bad or b
            if v is not DROP:
                items.append(v)
        return items, bad
    return fitter(kind, value, free_text)
