"""The gateway collector's configuration, generated from optel's own rules.

``optel gateway-config`` prints the configuration of the OpenTelemetry
Collector gateway (``collector-config/gateway.yaml`` is its output for the
demo tool). The gateway enforces on *any* sender what optel enforces on the
machine, from the same tables:

- **keys**: every key that can leave (:attr:`optel.anonymize.Anonymizer.kinds`:
  the tool's declarations, optel's own :data:`optel.kinds.OPTEL_KEYS`, the
  built-in keys and the semantic-convention registry :mod:`optel.semconv`)
  is the redaction processor's allowlist; nothing else passes;
- **values**: each allowed key's value must fit its kind (OTTL statements in
  the transform processor): URLs, routes and queries are reduced by the very
  rules of :mod:`optel.anonymize.reduce`; source files become module-relative
  locations; stack-trace text keeps the lines of known shapes only (frames,
  chaining sentences, exception types); the token kinds (labels, closed
  sets, numbers, bools, versions, path kinds, hashes) are checked together
  (:data:`TOKEN_KINDS`): what is no token becomes ``<not-label>``;
- **free text**: span status messages and exception messages are dropped,
  log bodies are kept only when they are templates (a ``%s``-style
  placeholder: optel sends the template of a log call with arguments,
  never the formatted text), then pattern-scrubbed; with ``--free-text``
  (a tool that opted in) messages are kept, pattern-scrubbed;
- **names** (spans, span events, scopes, metrics, log events): quoted
  strings, numbers, URLs, paths, addresses and secrets become ``?``,
  ``<url>``, ``<path>``, as optel's names do.

**Where a tool author declares keys, once, for both sides**: the mapping
passed to ``optel.init(attributes=...)``, kept at module level and named to
the generator::

    # mytool/telemetry.py
    ATTRIBUTES = {"framework": ("onnx", "tensorflow"), "input": optel.PathKind}
    telemetry = optel.init(app="mytool", attributes=ATTRIBUTES)

    $ optel gateway-config --declarations mytool.telemetry:ATTRIBUTES > gateway.yaml

(a list of keys declares labels, as ``allowed_attributes=[...]`` does; a
:class:`optel.Declarations` works too). Python's ``re`` and the collector's
RE2 share the reduction rules exactly; for labels, names, stack traces and
free text the gateway runs the RE2-expressible part of optel's rules (no
look-around, no entropy test, no knowledge of the machine's user name), a
backstop behind the machine, never a replacement for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .anonymize.reduce import MARK as _MARK
from .anonymize.shapes import _VERSION, PSEUDO_FILE

if TYPE_CHECKING:
    import argparse

    from .kinds import Declarations, Kind

# -- OTTL text -----------------------------------------------------------------------------


def _s(text: str) -> str:
    """An OTTL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _repl(replacement: str) -> str:
    """A Python ``re`` replacement (``\\1``) as Go's (``${1}``)."""
    if "$" in replacement:
        raise ValueError(f"a replacement may not hold $: {replacement!r}")
    return re.sub(r"\\(\d)", r"${\1}", replacement)


def _replace(path: str, pattern: str, replacement: str) -> str:
    return (
        f"replace_pattern({path}, {_s(pattern)}, {_s(_repl(replacement))}) where IsString({path})"
    )


def _set_unless(path: str, value: str, pattern: str) -> str:
    """``path`` becomes ``value`` when it is a string that does not match ``pattern``."""
    return f"set({path}, {_s(value)}) where IsString({path}) and not IsMatch({path}, {_s(pattern)})"


# -- the rules, per kind -------------------------------------------------------------------

_LABEL_BAD = (
    r"[0-9]{6}"  # a long digit run
    r"|[0-9](?:[.:()+/\-]?[0-9]){8}"  # nine digits split by separators
    r"|[0-9a-fA-F]{20}"  # a key or a digest
    r"|[0-9a-fA-F]{2}(?:[:\-][0-9a-fA-F]{2}){5}"  # a MAC address
    r"|(?:gh[pousr]_|github_pat_|glpat-|hf_|sk-|sk_live_|xox[abposr]-|AKIA|ASIA|AIza|eyJ)"
    r"|\.(?:com|net|org|edu|gov|internal|local|lan|corp|localdomain|io)$"  # a host name
    r"|@[A-Za-z0-9\-]+\.[A-Za-z]"  # an e-mail address
)
"""The RE2 part of :func:`optel.anonymize.shapes.label_ok` (not: entropy, this machine's names)."""

