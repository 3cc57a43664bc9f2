"""An independent oracle: detect-secrets over every byte the leak tests capture.

optel's own rules decide what leaves; this module asks a tool that knows
none of them. Captures (spool files, ``optel show`` output, wire bodies,
debug output) are cut into short lines: printable runs of the raw bytes,
split where JSON separates fields, so each line keeps a key with its value
(the keyword plugins need both) and a binary file (SQLite, protobuf) is read
like text. Identical lines are scanned once: thousands of records differ
only in their placeholders.

Ids and clocks (trace and span ids, the session id, times, failure
fingerprints, keyed hashes) make every record's lines distinct and look
random to an entropy plugin by design. Each is recognised by its key and
its exact shape (32 or 16 hex digits, digits, the base64 of 16 or 8 bytes,
``h:`` and 16 hex digits, 12 hex digits) and only then set aside as
``<id>``; a value of any other shape is scanned like everything else.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Iterable

_PRINTABLE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]{4,}")
_FIELD_SPLIT = re.compile(r'(?<=[,{}\[\]])\s*(?=")|\\n|\n')


_SHAPES = {
    "trace_id": r"[0-9a-f]{32}", "traceId": r"[A-Za-z0-9+/]{22}==", "span_id": r"[0-9a-f]{16}",
    "parent_span_id": r"[0-9a-f]{16}", "spanId": r"[A-Za-z0-9+/]{11}=",
    "parentSpanId": r"[A-Za-z0-9+/]{11}=", "session_id": r"\d{1,20}",
    "optel.failure.id": r"[0-9a-f]{12}", "optel_failure_id": r"[0-9a-f]{12}",
    **{k: r"\d{1,20}(?:\.\d+)?" for k in (
        "time", "time_ns", "start_ns", "end_ns", "timeUnixNano", "startTimeUnixNano",
        "endTimeUnixNano", "observedTimeUnixNano", "timestamp_micros", "created", "id")},
}  # fmt: skip
_ID_FIELD = re.compile(
    r'"(' + "|".join(re.escape(k) for k in _SHAPES) + r')"(\s*:\s*)("?)([^",}\s]{1,64})\3'
)
_HASH = re.compile(r"\bh:[0-9a-f]{16}\b")


def _set_ids_aside(text: str) -> str:
    def replace(m: re.Match[str]) -> str:
        key, sep, quote, value = m.groups()
        if re.fullmatch(_SHAPES[key], value) is None:
            return m.group(0)  # not the shape of an id: scanned as it is
        return f'"{key}"{sep}{quote}<id>{quote}'

    return _HASH.sub("h:<id>", _ID_FIELD.sub(replace, text))


_COMPACT = re.compile(r'"\s*:\s+')


def lines(blobs: Iterable[bytes]) -> list[str]:
    """Distinct short lines of every capture, ids and clocks set aside."""
    seen: set[str] = set()
    for blob in blobs:
        seen |= _lines(blob)
    return sorted(seen)


def _lines(blob: bytes) -> set[str]:
    out = set()
    for run in _PRINTABLE.findall(blob):
        text = _set_ids_aside(run.decode("utf-8", "replace"))
        for part in _FIELD_SPLIT.split(text):
            # one form for compact and indented JSON, so captures share their lines
            part = _COMPACT.sub('":', part.strip()).rstrip(",")
            # SQLite page headers and protobuf framing read as text are no text
            if len(part) >= 4 and part.count("\ufffd") * 5 <= len(part):
                out.add(part[:2000])
    return out


def scan_captures(captures: dict[str, bytes]) -> dict[str, list[tuple[str, str, str]]]:
    """Findings by capture, from one scan of the lines of them all (captures
    share most of their lines: detect-secrets reads each once)."""
    by_line: dict[str, list[str]] = {}
    for name, blob in captures.items():
        for line in _lines(blob):
            by_line.setdefault(line, []).append(name)
    out: dict[str, list[tuple[str, str, str]]] = {name: [] for name in captures}
    for finding in _scan_lines(sorted(by_line)):
        for name in by_line.get(finding[2], ()):
            out[name].append(finding)
    return out


def scan(blobs: Iterable[bytes]) -> list[tuple[str, str, str]]:
    """(plugin, secret, line) for every finding of detect-secrets' default plugins."""
    return _scan_lines(lines(blobs))


def _scan_lines(found: list[str]) -> list[tuple[str, str, str]]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    fd, path = tempfile.mkstemp(suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(found))
        with default_settings():
            collection = SecretsCollection()
            collection.scan_file(path)
        return [
            (s.type, s.secret_value or "", found[s.line_number - 1] if s.line_number else "")
            for _, s in collection
        ]
    finally:
        os.unlink(path)
