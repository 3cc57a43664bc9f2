"""``optel describe``: the page a tool ships agrees with what ``optel show`` lists.

A sample tool runs for real (consent granted, records kept in the spool);
every name and attribute key in what ``optel show`` lists must be on the
tool's page (Markdown) and in its facts (``--json``), with a kind. The page
is written from declarations, so a tool that starts sending a name it never
declared, or optel adding a key the page does not know, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, _scrubbed_environ, grant, run_cli, run_on_terminal, run_python


def _walk_keys(payload: Any) -> Iterator[tuple[str, str]]:
    """(where, key) for every attribute key of an optel record (local destination)."""
    for key in payload.get("attributes") or {}:
        yield "attributes", key
    for key in payload.get("resource") or {}:
        yield "resource", key
    for event in payload.get("events") or ():
        for key in event.get("attributes") or {}:
            yield "span event", key
    for point in payload.get("points") or ():
        for key in point.get("attributes") or {}:
            yield "metric point", key


def _walk_names(payload: Any) -> Iterator[tuple[str, str]]:
    yield payload["signal"], payload["name"]
    for event in payload.get("events") or ():
        yield "span event", event["name"]


def _page_keys(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for group in facts["keys"].values() for item in group}


def _shown(home: Path, *extra: str) -> list[dict[str, Any]]:
    r = run_cli("show", "--json", "--limit", "100000", *extra, home=home)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _describe(home: Path, *args: str, cwd: Path | None = None) -> str:
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(
        [sys.executable, "-m", "optel", "describe", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_demo_page_lists_every_name_and_key_show_lists(home: Path) -> None:
    grant(home, "democonvert")
    run = run_python("from optel._demo_tool import main; main()", home)
    assert run.returncode == 0, run.stderr
    rows = _shown(home)
    assert len(rows) >= 10  # spans, events, metrics, a failure report, run_start/run_end
    page = _describe(home, "optel._demo_tool:SETUP")
    facts = json.loads(_describe(home, "optel._demo_tool:SETUP", "--json"))
    keys = _page_keys(facts)
    names = {(n["what"], n["name"]) for n in facts["names"]}
    names |= {("event", n["name"]) for n in facts["names"] if n["what"] == "command"}
    seen_keys, seen_names = set(), set()
    for row in rows:
        payload = row["payload"]
        assert row["destination"] == "local"
        for where, key in _walk_keys(payload):
            seen_keys.add(key)
            assert key in keys, f"{key} ({where} of {payload['name']}) is not on the page"
            assert keys[key].get("sent") is not False, key
            assert f"`{key}`" in page, key
        for what, name in _walk_names(payload):
            seen_names.add((what, name))
            assert (what, name) in names, f"{what} {name!r} is sent but not on the page"
            assert f"`{name}`" in page, name
        if payload.get("report"):  # a failure report: its type and frames, as the page says
            assert set(payload["report"]) <= {"type", "frames"}
            assert "Its message is not sent" in page
    # the run exercised the page broadly: every declared attribute of the demo was sent
    declared = {k["key"] for k in facts["keys"]["tool"]}
    assert declared <= seen_keys, declared - seen_keys
    assert {("event", "run_start"), ("span", "library_work")} <= seen_names


GA4_TOOL = """
    import optel

    t = optel.init(
        app="gatool", version="3.1", ga4_measurement_id="G-TEST", ga4_api_secret="s",
        attributes={"framework": ("onnx", "tflite"), "batch.size": int},
        events={"exported": "an export finished"}, spans=["export"], metrics=["exports"],
        capture_crashes=True, exit_budget_ms=2000,
    )
    with t.track("export_command", framework="onnx"):
        with t.tracer.start_as_current_span("export", attributes={"batch.size": 8}):
            t.event("exported", framework="tflite")
        t.meter.create_counter("exports").add(1, {"framework": "onnx"})
    try:
        open("/nonexistent/model.onnx")
    except OSError as exc:
        t.error(exc)
    print(t.describe())
"""


def test_the_ga4_page_names_every_event_parameter_and_property_ga4_gets(
    tmp_path: Path, home: Path
) -> None:
    """With Google Analytics as a destination the page gives each name and key as GA4
    receives it; every event name, parameter and user property waiting for GA4 is there."""
    grant(home, "gatool")
    script = tmp_path / "gatool.py"
    script.write_text(textwrap.dedent(GA4_TOOL))
    environ = {
        **_scrubbed_environ(),
        "OPTEL_HOME": str(home),
        "PYTHONPATH": str(ROOT / "src"),
        "OPTEL_GA4_ENDPOINT": "http://127.0.0.1:9",  # nobody listens: the records wait
    }
    r = subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    page = r.stdout  # telemetry.describe() at the end of the run
    rows = [row for row in _shown(home) if row["destination"] == "ga4"]
    assert rows
    for row in rows:
        for prop in row["payload"]["user_properties"]:
            assert f"`{prop}`" in page, prop
        for event in row["payload"]["events"]:
            assert f"`{event['name']}`" in page, event["name"]
            for param in event["params"]:
                assert f"`{param}`" in page, f"{param} of {event['name']}"


USED_TOOL = """
    import optel
    from opentelemetry import trace

    t = optel.init(app="usedtool", version="1.0", allowed_attributes=["stage"],
                   events=["declared_event"])

    @t.track("build")
    def build():
        t.event("declared_event", stage="one")
        t.event("surprise_event", stage="two")  # used, never declared
        with trace.get_tracer("third.party").start_as_current_span("fetch"):
            pass

    build()
    print(t.describe())
