"""The "what we collect" page: its sources, and that making it changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import optel
from optel import collected, consent, kinds, system, testing
from optel import page as pages
from optel.anonymize import fit
from optel.consent.prompt import question_text
from tests.conftest import Granted

SETUP: dict[str, Any] = dict(
    app="pagetool",
    version="1.0",
    attributes={"framework": ("onnx", "tflite"), "input": optel.PathKind, "api_token": str},
    events={"exported": "an export finished"},
    spans=["export"],
    metrics={"exports": "exports (counter)"},
)


def test_every_example_on_the_page_fits_its_kind() -> None:
    """'An example of what is sent' is one: each example passes its own kind unchanged."""
    table = {**kinds.OPTEL_KEYS, **kinds.BUILTIN_KEYS}
    for key, kind in table.items():
        if kind.name in ("stacktrace", "fingerprint", "message", "at_send"):
            continue  # optel computes these itself; no value is fitted to them
        assert fit.fit(kind, kind.example) == (kind.example, False), key
    for kind in (optel.Label, optel.Number, optel.Bool, optel.Version, optel.Hashed):
        assert fit.fit(kind, kind.example)[1] is False, kind
    assert fit.fit(optel.Label("x", example="fp16"), "fp16") == ("fp16", False)


def test_the_page_knows_every_key_optel_sends() -> None:
    """Every optel key and built-in key is on the page (a new one must be described)."""
    page = optel.describe(**SETUP, capture_crashes=True, otlp_endpoint="http://c.internal:4318")
    for key in [*kinds.OPTEL_KEYS, *kinds.BUILTIN_KEYS]:
        if key in pages.NOT_FROM_TOOLS or key == "exception.message":
            continue
        assert f"| `{key}` |" in page, key
    assert "`exception.message`" not in page  # free text: off
    free = optel.describe(**SETUP, free_text=True)
    assert "| `exception.message` |" in free and "opted in to free text" in free


def test_the_system_facts_and_the_resource_are_the_ones_sent(granted: Granted) -> None:
    assert set(pages.FACT_KEYS) == set(system.facts())
    t = granted()
    t.event("used")
    t.flush(0)
    (row,) = testing.pending()
    sent = set(json.loads(row.payload)["resource"])  # as sent: after the anonymizer
    assert sent <= set(pages.RESOURCE_KEYS), sent - set(pages.RESOURCE_KEYS)
    assert {"service.name", "optel.version", "telemetry.sdk.version"} <= sent


def test_declared_names_keys_and_what_is_never_sent() -> None:
    facts = pages.data(optel.telemetry.prepare(**SETUP)[0])
    names = {(n["what"], n["name"]): n for n in facts["names"]}
    assert names[("event", "exported")]["description"] == "an export finished"
    assert ("span", "export") in names and ("metric", "exports") in names
    assert ("event", "run_start") in names and names[("event", "run_start")]["source"] == "optel"
    tool = {k["key"]: k for k in facts["keys"]["tool"]}
    assert tool["framework"]["values"] == ["onnx", "tflite"]
    assert tool["input"]["example"] == "file:.onnx@home"
    assert tool["api_token"]["sent"] is False  # declared, but it names a secret
    text = pages.render(optel.telemetry.prepare(**SETUP)[0])
    assert "| `api_token` | label | **never sent**" in text


def test_the_page_is_the_tools_own_configuration_not_this_machines(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docs build gives the same page wherever it runs."""
    before = optel.describe(**SETUP)
    monkeypatch.setenv("OPTEL_DESTINATIONS", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.internal:4318")
    monkeypatch.setenv("OPTEL_SPOOL_MAX_RECORDS", "50")
    optel.settings.update({"exit_budget_ms": 900})
    assert optel.describe(**SETUP) == before
    assert "at most 10,000 records, 20 MB and 7 days" in before and "300 ms" in before
    ga4 = optel.describe(**SETUP, ga4_measurement_id="G-1", ga4_api_secret="s", exit_budget_ms=50)
    assert "Google Analytics 4" in ga4 and "| in GA4 |" in ga4 and "50 ms" in ga4


def test_describe_decides_asks_and_writes_nothing(home: Path) -> None:
    page = optel.describe(**SETUP, policy="opt-out", prompt=True)
    assert page.startswith("# What pagetool sends")
    assert not home.exists()
    with pytest.raises(ValueError, match="events: ''"):
        optel.describe(**{**SETUP, "events": [""]})
    with pytest.raises(ValueError, match="spans must be a list of names"):
        optel.describe(**{**SETUP, "spans": "export"})
    with pytest.raises(TypeError, match="unexpected argument 'colour'"):
        optel.describe(**SETUP, colour="blue")


def test_the_notice_the_question_and_the_page_say_the_same() -> None:
    """One source of words: the notice's first line is the page's summary."""
    page = optel.describe(**SETUP, policy="opt-out")
    notice = consent.notice_text("pagetool")
    first = notice.splitlines()[0]
    assert first == collected.in_short("pagetool")
    assert f"**In short.** {first}" in page
    assert "\n".join(f"> {line}" for line in notice.splitlines()) in page
    assert "scrubbed stack traces" not in notice  # what the old notice promised, untrue now
    question = question_text("pagetool", "opt-in", 10)
    assert collected.in_short("pagetool", asking=True) in question
    # a tool that sends free text says so, in the notice and on the page alike
    free = consent.notice_text("pagetool", free_text=True)
    assert "free text" not in free.splitlines()[0] and "messages" not in free.splitlines()[0]
    assert "free text" in consent.notice_text("pagetool").splitlines()[0]


def test_tracked_commands_are_declared_with_or_without_consent(
    granted: Granted, home: Path
) -> None:
    off = optel.init(app="offtool")

    @off.track("convert", params=["framework"])
    def convert(framework: str = "onnx") -> None:
        pass

    assert "framework" in off.declarations
    assert ("command", "convert") in {(n.what, n.name) for n in off.declarations.names()}
    on = granted()
    with on.track("export", target="tflite"):
        on.event("surprise")
    page = on.describe()
    assert "| `export` | command |" in page and "| `target` | label |" in page
    assert "| `surprise` | event | seen in use, not declared by the tool |" in page


def test_names_are_bounded_copied_and_merged() -> None:
    d = kinds.Declarations(events=["a"])
    for i in range(kinds.MAX_USED + 50):
        d.use("event", f"n{i}")
    assert len([n for n in d.names() if n.used]) == kinds.MAX_USED
    copy = d.copy()
    copy.declare_name("span", "s", "a span")
    assert ("span", "s") not in {(n.what, n.name) for n in d.names()}
    merged = kinds.Declarations()
    merged.add(copy)
    assert {(n.what, n.name) for n in merged.names() if n.declared} == {
        ("event", "a"),
        ("span", "s"),
    }
    d.declare_name("nonsense", "x")  # never raises: left out
    d.declare_name("event", "")
    assert ("nonsense", "x") not in {(n.what, n.name) for n in d.names()}


def test_every_command_the_page_and_the_notice_name_exists() -> None:
    """A message is a promise: each command they tell a user to type parses."""
    import argparse
    import re
    import shlex

    from optel import cli, commands

    def check(text: str, prog: str, parser: argparse.ArgumentParser) -> int:
        found = set(re.findall(rf"[`']({re.escape(prog)} [a-z][^`']*)[`']", text))
        for line in found:
            parser.parse_args(shlex.split(line)[1:])  # exits 2 if it does not
        return len(found)

    for policy in ("opt-in", "opt-out"):
        text = optel.describe(**SETUP, policy=policy) + consent.notice_text("pagetool")
        assert check(text, "optel", cli.build_parser()) >= 4
        commands.register("pagetool", "pagetool telemetry")
        tool = argparse.ArgumentParser(prog="pagetool")
        cli.mount(tool.add_subparsers(), app="pagetool")
        text = optel.describe(**SETUP, policy=policy) + consent.notice_text("pagetool")
        assert check(text, "pagetool telemetry", tool) >= 5
        commands.reset()