_VERSION_RE = _VERSION.pattern  # a version, as optel.anonymize.shapes checks it
_PATH_KIND = (
    r"(?:file:\.[A-Za-z0-9.]{1,17}|dir|path)@(?:home|temp|site-packages|network|relative|other)"
    r"|url(?::[A-Za-z][A-Za-z0-9+.\-]{0,15})?"
)
# a bracketed file name only as the interpreter (or optel) writes one: "<alice>" in a
# compact frame is no location
_LOCATION = rf"(?:site-packages|<stdlib>)/[A-Za-z0-9_.\-/]+|<user-code>|{PSEUDO_FILE.pattern}"
_EXC_TYPE = (
    r"[A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration|Group|Failure"
    r"|Timeout|Fault|Abort)|[a-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.[A-Z][A-Za-z0-9_]*"
)
_FUNC = r"[A-Za-z_<>][A-Za-z0-9_.<>]*"

STACKTRACE_RULES: tuple[tuple[str, str], ...] = (
    (_MARK, ""),
    (
        rf'(?m)^([ \t|+\-]*)File "[^"\n]*[/\\](?:site|dist)-packages[/\\]([A-Za-z0-9_.\-/]+)",'
        rf" line ([0-9]+), in ({_FUNC})[ \t]*$",
        _MARK + r"\1site-packages/\2:\3 in \4",
    ),
    (
        rf'(?m)^([ \t|+\-]*)File "[^"\n]*[/\\]lib[/\\]python[0-9.]*[/\\]([A-Za-z0-9_.\-/]+)",'
        rf" line ([0-9]+), in ({_FUNC})[ \t]*$",
        _MARK + r"\1<stdlib>/\2:\3 in \4",
    ),
    (
        rf'(?m)^([ \t|+\-]*)File "[^"\n]*", line ([0-9]+), in ({_FUNC})[ \t]*$',
        _MARK + r"\1<user-code>:\2 in \3",
    ),
    (  # a frame without its function
        r'(?m)^([ \t|+\-]*)File "[^"\n]*", line ([0-9]+)[ \t]*$',
        _MARK + r"\1<user-code>:\2 in ?",
    ),
    (
        r"(?m)^([ \t|+\-]*)(Traceback \(most recent call last\):|Exception Group Traceback"
        r" \(most recent call last\):|During handling of the above exception, another exception"
        r" occurred:|The above exception was the direct cause of the following exception:)[ \t]*$",
        _MARK + r"\1\2",
    ),
    (  # optel's own compact frames
        rf"(?m)^([ \t|+\-]*)({_LOCATION})"
        rf":([0-9]+) in ({_FUNC})[ \t]*$",
        _MARK + r"\1\2:\3 in \4",
    ),
    (  # optel's own pytest location lines: <user-code>:6: AssertionError
        rf"(?m)^({_LOCATION})"
        rf":([0-9]+): ({_EXC_TYPE})[ \t]*$",
        _MARK + r"\1:\2: \3",
    ),
    (  # separators of exception groups and repeated frames
        r"(?m)^([ \t|+\-]*(?:-+ (?:[0-9]{1,4}|\.\.\.) -+|-+|\[Previous line repeated [0-9]+"
        r" more times?\]|and [0-9]+ more exceptions?))[ \t]*$",
        _MARK + r"\1",
    ),
    (  # pytest's location line: tests/test_x.py:6: AssertionError
        rf"(?m)^[^\s:{_MARK}]+\.py:([0-9]+): ({_EXC_TYPE})[ \t]*$",
        _MARK + r"<user-code>:\1: \2",
    ),
    (rf"(?m)^([ \t|]*)({_EXC_TYPE})(?::[^\n]*)?$", _MARK + r"\1\2"),  # the type, no message
    (rf"(?m)^[^{_MARK}\n][^\n]*\n?", ""),  # every other line: source, messages, notes
    (_MARK, ""),
    (r"\n+$", ""),
)
"""Stack-trace text as frames, sentences and types (:func:`optel.anonymize.exceptions.scrub_stacktrace`)."""

NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"(?s)-----BEGIN [A-Z0-9 ]+-----.*", "?"),
    (r"'[^']*'?|\"[^\"]*\"?|`[^`]*`?", "?"),  # quoted strings
    (r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]*", "<url>"),
    (r"[^\s]*(?:@|%40)[^\s]*", "?"),  # an address
    (
        r"(?i)\b[\w.+\-]+\s+(?:at|\[at\]|\(at\))\s+[\w\-]+(?:\s+(?:dot|\[dot\]|\(dot\))\s+[\w\-]+)+",
        "?",
    ),
    (r"[^\s:]*[/\\][^\s:]*|~[^\s]+", "<path>"),
    (
        r"(?i)\b(bearer|basic|token|password|passwd|pwd|pass|secret|apikey|api_key|key|auth)(\s+|[:=]\s*)[^\s]+",
        r"\1\2?",
    ),
    (r"=[^\s,;&)?]+", "=?"),  # key=value: the value
    (
        r"\b(?:gh[pousr]_|github_pat_|glpat-|hf_|sk-|xox[abposr]-|AKIA|ASIA|AIza|eyJ)[A-Za-z0-9_.\-]{6,}",
        "?",
    ),
    (r"[0-9a-fA-F]{20,}", "?"),
    (
        r"(?i)\b[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){5}\b|\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b",
        "?",
    ),
    (r"[\w\-]+(?:\.[\w\-]+)+\.(?:com|net|org|edu|gov|internal|local|lan|corp|io)\b", "?"),  # hosts
    (r"\w*[0-9]{6,}\w*", "?"),
    (r"(^|[^\w.\-])[+\-]?\.?[0-9][\w.\-]*", r"\1?"),  # numbers (not a word's digits)
    (r"\s+", " "),
    (r"(?s)^(.{200}).+", r"\1…"),
)
"""A name as an identifier (:func:`optel.anonymize.shapes.name`, its RE2 part)."""

