"""Consent, end to end: real processes, a loopback OTLP receiver, requests counted.

Each scenario sets up consent (``optel opt-in/opt-out`` in another process,
or a file on disk), runs a small tool in a fresh interpreter and counts the
requests that reached the receiver: policies x decisions x scopes x every
kind of kill switch x CI x corrupt and unwritable state x revoke mid-run x
id rotation x the prompt on a real pseudo-terminal. ``pytest -s`` prints the
table.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, _scrubbed_environ, run_cli, run_python
from tests.fakes.otlp_server import OtlpServer

SENT, NONE = "sent", "none"
RESULTS: list[tuple[str, str, int, bool]] = []

TOOL = """
import optel
t = optel.init(app="mytool", policy={policy!r}, allowed_attributes=["k"]{extra})
t.event("used", k="v")
print("ENABLED", t.enabled)
t.flush(5)
t.shutdown()
"""


def tool(policy: str = "opt-in", extra: str = "") -> str:
    return TOOL.format(policy=policy, extra=extra)


def check(name: str, expected: str, requests: int) -> None:
    ok = requests > 0 if expected == SENT else requests == 0
    RESULTS.append((name, expected, requests, ok))
    assert ok, f"{name}: expected {expected}, got {requests} request(s)"


def run_tool(
    home: Path, server: OtlpServer, code: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, **(extra_env or {})}
    r = run_python(code, home, environ)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> None:
    r = run_cli(*args, home=home, extra_env=env)
    assert r.returncode == 0, r.stderr


# -- decisions, scopes, policies, kill switches, CI: one table ------------------------

G_IN, G_OUT = ("opt-in",), ("opt-out",)
A_IN, A_OUT = ("opt-in", "--app", "mytool"), ("opt-out", "--app", "mytool")

PLAIN: list[tuple[str, str, list[tuple[str, ...]], str, dict[str, str]]] = [
    # name, expected, CLI decisions, policy, environment
    ("opt-in policy, no decision", NONE, [], "opt-in", {}),
    ("opt-in policy, global grant", SENT, [G_IN], "opt-in", {}),
    ("opt-in policy, global refusal", NONE, [G_OUT], "opt-in", {}),
    ("opt-in policy, app grant", SENT, [A_IN], "opt-in", {}),
    ("opt-in policy, app refusal", NONE, [A_OUT], "opt-in", {}),
    ("global grant, app refusal (app wins)", NONE, [G_IN, A_OUT], "opt-in", {}),
    ("global refusal, app grant (app wins)", SENT, [G_OUT, A_IN], "opt-in", {}),
    ("grant for another tool only", NONE, [("opt-in", "--app", "other")], "opt-in", {}),
    ("opt-out policy, no decision (notice)", SENT, [], "opt-out", {}),
    ("opt-out policy, global refusal", NONE, [G_OUT], "opt-out", {}),
    ("opt-out policy, app refusal", NONE, [A_OUT], "opt-out", {}),
    ("opt-out policy, global refusal, app grant", SENT, [G_OUT, A_IN], "opt-out", {}),
    ("grant + OPTEL_DISABLED=1", NONE, [A_IN], "opt-in", {"OPTEL_DISABLED": "1"}),
    ("grant + OPTEL_DISABLED=On", NONE, [A_IN], "opt-in", {"OPTEL_DISABLED": "On"}),
    ("grant + DO_NOT_TRACK=TRUE", NONE, [G_IN], "opt-in", {"DO_NOT_TRACK": "TRUE"}),
    ("grant + DO_NOT_TRACK=yes", NONE, [G_IN], "opt-in", {"DO_NOT_TRACK": "yes"}),
    ("grant + DO_NOT_TRACK=0", SENT, [G_IN], "opt-in", {"DO_NOT_TRACK": "0"}),
    ("opt-out policy + DO_NOT_TRACK=1", NONE, [], "opt-out", {"DO_NOT_TRACK": "1"}),
    ("grant + OTEL_SDK_DISABLED=True", NONE, [G_IN], "opt-in", {"OTEL_SDK_DISABLED": "True"}),
    ("grant + CI=true", NONE, [G_IN], "opt-in", {"CI": "true"}),
    ("grant + GITHUB_ACTIONS=true", NONE, [G_IN], "opt-in", {"GITHUB_ACTIONS": "true"}),
    ("grant + GITLAB_CI=true", NONE, [G_IN], "opt-in", {"GITLAB_CI": "true"}),
    ("grant + TF_BUILD=True (Azure)", NONE, [G_IN], "opt-in", {"TF_BUILD": "True"}),
    ("grant + JENKINS_URL", NONE, [G_IN], "opt-in", {"JENKINS_URL": "http://ci:8080/"}),
    ("opt-out policy + BUILDKITE=true", NONE, [], "opt-out", {"BUILDKITE": "true"}),
    ("grant + CI=true + OPTEL_ALLOW_CI=1", SENT, [G_IN], "opt-in",
     {"CI": "true", "OPTEL_ALLOW_CI": "1"}),
    ("grant + CIRCLECI + OPTEL_ALLOW_CI=true", SENT, [A_IN], "opt-in",
     {"CIRCLECI": "true", "OPTEL_ALLOW_CI": "true"}),
    ("grant + CI + OPTEL_ALLOW_CI=0", NONE, [G_IN], "opt-in",
     {"CI": "1", "OPTEL_ALLOW_CI": "0"}),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, expected, decisions, policy, environ", PLAIN, ids=[s[0] for s in PLAIN]
)
def test_plain_scenarios(
    tmp_path: Path,
    name: str,
    expected: str,
    decisions: list[tuple[str, ...]],
    policy: str,
    environ: dict[str, str],
) -> None:
    home = tmp_path / "home"
    for args in decisions:
        cli(home, *args)
    with OtlpServer() as server:
        r = run_tool(home, server, tool(policy), environ)
        requests = len(server.requests)
    assert ("ENABLED True" in r.stdout) is (expected == SENT)
    if name.endswith("(notice)"):
        assert "optel opt-out --app mytool" in r.stderr
    check(name, expected, requests)


# -- state on disk -------------------------------------------------------------------------


def test_corrupt_record_means_off_with_one_warning_and_status_explains(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "consent.json").write_text("{corrupt")
    with OtlpServer() as server:
        r = run_tool(home, server, tool("opt-out"))
        requests = len(server.requests)
    assert "ENABLED False" in r.stdout
    assert r.stderr.count("optel:") == 1 and "consent.json" in r.stderr
    status = json.loads(run_cli("status", "--app", "mytool", "--json", home=home).stdout)
    assert status["enabled"] is False and "consent.json" in status["reason"]
    assert "optel opt-in" in status["reason"]
    check("corrupt consent.json, opt-out policy", NONE, requests)


def test_corrupt_record_is_kept_aside_by_the_next_decision(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "consent.json").write_text("{corrupt")
    cli(home, *A_IN)
    aside = [p for p in home.iterdir() if p.name.startswith("consent.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "{corrupt"
    with OtlpServer() as server:
        run_tool(home, server, tool())
        requests = len(server.requests)
    check("corrupt consent.json, then opt-in (kept aside)", SENT, requests)


def test_unwritable_state_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = blocker / "optel"  # cannot be created, even by root
    r = run_cli(*A_IN, home=home)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run_cli(*G_OUT, home=home)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    with OtlpServer() as server:
        r = run_tool(home, server, tool("opt-out"))
        requests = len(server.requests)
    assert "ENABLED False" in r.stdout
    check("read-only state, opt-out policy", NONE, requests)


# -- revoke mid-run and id rotation ------------------------------------------------------------

LONG_TOOL = """
import os, sys, time, optel
t = optel.init(app="mytool", allowed_attributes=["k"])
t.event("before", k="v")
t.flush(5)
print("FLUSHED", flush=True)
while not os.path.exists(os.environ["GO_FILE"]):
    time.sleep(0.02)
