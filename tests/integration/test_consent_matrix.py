"""The consent matrix: real tool processes, requests counted on a loopback OTLP server.

Each scenario gets its own OPTEL_HOME and its own fake OTLP/HTTP receiver
(``tests.fakes.otlp_server``) and drives optel only through the public
surface: ``optel.init``, the ``optel`` command line and the environment.
Scenarios run a few at a time; the table of (scenario, expected, requests
counted) is printed at the end (``pytest -s``, or
``python -m tests.integration.test_consent_matrix``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.conftest import TAKE_TTY, converse_on_terminal, tool_environ
from tests.fakes.ga4_server import FakeGA4
from tests.fakes.otlp_server import OtlpServer

SENT, NONE = "sent", "none"

TOOL = """
import json, optel
t = optel.init(app={app!r}, policy={policy!r}, notice_version={nv}, prompt={prompt})
t.event("used", n=1)
t.flush(5)
print(json.dumps({{"enabled": t.enabled, "reason": t.reason}}))
"""


class Gate:
    """Counts requests as they arrive and can hold them at the door."""

    def __init__(self, server: OtlpServer):
        self.open = threading.Event()
        self.open.set()
        self.arrived = 0
        self._lock = threading.Lock()
        gate = self
        base = server._httpd.RequestHandlerClass

        class Held(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                with gate._lock:
                    gate.arrived += 1
                gate.open.wait(30)
                super().do_POST()

        server._httpd.RequestHandlerClass = Held


@dataclass
class Ctx:
    home: Path
    server: OtlpServer
    gate: Gate
    notes: list[str]
    other_requests: int = 0  # counted on another loopback server (GA4)

    def env(self, **extra: str) -> dict[str, str]:
        return tool_environ(self.home, self.server.url, **extra)

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "optel", *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def tool(
        self,
        app: str = "tool",
        policy: str = "opt-in",
        nv: int = 1,
        prompt: bool = False,
        **extra: str,
    ) -> subprocess.CompletedProcess[str]:
        code = TOOL.format(app=app, policy=policy, nv=nv, prompt=prompt)
        r = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def status(self, app: str = "tool", **extra: str) -> dict:
        return json.loads(self.cli("status", "--json", "--app", app, **extra).stdout)


@dataclass
class Scenario:
    name: str
    expected: str
    run: Callable[[Ctx], None]


def _scenarios() -> list[Scenario]:
    out: list[Scenario] = []

    def add(name: str, expected: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
        def wrap(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
            out.append(Scenario(name, expected, fn))
            return fn

        return wrap

    # -- policies x decisions x scopes ------------------------------------------------
    @add("opt-in policy, no decision", NONE)
    def _(c: Ctx) -> None:
        c.tool()
        assert not c.home.exists()  # no consent: no file written either

    @add("opt-in policy, global grant", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool()

    @add("opt-in policy, grant for this tool", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in", "--app", "tool")
        c.tool()

    @add("global grant, this tool denied (per-tool wins)", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.cli("opt-out", "--app", "tool")
        c.tool()

    @add("global denial, this tool granted (per-tool wins)", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-out")
        c.cli("opt-in", "--app", "tool")
        c.tool()

    @add("grant for another tool only", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in", "--app", "other")
        c.tool()

    @add("opt-out policy, no decision: notice once (on a terminal), then on", SENT)
    def _(c: Ctx) -> None:
        piped = c.tool(policy="opt-out")  # nobody sees a pipe: not shown, nothing sent
        assert "optel opt-out" not in piped.stderr and not c.home.exists(), piped.stderr
        first, _ = _on_tty(c, answer=None, policy="opt-out", prompt=False)
        second, _ = _on_tty(c, answer=None, policy="opt-out", prompt=False)
        assert "Turn it off with" in first, first
        assert "Turn it off with" not in second, second  # shown once
        doc = json.loads((c.home / "consent.json").read_text())
        assert "tool" in doc["notices"], doc
        c.notes.append("notice shown on the first terminal run only")

    @add("opt-out policy, newer notice_version: notice again", SENT)
    def _(c: Ctx) -> None:
        _on_tty(c, answer=None, policy="opt-out", prompt=False, nv=1)
        again, _ = _on_tty(c, answer=None, policy="opt-out", prompt=False, nv=2)
        assert "Turn it off with" in again, again

    @add("opt-out policy, global denial", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-out")
        r = c.tool(policy="opt-out")
        assert "optel opt-out" not in r.stderr  # a decision: no notice

    @add("opt-out policy, this tool denied under a global grant", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.cli("opt-out", "--app", "tool")
        c.tool(policy="opt-out")

    # -- kill switches ------------------------------------------------------------------
    for var, value in (
        ("OPTEL_DISABLED", "1"),
        ("OPTEL_DISABLED", "true"),
        ("DO_NOT_TRACK", "1"),
        ("DO_NOT_TRACK", "TRUE"),
        ("DO_NOT_TRACK", "yes"),
        ("DO_NOT_TRACK", "On"),
        ("OTEL_SDK_DISABLED", "true"),
    ):

        @add(f"grant + {var}={value}", NONE)
        def _(c: Ctx, var: str = var, value: str = value) -> None:
            c.cli("opt-in")
            r = c.tool(**{var: value})
            assert var in json.loads(r.stdout)["reason"], r.stdout
            assert var in c.status(**{var: value})["reason"]

    @add("grant + DO_NOT_TRACK=0 (not a switch)", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool(DO_NOT_TRACK="0")

    @add("opt-out policy, no decision + DO_NOT_TRACK=1: no notice", NONE)
    def _(c: Ctx) -> None:
        r = c.tool(policy="opt-out", DO_NOT_TRACK="1")
        assert "optel opt-out" not in r.stderr

    # -- CI -------------------------------------------------------------------------------
    ci_values = {"JENKINS_URL": "http://ci.example/", "TEAMCITY_VERSION": "2023.1",
                 "BITBUCKET_BUILD_NUMBER": "7", "CODEBUILD_BUILD_ID": "b:1"}  # fmt: skip
    for var in (
        "CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD",
        "JENKINS_URL", "CIRCLECI", "TRAVIS", "BUILDKITE", "TEAMCITY_VERSION",
        "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ID", "APPVEYOR", "DRONE",
    ):  # fmt: skip

        @add(f"grant + CI: {var}", NONE)
        def _(c: Ctx, var: str = var) -> None:
            c.cli("opt-in")
            r = c.tool(**{var: ci_values.get(var, "true")})
            assert "CI run" in json.loads(r.stdout)["reason"], r.stdout

    @add("grant + CI=true + OPTEL_ALLOW_CI=1", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool(CI="true", OPTEL_ALLOW_CI="1")

    @add("grant + GITHUB_ACTIONS + OPTEL_ALLOW_CI=1 + DO_NOT_TRACK=1", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool(GITHUB_ACTIONS="true", OPTEL_ALLOW_CI="1", DO_NOT_TRACK="1")

    @add("grant + CI=false (not CI)", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool(CI="false")

    # -- broken or unwritable state ----------------------------------------------------
    @add("corrupt consent.json, opt-out policy: off, one warning, kept", NONE)
    def _(c: Ctx) -> None:
        c.home.mkdir(parents=True)
        broken = '{"schema": 2, "global": {"decision": "granted"'
        (c.home / "consent.json").write_text(broken)
        r = c.tool(policy="opt-out")
        warnings = [line for line in r.stderr.splitlines() if line.startswith("optel:")]
        assert len(warnings) == 1, r.stderr
        assert (c.home / "consent.json").read_text() == broken  # not overwritten
        status = c.status(policy="opt-out")
        assert status["enabled"] is False and status["problem"], status
        c.notes.append("status: " + status["problem"][:60] + "...")

    @add("corrupt consent.json, then 'optel opt-in': kept aside, on", SENT)
    def _(c: Ctx) -> None:
        c.home.mkdir(parents=True)
        (c.home / "consent.json").write_text("\x00garbage")
        c.tool()
        assert c.cli("opt-in").returncode == 0
        aside = list(c.home.glob("consent.json.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_text() == "\x00garbage"
        assert c.status()["kept_aside"] == [str(aside[0])]
        c.tool()

    @add("unknown decision value for this tool, global grant", NONE)
    def _(c: Ctx) -> None:
        c.home.mkdir(parents=True)
        doc = {
            "schema": 2,
            "global": {"decision": "granted"},
            "apps": {"tool": {"decision": "maybe"}},
        }
        (c.home / "consent.json").write_text(json.dumps(doc))
        c.tool()

    @add("schema-1 record (older optel) with a grant: kept, migrated", SENT)
    def _(c: Ctx) -> None:
        c.home.mkdir(parents=True)
        old = {"schema": 1, "global": None,
               "apps": {"tool": {"decision": "granted", "time": 1, "source": "cli"}}}  # fmt: skip
        (c.home / "consent.json").write_text(json.dumps(old))
        c.tool()
        c.cli("opt-out", "--app", "other")  # a write migrates the file
        doc = json.loads((c.home / "consent.json").read_text())
        assert doc["schema"] >= 2 and doc["apps"]["tool"]["decision"] == "granted", doc
        assert doc["apps"]["tool"]["time"] == 1  # the user's record, untouched
        c.tool()

    @add("newer unknown schema with extra fields: decision honoured, fields kept", SENT)
    def _(c: Ctx) -> None:
        c.home.mkdir(parents=True)
        new = {"schema": 9, "future": {"x": 1},
               "global": {"decision": "granted", "time": 2, "source": "cli", "region": "eu"},
               "apps": {}}  # fmt: skip
        (c.home / "consent.json").write_text(json.dumps(new))
        c.tool()
        c.cli("opt-in", "--app", "other")
        doc = json.loads((c.home / "consent.json").read_text())
        assert doc["future"] == {"x": 1} and doc["global"]["region"] == "eu", doc

    @add("home not writable, opt-out policy: off, one warning", NONE)
    def _(c: Ctx) -> None:
        blocker = c.home.parent / "not-a-folder"
        blocker.write_text("")
        c.home = blocker / "home"  # nothing can be created under a file
        r = c.tool(policy="opt-out")
        assert len([ln for ln in r.stderr.splitlines() if ln.startswith("optel:")]) == 1, r.stderr
        failed = c.cli("opt-in")
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr

    # -- decisions taken between recording and sending ---------------------------------
    @add("records waiting, then 'optel opt-out --app': flush sends nothing", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in", "--app", "tool")
        c.tool(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OPTEL_EXIT_BUDGET_MS="200")
        assert c.status()["pending"] >= 1
        c.cli("opt-out", "--app", "tool")
        assert c.status()["pending"] == 0
        c.cli("flush")

    @add("records waiting, DO_NOT_TRACK=1 at flush: held, not sent", NONE)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.tool(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OPTEL_EXIT_BUDGET_MS="200")
        pending = c.status()["pending"]
        c.cli("flush", DO_NOT_TRACK="1")
        assert c.status()["pending"] == pending >= 1  # kept for later, not deleted

    @add("revoke mid-run: 'optel opt-out --app' from another process", SENT)
    def _(c: Ctx) -> None:
        _revoke_mid_run(c, "--app", "tool")

    @add("revoke mid-run: global 'optel opt-out'", SENT)
    def _(c: Ctx) -> None:
        _revoke_mid_run(c)

    @add("id rotation: opt-out deletes the uuid4 id, a new opt-in gets a new one (GA4)", SENT)
    def _(c: Ctx) -> None:
        with FakeGA4() as ga4:
            ga = {"OPTEL_GA4_MEASUREMENT_ID": "G-MATRIX", "OPTEL_GA4_API_SECRET": "s3cret",
                  "OPTEL_GA4_ENDPOINT": ga4.url, "OPTEL_DESTINATIONS": "ga4"}  # fmt: skip
            c.cli("opt-in")
            first = json.loads((c.home / "identity.json").read_text())["client_id"]
            c.tool(**ga)
            c.cli("opt-out")
            assert not (c.home / "identity.json").exists()
            c.tool(**ga)  # refused: nothing sent, no id made
            assert not (c.home / "identity.json").exists()
            c.cli("opt-in")
            c.tool(**ga)
            ids = [h.body["client_id"] for h in ga4.collected()]
            c.other_requests = len(ga4.collected())
        assert ids[0] == first and ids[-1] != first, ids
        assert {uuid.UUID(i).version for i in ids} == {4}, ids  # random, not hardware (uuid1)
        c.notes.append(f"ids sent: {ids[0][:8]}... then {ids[-1][:8]}...")

    # -- prompt -------------------------------------------------------------------------
    @add("prompt=True, not a terminal: no question, off", NONE)
    def _(c: Ctx) -> None:
        r = c.tool(prompt=True)
        assert "Share anonymous" not in r.stderr
        assert not c.home.exists()

    @add("prompt=True in CI on a terminal: no question", NONE)
    def _(c: Ctx) -> None:
        out, _code = _on_tty(c, answer=None, CI="true", OPTEL_ALLOW_CI="1")
        assert "Share anonymous" not in out, out

    @add("prompt=True on a terminal, answered y", SENT)
    def _(c: Ctx) -> None:
        out, _code = _on_tty(c, answer="y")
        assert "Share anonymous" in out and '"enabled": true' in out, out
        assert c.status()["source"] == "prompt"

    @add("prompt=True on a terminal, answered n", NONE)
    def _(c: Ctx) -> None:
        out, _code = _on_tty(c, answer="n")
        assert c.status()["consent"] == "denied", out

    @add("prompt=True on a terminal, no answer (timeout)", NONE)
    def _(c: Ctx) -> None:
        out, _code = _on_tty(c, answer=None, timeout_s=1.0)
        assert "Share anonymous" in out and c.status()["consent"] == "unset", out

    return out


def _revoke_mid_run(c: Ctx, *opt_out_args: str) -> None:
    """The tool's send is held at the server while ``optel opt-out`` runs in
    another process; once the opt-out returned, not one more request may
    arrive, though the tool records and flushes again.

    One sender only (the worker's interval is out of reach, the tool flushes
    itself), so the held request is the only one checked before the opt-out.
    """
    c.cli("opt-in", "--app", "tool") if opt_out_args else c.cli("opt-in")
    code = textwrap.dedent(
        """
        import json, optel
        t = optel.init(app="tool")
        t.event("tick")
        t.flush(15)  # held at the server while the opt-out lands
        for _ in range(5):
            t.event("after")
        t.flush(5)
        print(json.dumps({"enabled": t.enabled}))
        """
    )
    c.gate.open.clear()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=c.env(OPTEL_FLUSH_INTERVAL_MS="600000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.monotonic() + 30
        while c.gate.arrived == 0 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.02)
        assert c.gate.arrived >= 1, "the tool never sent"
        assert c.cli("opt-out", *opt_out_args).returncode == 0
        landed = c.gate.arrived  # requests that arrived before the opt-out returned
        c.gate.open.set()
        out, err = proc.communicate(timeout=60)
    finally:
        c.gate.open.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert json.loads(out)["enabled"] is False, out
    after = c.gate.arrived - landed
    c.notes.append(f"{landed} before the opt-out landed, {after} after")
    assert after == 0, f"{after} request(s) after the opt-out landed"


def _on_tty(
    c: Ctx,
    answer: str | None,
    timeout_s: float = 20.0,
    policy: str = "opt-in",
    prompt: bool = True,
    nv: int = 1,
    **extra: str,
) -> tuple[str, int]:
    """Run the tool (by default with prompt=True) on a pseudo-terminal; type ``answer``."""
    code = TAKE_TTY + TOOL.format(app="tool", policy=policy, nv=nv, prompt=prompt)
    extra["OPTEL_PROMPT_TIMEOUT_S"] = str(timeout_s)
    script = [] if answer is None else [(b"[y/N]", answer.encode() + b"\n")]
    return converse_on_terminal(
        [sys.executable, "-c", code], c.env(**extra), script, timeout_s=60, own_session=True
    )


def _run(s: Scenario, root: Path) -> tuple[Scenario, int, str, str]:
    home = root / uuid.uuid4().hex[:8] / "home"
    home.parent.mkdir(parents=True)
    with OtlpServer() as server:
        ctx = Ctx(home, server, Gate(server), [])
        error = ""
        try:
            s.run(ctx)
        except AssertionError as exc:
            error = str(exc).splitlines()[0][:150] if str(exc) else "assertion failed"
        except Exception as exc:  # a scenario's own bug: report it in the table
            error = f"{type(exc).__name__}: {exc}"[:150]
        count = len(server.requests) + ctx.other_requests
    observed = SENT if count else NONE
    if not error and observed != s.expected:
        error = f"expected {s.expected}, counted {count}"
    return s, count, error, "; ".join(ctx.notes)


def run_matrix(root: Path, workers: int = 3) -> tuple[str, list[str]]:
    """Run every scenario; the printable table and the failures."""
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda s: _run(s, root), _scenarios()))
    lines = [f"{'#':>2}  {'scenario':<66} {'expected':<8} {'requests':>8}  result"]
    failures = []
    for i, (s, count, error, notes) in enumerate(results, 1):
        verdict = "ok" if not error else f"FAIL: {error}"
        lines.append(f"{i:>2}  {s.name:<66} {s.expected:<8} {count:>8}  {verdict}")
        if notes:
            lines.append(f"{'':>4}{notes}")
        if error:
            failures.append(f"{s.name}: {error}")
    return "\n".join(lines), failures


def test_consent_matrix(tmp_path: Path) -> None:
    table, failures = run_matrix(tmp_path)
    print("\n" + table)
    assert len(_scenarios()) >= 20
    assert not failures, "\n".join(failures)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        text, failed = run_matrix(Path(d))
    print(text)
    sys.exit(1 if failed else 0)