TEXT_RULES: tuple[tuple[str, str], ...] = (
    (r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*-----|$)", "<secret>"),
    (r"\b([A-Za-z][A-Za-z0-9+.\-]{1,15}://)[^\s\"'<>`]+", r"\1<host>/<path>"),
    (r"(?i)\b(authorization|proxy-authorization|x-api-key|api-key|cookie|set-cookie)(\s*[:=]\s*)[^\n\"'}]*", r"\1\2<secret>"),
    (r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", "<secret>"),
    (r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_\-]{16,}|xox[abposr]-[A-Za-z0-9\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|npm_[A-Za-z0-9]{20,}|pypi-[A-Za-z0-9_\-]{20,})", "<secret>"),
    (r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b", "<secret>"),
    (r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{8,}", r"\1\2<secret>"),
    (r"(?i)([\w.\-]*(?:pass|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|auth|cred|cookie|salt)[\w.\-]*[\"']?\s*[=:]\s*)(?:\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"'}\]),;]+)", r"\1<secret>"),
    (r"(?i)\b((?:user(?:[_\-]?name)?|login|owner|email|account|customer|author)[\"']?\s*[=:]\s*)(?:\"[^\"\n]*\"?|'[^'\n]*'?|[^\s\"'}\]),;]+)", r"\1<user>"),
    (r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", "<email>"),
    (r"/(?:home|Users|export/home|root)/[^/\s\"'<>:]+", "<home>"),
    (r"(?i)\b[A-Z]:[\\/]+(?:Users|Documents and Settings)[\\/]+[^\\/\s\"'<>:]+", "<home>"),
    (r"~[A-Za-z0-9_.\-]*/", "<home>/"),
    (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
    (r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", "<ssn>"),
    (r"\b(?:[0-9][ \-]?){12,18}[0-9]\b", "<card>"),
    (r"(?i)\b[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){5}\b", "<mac>"),
    (r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b", "<ip>"),
    (r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{0,4}\b", "<ip>"),
    (r"\+[0-9]{1,3}[ .\-]?(?:\([0-9]{1,5}\)[ .\-]?)?[0-9]{1,5}(?:[ .\-]?[0-9]{1,5}){1,5}", "<phone>"),
    (r"\b[0-9]{9,}\b", "<number>"),
    (r"(?i)\b[0-9a-f]{20,}\b", "<hex>"),
    (r"[\w\-]+(?:\.[\w\-]+)+\.(?:com|net|org|edu|gov|internal|local|lan|corp|io)\b", "<host>"),
    (r"(?s)^(.{1000}).+", r"\1…"),
)  # fmt: skip
"""Free text as optel's text kind scrubs it (:data:`optel.anonymize.values.RULES`, its RE2 part)."""

_TEMPLATE = r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*[0-9*]*(?:\.[0-9*]+)?[sdirfgeExXoc%]"
"""A ``logging`` placeholder: a body holding one is a template (the call had arguments)."""


def _rules(path: str, rules: Iterable[tuple[str, str]]) -> list[str]:
    return [_replace(path, p, r) for p, r in rules]


def _marked(valid: str, placeholder: str) -> tuple[tuple[str, str], ...]:
    """A value not matching ``valid`` (anchored) becomes ``placeholder``: marked when
    valid, replaced when not marked, unmarked (RE2 has no negative look-ahead)."""
    return (
        (_MARK, ""),
        (f"(?s)^({valid})$", _MARK + r"\1"),
        (f"(?s)^(?:[^{_MARK}].*)?$", placeholder),
        (_MARK, ""),
    )


def kind_rules(kind: Kind, free_text: bool = False) -> tuple[tuple[str, str], ...] | None:
    """The rewrites (pattern, replacement) that make a string value fit ``kind``
    at the gateway, or ``None`` for the token kinds (checked together,
    :data:`TOKEN_KINDS`). Each is a fixpoint on what optel itself sends. A kind
    optel adds (an entry in ``optel.anonymize.fit.FITTERS``) needs its rules here:
    tests/unit/test_gateway.py fails until it has them."""
    from .anonymize import reduce

    cut = (rf"(?s)^(.{{{reduce.MAX_REDUCED}}}).+", r"\1…")
    name = kind.name
    if name in TOKEN_KINDS:
        return None
    if name == "at_send":  # optel.install.id: a random uuid4 the destination adds
        return _marked(
            "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", "<not-id>"
        )
    if name == "url":
        return ((reduce.NOT_URL, "<not-url>"), *reduce.URL_RULES, cut)
    if name == "route":
        return (*reduce.ROUTE_RULES, cut)
    if name == "statement":
        return (*reduce.STATEMENT_RULES, cut)
    if name == "location":
        return (
            (r"\\", "/"),
            (r"^.*/(?:site|dist)-packages/", "site-packages/"),
            (r"^.*/lib/python[0-9.]*/", "<stdlib>/"),
            *_marked(_LOCATION, "<user-code>"),
        )
    if name == "labels":
        part = r"[A-Za-z0-9_.:+\-]{1,64}"
        return _marked(f"{part}(?:{re.escape(kind.sep)}{part})*", "<not-label>")
    if name == "stacktrace":
        return STACKTRACE_RULES
    if name == "name":
        return NAME_RULES
    if name == "text" or (name == "message" and free_text):
        return TEXT_RULES
    raise ValueError(
        f"the gateway has no rules for the {name} kind: add them to optel.gateway.kind_rules"
    )


# -- the configuration ---------------------------------------------------------------------

_SIGNALS = {
    # statements key: (the record context, its attributes, its name field)
    "trace": (("span", "span.name"), ("spanevent", "spanevent.name")),
    "metric": (("datapoint", None),),
    "log": (("log", "log.event_name"),),
}
_RESOURCE_KEYS = ("service.", "telemetry.", "os.type", "process.runtime.", "optel.")
"""Resources carry optel's facts and the service's name and version: keys of
these families only (others are dropped from resources, whatever their kind)."""


def allowed(declarations: Declarations | None = None, free_text: bool = False) -> dict[str, Kind]:
    """Every key that can leave, with its kind: exactly what optel sends."""
    from .anonymize import Anonymizer
    from .kinds import Declarations as _Declarations
    from .kinds import Text

    decl = declarations.copy() if declarations is not None else _Declarations()
    decl.free_text = decl.free_text or free_text
    kinds = Anonymizer(decl).kinds
    if decl.free_text:
        kinds = {k: (Text if v.name == "message" else v) for k, v in kinds.items()}
    else:
        kinds = {k: v for k, v in kinds.items() if v.name != "message"}
    return dict(sorted(kinds.items()))


def _group(context: str, statements: Sequence[str], condition: str = "") -> list[str]:
    lines = [f"      - context: {context}"]
    if condition:
        lines.append("        conditions:")
        lines.append(f"          - {_yaml(condition)}")
    lines.append("        statements:")
    lines += [f"          - {_yaml(s)}" for s in statements]
    return lines


def _yaml(statement: str) -> str:
    # the collector expands ${...} in its config: every $ doubled; YAML single quotes
    return "'" + statement.replace("$", "$$").replace("'", "''") + "'"


TOKEN_KINDS = frozenset(
    {"label", "oneof", "number", "bool", "version", "path", "hashed", "fingerprint"}
)
"""Kinds whose every value, as optel sends it, is one token: a label, a closed
set's value (``GET``, ``<=10``), a version, a path kind (``file:.onnx@home``), a
hash (numbers and bools are no strings). The gateway checks the string values
of all their keys together, in one pass (one group per kind costs twice the
CPU): an IPv4 address never passes; a version, a hash or a path kind passes as
it is; any other value must
pass the label rules' RE2 part, else it becomes ``<not-label>`` (a sentence, a
path, an address, a long digit run, a secret). A token outside a closed set, or
under a number key, passes."""

_SHAPED = "\u241f"  # marks a value of a known token shape (a second mark: see _MARK)
_IPV4 = r"(?:^|[^0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:[^0-9]|$)"
_TOKEN_RULES: tuple[tuple[str, str], ...] = (
    (f"[{_MARK}{_SHAPED}]", ""),
    (rf"(?s)^.*{_IPV4}.*$", "<not-label>"),  # an address, whatever else it looks like
    (rf"(?s)^((?:{_VERSION_RE})|h:[0-9a-f]{{16}}|<hashed>|{_PATH_KIND})$", _SHAPED + r"\1"),
    (r"(?s)^([A-Za-z0-9_.:+\-@<>=]{1,64})$", _MARK + r"\1"),  # label-shaped
    (rf"(?s)^{_MARK}.*(?:{_LABEL_BAD}).*$", "<not-label>"),
    (f"(?s)^(?:[^{_MARK}{_SHAPED}].*)?$", "<not-label>"),
    (f"[{_MARK}{_SHAPED}]", ""),
)


_CONDITIONS_MAX = 16
"""A group of more keys runs on every record: a lookup per key would cost more
than copying the attributes once."""


def _bulk_group(
    context: str, attrs: str, keys: Sequence[str], rules: Iterable[tuple[str, str]]
) -> list[str]:
    """``rules`` on the string values of ``keys``: copied to the context's cache,
    rewritten together and written back. The group runs only when one of the
    keys is there, so the cost follows the keys a record has, not the hundreds a
    gateway allows."""
    cache = f'{context}.cache["v"]'
    statements = [
        f"set({cache}, {attrs})",
        f"keep_keys({cache}, [{', '.join(_s(k) for k in keys)}])",
        *(f'replace_all_patterns({cache}, "value", {_s(p)}, {_s(_repl(r))})' for p, r in rules),
        f'merge_maps({attrs}, {cache}, "update")',
    ]
    lines = [f"      - context: {context}"]
    if len(keys) <= _CONDITIONS_MAX:
        lines.append("        conditions:")
        lines += [f"          - {_yaml(f'{attrs}[{_s(k)}] != nil')}" for k in keys]
    lines.append("        statements:")
    lines += [f"          - {_yaml(st)}" for st in statements]
    return lines


def _attribute_groups(
    context: str, attrs: str, kinds: dict[str, Kind], free_text: bool
) -> list[str]:
    """One group per rule set: the token kinds, then one per other kind."""
    by_rules: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for key, kind in kinds.items():
        rules = kind_rules(kind, free_text)
        by_rules.setdefault(rules if rules is not None else _TOKEN_RULES, []).append(key)
    lines: list[str] = []
    for rules, keys in by_rules.items():
        lines += _bulk_group(context, attrs, keys, rules)
    return lines


def _name_group(context: str, path: str) -> list[str]:
    return _group(context, _rules(path, NAME_RULES))


def _transform(kinds: dict[str, Kind], free_text: bool) -> list[str]:
    resource_kinds = {k: v for k, v in kinds.items() if k.startswith(_RESOURCE_KEYS)}
    keep = "^(?:" + "|".join(re.escape(k) for k in resource_kinds) + ")$"
    lines = ["  transform:", "    error_mode: ignore"]
    for signal, contexts in _SIGNALS.items():
        lines.append(f"    {signal}_statements:")
        lines += _group("resource", [f"keep_matching_keys(resource.attributes, {_s(keep)})"])
        lines += _attribute_groups("resource", "resource.attributes", resource_kinds, free_text)
        lines += _group("scope", ['delete_matching_keys(scope.attributes, ".*")'])
        lines += _name_group("scope", "scope.name")
        if signal == "trace":
            status = (
                _rules("span.status.message", TEXT_RULES)
                if free_text
                else ['set(span.status.message, "") where span.status.message != ""']
            )
            lines += _group("span", status)
        if signal == "metric":
            lines += _name_group("metric", "metric.name")
            lines += _group("metric", _rules("metric.description", TEXT_RULES))
            lines += _group(
                "metric",
                [_set_unless("metric.unit", "", r"^[A-Za-z0-9{}/.*%^_\-\[\]]{0,32}$")],
            )
        if signal == "log":
            body = [
                'set(log.body, "") where log.body != nil and not IsString(log.body)',
            ]
            if not free_text:
                body.append(_set_unless("log.body", "", _TEMPLATE))
            lines += _group("log", body + _rules("log.body", TEXT_RULES))
        for context, name in contexts:
            if name is not None:
                lines += _name_group(context, name)
            lines += _attribute_groups(context, f"{context}.attributes", kinds, free_text)
    return lines


def _redaction(kinds: dict[str, Kind]) -> list[str]:
    lines = [
        "  # The allowlist gate: only these keys pass, in every resource, scope, span,",
        "  # span event, log record and data point; it runs last before batch, so",
        "  # nothing after it can add a key. blocked_values masks what a value rule",
        "  # above might have missed (****). summary: info adds redaction.redacted.count",
        "  # to what lost a key: a sender sent more than optel would.",
        "  redaction: &redaction",
        "    allow_all_keys: false",
        "    allowed_keys:",
    ]
    lines += [f"      - {k}" for k in kinds]
    lines += [
        "    blocked_values:",
        "      - '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*[.][A-Za-z]{2,}'  # e-mail",
        r"      - '\b(AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b'  # AWS access key id",
        r"      - '\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})'  # GitHub token",
        r"      - '\beyJ[A-Za-z0-9_-]{4,}[.][A-Za-z0-9_-]{4,}[.][A-Za-z0-9_-]*'  # JWT",
        r"      - '/(home|Users|export/home)/[^/\s<>:{]+'  # POSIX home folder",
        r"      - '(?i)\b[A-Z]:[\\/]+(Users|Documents and Settings)[\\/]+[^\\/\s<>:]+'  # Windows home",
        "    summary: info",
        "",
        "  # The same gate for metrics, without the counts: an attribute added to a",
        "  # data point would split its time series.",
        "  redaction/metrics:",
        "    <<: *redaction",
        "    summary: silent",
    ]
    return lines


_HEAD = """\
# optel gateway: an OpenTelemetry Collector between optel installs (and any
# other OTLP sender) and storage. GENERATED from optel's own rules by
#   optel gateway-config{args}
# (src/optel/gateway.py): do not edit, run `make gateway`.
# tests/integration/test_gateway_generated.py fails when this file and the
# generator's output differ.
#
#   otelcol-optel --config collector-config/gateway.yaml            (files)
#   otelcol-optel --config collector-config/gateway.yaml \\
#                 --config collector-config/gateway-forward.yaml    (upstream)
#
# Every pipeline: memory_limiter -> transform -> redaction -> batch.
#   transform  each allowed key's value made to fit its kind, as on the
#              machine: URLs, routes and queries reduced by optel's own rules,
#              source files as module-relative locations, stack traces as
#              frames and types, names as identifiers, the other kinds checked
#              as tokens; span status messages dropped, log bodies kept only
#              when they are templates; names of spans, events, scopes and
#              metrics reduced to identifiers
#   redaction  the allowlist gate: only the keys optel sends survive
#
# Endpoints and output files come from the environment (defaults shown). For
# collector v0.161.0 (builder-config.yaml). What the processors cover, and
# what not: collector-config/README.md.

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${{env:OPTEL_GW_GRPC_ENDPOINT:-127.0.0.1:4317}}
        max_recv_msg_size_mib: 4
      http:
        endpoint: ${{env:OPTEL_GW_HTTP_ENDPOINT:-127.0.0.1:4318}}
        max_request_body_size: 4194304  # bytes; optel sends small batches

processors:
  # First in every pipeline: refuse data (the sender retries later: optel
  # keeps it in its spool) before the process runs out of memory.
  memory_limiter:
    check_interval: 1s
    limit_percentage: 75
    spike_limit_percentage: 20

"""

_TAIL = """
  batch:
    timeout: 1s
    send_batch_size: 8192
    send_batch_max_size: 16384

exporters:
  # One file exporter per signal, <OPTEL_GW_FILE>.{traces,metrics,logs}.json
  # (OTLP JSON, one export request per line). A single `file` exporter
  # shared by the three pipelines panics on SIGTERM in v0.161.0 (nil writer
  # in fileWriter.export: it is shut down with the first pipeline while
  # another pipeline's batch processor still flushes into it). Separate
  # instances each stop after their own pipeline has drained.
  file/traces:
    path: ${env:OPTEL_GW_FILE:-./otelcol-out}.traces.json
    format: json  # OTLP JSON, one export request per line
    flush_interval: 100ms
  file/metrics:
    path: ${env:OPTEL_GW_FILE:-./otelcol-out}.metrics.json
    format: json  # OTLP JSON, one export request per line
    flush_interval: 100ms
  file/logs:
    path: ${env:OPTEL_GW_FILE:-./otelcol-out}.logs.json
    format: json  # OTLP JSON, one export request per line
    flush_interval: 100ms
  debug:
    verbosity: basic  # one line per batch in the collector's log: counts only

service:
  telemetry:
    metrics:
      level: none  # no internal metrics port: several gateways on one host must not collide
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, transform, redaction, batch]
      exporters: [file/traces, debug]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, transform, redaction/metrics, batch]
      exporters: [file/metrics, debug]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, transform, redaction, batch]
      exporters: [file/logs, debug]
"""


def render(
    declarations: Declarations | None = None, free_text: bool = False, args: str = ""
) -> str:
    """The gateway's configuration (YAML text) for tools with ``declarations``;
    ``args`` is the command line named in its header."""
    kinds = allowed(declarations, free_text)
    lines = _transform(kinds, free_text) + [""] + _redaction(kinds)
    return _HEAD.format(args=args) + "\n".join(lines) + "\n" + _TAIL


def load(spec: str) -> Declarations:
    """``module:NAME``: the declarations a tool passes to ``optel.init`` (a mapping of
    keys to kinds, a list of keys, or a :class:`optel.Declarations`)."""
    import importlib

    from .kinds import Declarations as _Declarations

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"--declarations takes MODULE:NAME, got {spec!r}")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, _Declarations):
        return obj
    if isinstance(obj, (list, tuple)):
        return _Declarations(labels=obj)
    return _Declarations(obj)


def command(args: argparse.Namespace) -> int:
    """``optel gateway-config [--declarations MODULE:NAME ...] [--free-text]``."""
    import sys

    from .kinds import Declarations as _Declarations

    decl = _Declarations()
    try:
        for spec in args.declarations:
            decl.add(load(spec))
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"optel gateway-config: {exc}", file=sys.stderr)
        return 2
    named = "".join(f" --declarations {s}" for s in args.declarations)
    named += " --free-text" if args.free_text else ""
    try:
        text = render(decl, args.free_text, named)
    except ValueError as exc:  # a kind the gateway has no rules for: optel's own bug
        print(f"optel gateway-config: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


__all__ = ["render", "allowed", "load", "kind_rules", "command", "TOKEN_KINDS"]