for i in range(5):
    t.event("after", k="v")
    t.flush(2)
print("ENABLED", t.enabled, flush=True)
t.shutdown()
"""


def popen_python(code: str, home: Path, extra_env: dict[str, str]) -> subprocess.Popen[str]:
    environ = _scrubbed_environ()
    environ.update(OPTEL_HOME=str(home), PYTHONPATH=str(ROOT / "src"), **extra_env)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_revoke_mid_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    go = tmp_path / "go"
    cli(home, *A_IN)
    with OtlpServer() as server:
        proc = popen_python(
            LONG_TOOL, home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "GO_FILE": str(go)}
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "FLUSHED"
        before = len(server.requests)
        assert before > 0
        cli(home, *A_OUT)  # in another process, while the tool keeps running
        landed = len(server.requests)
        go.write_text("")
        out, err = proc.communicate(timeout=60)
        after = len(server.requests) - landed
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "ENABLED False" in out
    check("revoke mid-run (requests after the opt-out landed)", NONE, after)


def test_opt_out_rotates_the_client_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli(home, *G_IN)
    first = json.loads((home / "identity.json").read_text())["client_id"]
    with OtlpServer() as server:
        run_tool(home, server, tool())
        sent_first = len(server.requests)
    cli(home, *G_OUT)
    assert not (home / "identity.json").exists()
    cli(home, *G_IN)
    second = json.loads((home / "identity.json").read_text())["client_id"]
    assert second != first and uuid.UUID(second).version == 4 == uuid.UUID(first).version
    with OtlpServer() as server:
        run_tool(home, server, tool())
        sent_second = len(server.requests)
    assert sent_first > 0
    check("id rotation: opt-out deletes id, opt-in gets a new uuid4", SENT, sent_second)


# -- the prompt on a real pseudo-terminal -------------------------------------------------------

ON_A_TERMINAL = """
import os
os.setsid()
fd = os.open(os.environ["PTY"], os.O_RDWR)  # becomes this session's controlling terminal
os.dup2(fd, 0)
os.dup2(fd, 2)
"""


def run_on_terminal(
    home: Path, server: OtlpServer, code: str, typed: bytes, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    master, slave = pty.openpty()
    try:
        if typed:
            os.write(master, typed)
        environ = {
            "PTY": os.ttyname(slave),
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            **(extra_env or {}),
        }
        r = run_python(ON_A_TERMINAL + textwrap.dedent(code), home, environ, timeout=60)
        os.set_blocking(master, False)
        try:
            screen = os.read(master, 65536).decode(errors="replace")
        except OSError:
            screen = ""
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 0, r.stderr + screen
    return r, screen


PROMPTED: list[tuple[str, str, str, bytes, dict[str, str]]] = [
    ("prompt on a terminal, answered y", SENT, tool(extra=", prompt=True"), b"y\n", {}),
    ("prompt on a terminal, answered n", NONE, tool(extra=", prompt=True"), b"n\n", {}),
    ("prompt in CI (OPTEL_ALLOW_CI=1): not asked", NONE, tool(extra=", prompt=True"), b"y\n",
     {"CI": "true", "OPTEL_ALLOW_CI": "1"}),
    ("telemetry.ask(), no answer in 0.5 s", NONE,
     "import optel\nt = optel.init(app='mytool', allowed_attributes=['k'])\n"
     "t = t.ask(timeout_s=0.5)\nt.event('used', k='v')\nprint('ENABLED', t.enabled)\n"
     "t.flush(5)\nt.shutdown()\n", b"", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, expected, code, typed, environ", PROMPTED, ids=[s[0] for s in PROMPTED]
)
def test_prompt(
    tmp_path: Path, name: str, expected: str, code: str, typed: bytes, environ: dict[str, str]
) -> None:
    home = tmp_path / "home"
    start = time.monotonic()
    with OtlpServer() as server:
        r, screen = run_on_terminal(home, server, code, typed, environ)
        requests = len(server.requests)
    assert time.monotonic() - start < 30
    assert ("ENABLED True" in r.stdout) is (expected == SENT), r.stdout + screen
    asked = "mytool?" in screen
    assert asked is ("CI" not in environ), screen
    check(name, expected, requests)


def test_zz_scenario_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Print what ran (``pytest -s``); at least 20 scenarios, all as expected."""
    width = max((len(r[0]) for r in RESULTS), default=10)
    lines = [f"{'scenario':<{width}}  expected  requests  ok"]
    lines += [f"{n:<{width}}  {e:<8}  {c:>8}  {'yes' if ok else 'NO'}" for n, e, c, ok in RESULTS]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if len(RESULTS) >= 20:  # only when the whole module ran
        assert all(ok for *_, ok in RESULTS)
