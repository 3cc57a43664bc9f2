"""Failure reports: what went wrong and where, never who or what data.

A report keeps the exception type, a scrubbed message and each frame as a
module-relative location with function name and line number. Paths inside
site-packages and the standard library become relative to their root
(``site-packages/torch/nn/modules/module.py``, ``<stdlib>/json/decoder.py``);
anything else is the user's own code and becomes ``<user-code>``. Local
variables and source lines are never read.
"""

from __future__ import annotations

import os
import re
import sysconfig
from functools import lru_cache
from typing import Any

from .values import scrub_blocks, scrub_text

MAX_FRAMES = 50


def _roots() -> list[tuple[str, str]]:
    """(absolute folder, label) pairs, longest first so the most specific wins."""
    roots: list[tuple[str, str]] = []
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib"):
        if paths.get(key):
            roots.append((paths[key], "site-packages"))
    try:
        import site

        for folder in [*site.getsitepackages(), site.getusersitepackages()]:
            roots.append((folder, "site-packages"))
    except Exception:  # site may be stripped down in embedded Pythons
        pass
    for key in ("stdlib", "platstdlib"):
        if paths.get(key):
            roots.append((paths[key], "<stdlib>"))
    roots.append((os.path.dirname(os.__file__), "<stdlib>"))
    seen, unique = set(), []
    for folder, label in roots:
        folder = os.path.normcase(os.path.abspath(folder))
        if folder not in seen:
            seen.add(folder)
            unique.append((folder, label))
    return sorted(unique, key=lambda r: len(r[0]), reverse=True)


_ROOTS = _roots()


@lru_cache(maxsize=2048)
def location(filename: str) -> str:
    """A frame's file as a module-relative, anonymous location."""
    if filename.startswith("<") and filename.endswith(">"):
        return filename  # <string>, <frozen importlib._bootstrap>, <stdin>
    path = os.path.normcase(os.path.abspath(filename))
    for folder, label in _ROOTS:
        if path.startswith(folder + os.sep):
            rel = path[len(folder) + 1 :].replace(os.sep, "/")
            if label == "<stdlib>" and rel.startswith(("site-packages/", "dist-packages/")):
                return "site-packages/" + rel.split("/", 1)[1]
            return f"{label}/{rel}"
    # Another interpreter's or environment's files (a traceback text from a
    # child process, a venv elsewhere): recognised by their folder names.
    slashed = filename.replace("\\", "/")
    m = _FOREIGN_PACKAGES.search(slashed)
    if m is not None:
        return "site-packages/" + m.group(1)
    m = _FOREIGN_STDLIB.search(slashed)
    if m is not None:
        return "<stdlib>/" + m.group(1)
    return "<user-code>"


_FOREIGN_PACKAGES = re.compile(r"/(?:site|dist)-packages/(.+)$")
_FOREIGN_STDLIB = re.compile(r"/lib/python\d+\.\d+/(.+)$")


def frames(tb: Any) -> list[dict[str, Any]]:
    """Frames of a traceback object: location, function, line (innermost last)."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append(
            {
                "file": location(code.co_filename),
                "function": scrub_text(code.co_name),
                "line": tb.tb_lineno,
            }
        )
        tb = tb.tb_next
    return out[-MAX_FRAMES:]


def report(exc: BaseException) -> dict[str, Any]:
    """The scrubbed failure report of ``exc``."""
    cls = type(exc)
    module = cls.__module__
    name = (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )
    return {
        "type": scrub_text(name),
        "message": scrub_text(str(exc))[:1000],
        "frames": frames(exc.__traceback__),
    }


def stacktrace(frames_: list[dict[str, Any]]) -> str:
    """Frames as compact text: ``file:line in function``, one per line."""
    return "\n".join(f"{f['file']}:{f['line']} in {f['function']}" for f in frames_)


_TB_FILE = re.compile(r'^(\s*)File "([^"]+)", line (\d+)(?:, in (.*))?$')


def scrub_traceback_text(text: str) -> str:
    """A formatted Python traceback (as the SDK records it) made anonymous.

    File lines become module-relative locations; source lines under them are
    dropped (they can quote data); everything else is value-scrubbed.
    """
    out: list[str] = []
    skip_source = False
    for line in scrub_blocks(text).splitlines():
        m = _TB_FILE.match(line)
        if m:
            indent, path, lineno, func = m.groups()
            out.append(f"{indent}{location(path)}:{lineno} in {scrub_text(func or '?')}")
            skip_source = True
            continue
        if skip_source and line.startswith("    ") and not line.startswith("  File"):
            continue  # the source line (and caret markers) under a frame
        skip_source = False
        out.append(scrub_text(line))
    return "\n".join(out)


def is_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text or '  File "' in text


__all__ = ["report", "frames", "location", "stacktrace", "scrub_traceback_text"]
