"""Failure reports: what went wrong and where, never who or what data.

A report keeps the exception type and each frame as a module-relative
location with function name and line number. Paths inside site-packages and
the standard library become relative to their root
(``site-packages/torch/nn/modules/module.py``, ``<stdlib>/json/decoder.py``);
anything else is the user's own code and becomes ``<user-code>``. Local
variables and source lines are never read. The message is free text: it is
in the report only when the tool opted in (``free_text=True``).

Stack-trace text (what the SDK records as ``exception.stacktrace``, or a
traceback inside a log message) is parsed by an allowlist of line shapes
(:func:`scrub_stacktrace`): frame headers of plain, chained and
``ExceptionGroup`` tracebacks, the chaining sentences, group separators and
exception type lines. A line of any other shape is dropped, never scrubbed
and kept; source lines are never kept.
"""

from __future__ import annotations

import re
from typing import Any

from .shapes import PSEUDO_FILE, label_ok, library_location, location, name
from .values import text

MAX_FRAMES = 50


def frames(tb: Any) -> list[dict[str, Any]]:
    """Frames of a traceback object: location, function, line (innermost last)."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append(
            {
                "file": location(code.co_filename),
                "function": name(code.co_name),
                "line": tb.tb_lineno,
            }
        )
        tb = tb.tb_next
    return out[-MAX_FRAMES:]


def type_name(exc: BaseException) -> str:
    """``module.Class`` (``Class`` for builtins and ``__main__``)."""
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def report(exc: BaseException, message: bool = False) -> dict[str, Any]:
    """The failure report of ``exc``: type and frames; with ``message`` (the tool
    opted in to free text) also the message, scrubbed as text."""
    rep: dict[str, Any] = {"type": name(type_name(exc)), "frames": frames(exc.__traceback__)}
    if message:
        rep["message"] = text(str(exc))
    return rep


def stacktrace(frames_: list[dict[str, Any]]) -> str:
    """Frames as compact text: ``file:line in function``, one per line."""
    return "\n".join(f"{f['file']}:{f['line']} in {f['function']}" for f in frames_)


# -- stack-trace text: an allowlist of line shapes -------------------------------------------

_FRAME = re.compile(
    r'^(?P<prefix>[ \t|+\-]*)File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$'
)
_COMPACT = re.compile(
    r"^(?P<prefix>\s*)(?P<loc><[^<>\n]{1,60}>|(?:site-packages|<stdlib>)/[\w./\-]+)"
    r":(?P<line>\d+) in (?P<func>\S+)$"
)
_SENTENCES = frozenset(
    {
        "Traceback (most recent call last):",
        "Exception Group Traceback (most recent call last):",
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    }
)
_STRUCTURE = re.compile(
    r"^[ \t|+\-]*(?:-+ (?:\d{1,4}|\.\.\.) -+|-+|\[Previous line repeated \d+ more times?\]"
    r"|and \d+ more exceptions?)?$"
)
_PREFIX = re.compile(r"^[ \t|+\-]*")
_EXC_LINE = re.compile(r"^(?P<prefix>[ \t|]*)(?P<type>[A-Za-z_][\w.]*)(?::(?P<msg>.*))?$")
_PYTEST_LOC = re.compile(r"^(?P<path>[^\s:]+\.py):(?P<line>\d+): (?P<type>[A-Za-z_][\w.]*)$")
_TYPE_SUFFIX = re.compile(
    r"(?:Error|Exception|Warning|Exit|Interrupt|Iteration|Group|Failure|Timeout|Fault|Abort)$"
)
_LOCATION = re.compile(r"<user-code>|" + PSEUDO_FILE.pattern)


def _type_ok(typ: str) -> bool:
    last = typ.rsplit(".", 1)[-1]
    return (
        last[:1].isupper()
        and ("." in typ or _TYPE_SUFFIX.search(last) is not None)
        and label_ok(typ)
    )


def _frame_location(loc: str) -> str | None:
    """A location as optel writes it (``<user-code>``, ``<stdlib>/json/decoder.py``,
    ``site-packages/torch/x.py``), checked again; ``None`` for anything else."""
    if loc.startswith(("site-packages/", "<stdlib>/")):
        return loc if all(label_ok(p) for p in loc.split("/")[1:] if p) else None
    return loc if _LOCATION.fullmatch(loc) else None


def scrub_stacktrace(trace: str, free_text: bool = False) -> str:
    """Stack-trace text reduced to the lines of recognised shapes.

    Frame headers become ``location:line in function`` (module-relative, as
    in failure reports); optel's own compact frames are checked again;
    exception lines keep the type (and, with ``free_text``, the first line
    of the message as text). Source lines under a frame, notes, messages'
    further lines and anything else are dropped.
    """
    out: list[str] = []
    source_deeper_than: int | None = None
    for line in trace.splitlines()[:2000]:
        if source_deeper_than is not None:
            if len(_PREFIX.match(line).group(0)) > source_deeper_than and line.strip():  # type: ignore[union-attr]
                continue  # the source line and caret markers under a frame
            source_deeper_than = None
        m = _FRAME.match(line)
        if m is not None:
            func = name(m.group("func") or "?")
            out.append(
                f"{m.group('prefix')}{location(m.group('path'))}:{m.group('line')} in {func}"
            )
            source_deeper_than = len(m.group("prefix"))
            continue
        body = line.lstrip(" \t|+-")
        if body in _SENTENCES or _STRUCTURE.match(line):
            out.append(line.rstrip())
            continue
        m = _COMPACT.match(line)
        if m is not None:
            loc = _frame_location(m.group("loc"))
            if loc is not None:
                out.append(f"{m.group('prefix')}{loc}:{m.group('line')} in {name(m.group('func'))}")
            continue
        m = _PYTEST_LOC.match(line)
        if m is not None and _type_ok(m.group("type")):
            out.append(f"{location(m.group('path'))}:{m.group('line')}: {m.group('type')}")
            continue
        m = _EXC_LINE.match(line)
        if m is not None and _type_ok(m.group("type")):
            kept = m.group("prefix") + m.group("type")
            msg = (m.group("msg") or "").strip()
            if free_text and msg:
                kept += ": " + text(msg)
            out.append(kept)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def is_traceback(trace: str) -> bool:
    return "Traceback (most recent call last)" in trace or '  File "' in trace


# the name older callers know
scrub_traceback_text = scrub_stacktrace

__all__ = [
    "report",
    "frames",
    "location",
    "library_location",
    "stacktrace",
    "scrub_stacktrace",
    "type_name",
]
