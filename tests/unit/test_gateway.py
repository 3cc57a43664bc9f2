"""The gateway generator (optel.gateway), without a collector: what it allows and
how it writes rules. The collector runs them in tests/integration/test_gateway_generated.py."""

from __future__ import annotations

import itertools
import re

import pytest

import optel
from optel import gateway, semconv
from optel.anonymize import Anonymizer, reduce
from optel.gateway import kind_rules
from optel.kinds import OPTEL_KEYS, Declarations, semconv_keys

DEMO = "optel._demo_tool:ATTRIBUTES"


def test_the_allowlist_is_exactly_what_optel_sends() -> None:
    decl = gateway.load(DEMO)
    allowed = gateway.allowed(decl)
    sent = {k: v for k, v in Anonymizer(decl).kinds.items() if v.name != "message"}
    assert allowed == sent
    assert set(OPTEL_KEYS) <= set(allowed)  # optel's own keys, new ones included, from one table
    assert set(semconv_keys()) <= set(allowed)
    assert {"framework", "input_path", "model.size_mb", "optimize", "duration_ms"} <= set(allowed)
    for key, _ref in semconv.NEVER:
        assert key not in allowed
    assert "exception.message" not in allowed  # free text is off by default
    assert gateway.allowed(decl, free_text=True)["exception.message"].name == "text"


def test_a_new_optel_key_reaches_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTEL_KEYS, "optel.install.id", optel.Label("an anonymous install id"))
    assert "      - optel.install.id" in gateway.render().splitlines()


def test_every_kind_that_can_leave_has_gateway_rules() -> None:
    decl = Declarations(
        {
            "a": optel.Label,
            "b": optel.Number,
            "c": optel.Bool,
            "d": optel.Version,
            "e": optel.PathKind,
            "f": optel.Hashed,
            "g": optel.Text,
            "h": ("x", "y"),
        },
        free_text=True,
    )
    for kind in gateway.allowed(decl, free_text=True).values():
        kind_rules(kind, free_text=True)  # raises for a kind the gateway cannot check


def _apply(rules: tuple[tuple[str, str], ...] | None, value: str) -> str:
    """The gateway's rules run by Python's re: they are written in the subset
    both engines read alike (the collector runs them in the integration test)."""
    for pattern, replacement in rules or gateway._TOKEN_RULES:
        value = re.sub(pattern, replacement, value)
    return value


def test_what_optel_sends_is_a_fixpoint_of_the_rules() -> None:
    for key, kind in gateway.allowed(gateway.load(DEMO)).items():
        example = kind.example
        if isinstance(example, str):
            assert _apply(kind_rules(kind), example) == example, (key, example)


@pytest.mark.parametrize(
    "kind,raw",
    [
        ("url.full", "https://bob:pw@api.corp.example.com:8443/v1/orders/12345?token=x#f"),
        ("url.full", "not a url"),
        ("http.target", "/users/alice/repos?x=1"),
        ("db.statement", "SELECT * FROM users WHERE email = 'alice@example.com' AND id = 42"),
    ],
)
def test_reductions_are_the_same_rules_on_both_sides(kind: str, raw: str) -> None:
    k = semconv_keys()[kind]
    from optel.anonymize.fit import fit

    assert _apply(kind_rules(k), raw) == fit(k, raw)[0]


def test_not_url_is_exactly_what_url_shape_refuses() -> None:
    shape, not_url = re.compile(reduce.URL_SHAPE), re.compile(reduce.NOT_URL)
    for n in range(6):
        for chars in itertools.product("a1:/+ ", repeat=n):
            v = "".join(chars)
            assert (shape.match(v) is None) == (not_url.match(v) is not None), repr(v)


def test_statements_quote_for_ottl_and_the_collector() -> None:
    assert gateway._repl(r"\1/{}") == "${1}/{}"
    assert gateway._yaml('replace_pattern(x, "a$", "${1}\'")') == (
        "'replace_pattern(x, \"a$$\", \"$${1}''\")'"
    )
    assert gateway._s('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        gateway._repl("$0")


def test_load_refuses_what_is_not_a_declaration() -> None:
    with pytest.raises(ValueError):
        gateway.load("optel._demo_tool")
    assert list(gateway.load("optel.env:OTEL_EXPORTER_VARIABLES")) == [
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
    ]


def test_optels_stack_traces_are_a_fixpoint_of_the_gateways_rules() -> None:
    """Whatever line shapes optel keeps, the gateway keeps as they are."""
    from optel.anonymize.exceptions import scrub_stacktrace

    chained = """Traceback (most recent call last):
  File "/home/alice/tool.py", line 6, in <module>
    open("/home/alice/nope.txt")
  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode
FileNotFoundError: [Errno 2] No such file: '/home/alice/nope.txt'

During handling of the above exception, another exception occurred:

  + Exception Group Traceback (most recent call last):
  |   File "/opt/v/lib/python3.11/site-packages/anyio/x.py", line 3, in run
  | ExceptionGroup: boom (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: alice
    +---------------- ... ----------------
    | and 3 more exceptions
    +------------------------------------
  [Previous line repeated 2 more times]
test_tool.py:7: AssertionError
"""
    optel_sent = scrub_stacktrace(chained)
    assert "<stdlib>/json/decoder.py:337 in decode" in optel_sent
    assert _apply(gateway.STACKTRACE_RULES, optel_sent) == optel_sent.strip("\n")


def test_every_kind_optel_can_fit_has_gateway_rules() -> None:
    """A kind optel adds (fit.FITTERS) must get gateway rules, or this fails."""
    from optel.anonymize.fit import FITTERS
    from optel.kinds import Kind

    for name in FITTERS:
        kind = Kind(name, "", "x", values=("x",), sep=",")
        kind_rules(kind, free_text=True)


def test_a_hash_or_a_dated_version_is_not_taken_for_a_digit_run() -> None:
    from optel.kinds import Hashed, Version

    for kind, value in ((Hashed, "h:3f2a912345678a06"), (Version, "20241022")):
        assert _apply(kind_rules(kind), value) == value
    # one pass checks every token kind: what is no version, hash or path kind
    # must pass the label rules
    for value in ("tel-5551234567", "alice@example.com", "10.0.0.7", "a b", "/home/x"):
        assert _apply(kind_rules(optel.Label), value) == "<not-label>", value
    for value in ("20241022", "resnet50", "<=10", "file:.onnx@home", "GET"):
        assert _apply(kind_rules(optel.Label), value) == value