"""


def test_a_running_tool_describes_what_it_used_and_marks_what_it_did_not_declare(
    tmp_path: Path, home: Path
) -> None:
    grant(home, "usedtool")
    script = tmp_path / "usedtool.py"
    script.write_text(textwrap.dedent(USED_TOOL))
    r = run_python(script.read_text(), home)
    assert r.returncode == 0, r.stderr
    page = r.stdout
    lines = {
        line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `")
    }
    assert "seen in use, not declared" in lines["`surprise_event`"]
    assert "seen in use, not declared" in lines["`fetch`"]
    assert "not declared" not in lines["`declared_event`"]
    assert "a tracked command" in lines["`build`"] and "not declared" not in lines["`build`"]
    assert "`third.party`" in page  # the library's instrumentation scope, seen in use
    for row in _shown(home):
        payload = row["payload"]
        for _what, name in _walk_names(payload):
            assert f"`{name}`" in page, name
        for _where, key in _walk_keys(payload):
            assert f"`{key}`" in page, key
        assert f"`{payload['scope']['name']}`" in page


CLICK_TOOL = """
    import click
    import optel
    import optel.click

    telemetry = optel.init(
        app="pagetool", version="2.0", policy="opt-out", prompt=True,
        attributes={"target": ("tflite", "coreml")},
    )


    @click.group()
    def cli():
        "A sample tool."


    @cli.command()
    @click.option("--target", default="tflite")
    @telemetry.track("export", params=["target"])
    def export(target):
        click.echo(f"exported to {target}")


    optel.click.mount(cli, app="pagetool", policy="opt-out")
    print("imported")

    if __name__ == "__main__":
        cli()
"""


def _on_terminal(argv: list[str], environ: dict[str, str], cwd: Path) -> str:
    code, out = run_on_terminal(argv, environ, cwd=cwd)
    assert code == 0, out
    return out


def test_optel_describe_reads_a_tool_without_deciding_asking_or_writing(
    tmp_path: Path, home: Path
) -> None:
    """The CLI form imports the tool's script with init() in describe mode: on a
    terminal, under the opt-out policy with prompt=True, nothing is shown, asked or
    written, yet the page has the track()ed command, its parameter and the tool's
    own command names."""
    pytest.importorskip("click")
    script = tmp_path / "pagetool.py"
    script.write_text(textwrap.dedent(CLICK_TOOL))
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    out = _on_terminal(
        [sys.executable, "-m", "optel", "describe", "pagetool.py"], environ, tmp_path
    )
    assert "imported" in out  # the module ran as a module (not as __main__: no click run)
    assert "Turn it off" not in out.split("# What pagetool sends")[0]  # no notice printed
    assert "[y/N]" not in out  # no question asked
    assert "| `export` | command |" in out
    assert "| `target` | one of |" in out
    assert "`pagetool telemetry opt-out`" in out  # the mount named the tool's commands
    assert "pagetool sends telemetry unless you refuse" in out  # its policy: opt-out
    assert not home.exists()  # nothing written for the tool

    # also by module name (from the current folder), as JSON, into a file
    target = tmp_path / "page.md"
    r = subprocess.run(
        [sys.executable, "-m", "optel", "describe", "pagetool", "-o", str(target)],
        env=environ, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert target.read_text() == out[out.index("# What pagetool sends") :].replace("\r\n", "\n")
    assert not home.exists()

    # under the tool's own command, in its own process: the same page
    command = tmp_path / "pagetool"  # as its users type it
    command.write_text(script.read_text())
    r = subprocess.run(
        [sys.executable, str(command), "telemetry", "describe"],
        env=environ, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.removeprefix("imported\n") == target.read_text()


def test_describe_says_why_it_cannot_read_a_tool(tmp_path: Path, home: Path) -> None:
    (tmp_path / "noinit.py").write_text("import optel\n\ndef main():\n    optel.init(app='x')\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('no such model')\n")
    (tmp_path / "two.py").write_text(
        "import optel\na = optel.init(app='one')\nb = optel.init(app='two')\n"
    )
    environ = {**_scrubbed_environ(), "OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}

    def describe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "optel", "describe", *args],
            env=environ, capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip

    r = describe("noinit")
    assert r.returncode == 1 and "ran no optel.init(); name what describes the tool" in r.stderr
    r = describe("broken.py")
    assert r.returncode == 1 and "importing broken.py failed: RuntimeError: no such model" in (
        r.stderr
    )
    r = describe("two")
    assert r.returncode == 1 and "pick one with --app (one, two)" in r.stderr
    r = describe("two", "--app", "TWO")
    assert r.returncode == 0 and r.stdout.startswith("# What two sends")
    r = describe("two:a")
    assert r.returncode == 0 and r.stdout.startswith("# What one sends")
    r = describe("two:nothing")
    assert r.returncode == 1 and "has no attribute 'nothing'" in r.stderr
    r = describe()
    assert r.returncode == 2 and "name the tool: MODULE[:ATTRIBUTE]" in r.stderr
    assert not home.exists()
