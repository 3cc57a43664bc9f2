"""Consent and state you can trust: the scenario table (issue 13).

Every row is real processes on a real state folder (its own ``OPTEL_HOME``):
the ``optel`` command, tools calling ``optel.init``, a pseudo-terminal, a
notebook kernel, ``opentelemetry-instrument``; requests are counted on
loopback servers (OTLP/HTTP, GA4). Each row checks both what optel says
(command output, ``optel status``) and what then leaves the machine.
Rows run a few at a time; the table (row, expected, requests, result) is
printed at the end (``pytest -s``, or ``python -m tests.integration.test_consent_trust``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import (
    TAKE_TTY,
    another_programs_database,
    converse_on_terminal,
    sha256_of,
    tool_environ,
)
from tests.fakes.ga4_server import FakeGA4
from tests.fakes.otlp_server import OtlpServer
from tests.integration import consent_dropin

SENT, NONE = "sent", "none"

TOOL = """
import json, sys, optel
t = optel.init(app={app!r}, policy={policy!r}, prompt={prompt}{extra})
t.event("used", n=1)
t.flush(5)
print(json.dumps({{"enabled": t.enabled, "reason": t.reason}}))
"""


NESTED = "[" * 9000 + "]" * 9000  # 18 KB, as in the report


@dataclass
class Ctx:
    home: Path
    server: OtlpServer
    notes: list[str] = field(default_factory=list)
    other_requests: int = 0  # counted on another loopback server (GA4)
    count_from: int = 0  # OTLP requests before this one are set-up, not the row's point

    def env(self, **extra: str) -> dict[str, str]:
        return tool_environ(self.home, self.server.url, **extra)

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "optel", *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def python(self, code: str, stderr: Any = subprocess.PIPE, **extra: str) -> Any:
        r = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in (r.stderr or ""), r.stderr
        return r

    def tool(
        self, app: str = "t", policy: str = "opt-in", stderr: Any = subprocess.PIPE, **extra: str
    ) -> tuple[Any, int]:
        """Run a tool; its result and the requests it sent."""
        before = len(self.server.requests)
        code = TOOL.format(app=app, policy=policy, prompt=False, extra="")
        r = self.python(code, stderr=stderr, **extra)
        return r, len(self.server.requests) - before

    def status(self, app: str | None = None, **extra: str) -> dict[str, Any]:
        args = ["status", "--json"] + (["--app", app] if app else [])
        return dict(json.loads(self.cli(*args, **extra).stdout))

    def on_tty(
        self, code: str, script: list[tuple[bytes, bytes]], timeout_s: float = 60, **extra: str
    ) -> tuple[str, int]:
        """Run ``code`` on a pseudo-terminal: whenever the next ``(wait, type)``
        pair's ``wait`` shows up in the output, type its bytes (``\\x03`` is Ctrl-C)."""
        argv = [sys.executable, "-c", TAKE_TTY + textwrap.dedent(code)]
        return converse_on_terminal(argv, self.env(**extra), script, timeout_s, own_session=True)

    def consent_doc(self) -> dict[str, Any]:
        path = self.home / "consent.json"
        return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class Row:
    group: str
    name: str
    expected: str
    run: Callable[[Ctx], None]


def _rows() -> list[Row]:
    out: list[Row] = []

    def add(group: str, name: str, expected: str) -> Callable[[Callable[[Ctx], None]], Any]:
        def wrap(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
            out.append(Row(group, name, expected, fn))
            return fn

        return wrap

    _scopes(add)
    _status_truth(add)
    _app_misuse(add)
    _notice(add)
    _prompt(add)
    _dropin(add)
    _state_folder(add)
    _kill_switches(add)
    _secrets_and_loops(add)
    _spool(add)
    return out


# -- scopes: every order of global/per-tool grant/refusal ---------------------------------

OPS = {
    "G+": ("opt-in",),
    "G-": ("opt-out",),
    "T+": ("opt-in", "--app", "t"),
    "T-": ("opt-out", "--app", "t"),
}


def model(seq: tuple[str, ...]) -> tuple[bool, bool]:
    """The scope rule, written independently of optel: does tool t send, does
    an undecided tool u send, after the decisions in ``seq``?"""
    every, own = None, None
    for op in seq:
        if op == "G+":
            every = True
        elif op == "G-":
            every = False
            if own:  # a global refusal withdraws per-tool grants, refusals stay
                own = None
        elif op == "T+":
            own = True
        else:
            own = False
    t = own if own is not None else bool(every)
    return t, bool(every)


SEQUENCES = (
    [(op,) for op in OPS]
    + [(a, b) for a in OPS for b in OPS if a != b]
    + [("T+", "G-", "T+"), ("T-", "G+", "G-"), ("G+", "T-", "G+"), ("G-", "T+", "G-"),
       ("T+", "G-", "G+")]
)  # fmt: skip


def _scopes(add: Any) -> None:
    for seq in SEQUENCES:
        t_sends, u_sends = model(seq)
        name = " then ".join(" ".join(OPS[op]) for op in seq)
        said = f"t {'sends' if t_sends else 'off'}, u {'sends' if u_sends else 'off'}"
        expected = SENT if t_sends or u_sends else NONE

        @add("scopes", f"{name} -> {said}", expected)
        def _(c: Ctx, seq: tuple[str, ...] = seq, t_sends: bool = t_sends,
              u_sends: bool = u_sends) -> None:  # fmt: skip
            granted_t = refused_t = False
            for op in seq:
                r = c.cli(*OPS[op])
                assert r.returncode == 0, r.stderr
                said = r.stdout
                if op == "G-":
                    assert "withdrawn for every optel tool" in said, said
                    assert ("per-tool grants for t" in said) == granted_t, said
                    granted_t = False
                elif op == "G+":
                    assert ("except t" in said) == refused_t, said
                elif op == "T+":
                    granted_t, refused_t = True, False
                    assert "granted for t" in said, said
                else:
                    granted_t, refused_t = False, True
                    assert "withdrawn for t" in said, said
            _, sent_t = c.tool("t")
            _, sent_u = c.tool("u")
            assert (sent_t > 0, sent_u > 0) == (t_sends, u_sends), (sent_t, sent_u)
            for app, sends in (("t", t_sends), ("u", u_sends)):
                st = c.status(app)
                assert st["enabled"] is sends, (app, st["reason"])
            c.notes.append(f"t: {sent_t} request(s), u: {sent_u}")


# -- status truth for both policies ------------------------------------------------------


def _status_truth(add: Any) -> None:
    @add("status", "opt-in tool, no decision: status OFF, nothing sent", NONE)
    def _(c: Ctx) -> None:
        _, sent = c.tool("s", "opt-in")
        assert c.status("s")["enabled"] is False and sent == 0

    @add(
        "status", "opt-out tool, notice never shown: status OFF (any --policy), nothing sent", NONE
    )
    def _(c: Ctx) -> None:
        _, sent = c.tool("s", "opt-out")
        assert sent == 0
        for args in ((), ("--policy", "opt-out"), ("--policy", "opt-in")):
            st = json.loads(c.cli("status", "--json", "--app", "s", *args).stdout)
            assert st["enabled"] is False, st["reason"]

    @add("status", "opt-out tool after its notice: status ON without --policy, sends", SENT)
    def _(c: Ctx) -> None:
        out, _code = c.on_tty(TOOL.format(app="s", policy="opt-out", prompt=False, extra=""), [])
        assert "optel: Turn it off with 'optel opt-out --app s'" in out, out
        st = c.status("s")
        assert (st["enabled"], st["policy"], st["policy_known"]) == (True, "opt-out", "seen")
        _, sent = c.tool("s", "opt-out")  # later runs into a pipe: shown already, so on
        assert sent > 0
        listed = {t["app"]: t for t in c.status()["tools"]}
        assert listed["s"]["enabled"] is True and listed["s"]["notice"]["version"] == 1
        c.notes.append(f"{sent} request(s) from a later run")

    @add("status", "opt-out tool, notice shown, then 'optel opt-out --app s': OFF, nothing", NONE)
    def _(c: Ctx) -> None:
        c.on_tty(TOOL.format(app="s", policy="opt-out", prompt=False, extra=""), [])
        c.count_from = len(c.server.requests)
        assert c.cli("opt-out", "--app", "s").returncode == 0
        _, sent = c.tool("s", "opt-out")
        assert c.status("s")["enabled"] is False and sent == 0

    @add("status", "opt-out tool, notice shown, then global 'optel opt-out': OFF, nothing", NONE)
    def _(c: Ctx) -> None:
        c.on_tty(TOOL.format(app="s", policy="opt-out", prompt=False, extra=""), [])
        c.count_from = len(c.server.requests)
        c.cli("opt-out")
        _, sent = c.tool("s", "opt-out")
        st = c.status("s")
        assert st["enabled"] is False and sent == 0, st["reason"]

    @add("status", "'optel status' lists global, per-tool decisions and tools seen", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        c.cli("opt-out", "--app", "refused")
        c.tool("ran")  # seen through what it sent (the sent log)
        text = c.cli("status").stdout
        for line in ("global decision: granted", "per-tool decisions:", "refused",
                     "tools seen on this machine:", "ran"):  # fmt: skip
            assert line in text, text
        tools = {t["app"]: t["enabled"] for t in c.status()["tools"]}
        assert tools == {"ran": True, "refused": False}, tools


# -- --app misuse --------------------------------------------------------------------------


def _app_misuse(add: Any) -> None:
    for label, args in (
        ("--app ''", ("opt-in", "--app", "")),
        ("--app 'My Tool!'", ("opt-in", "--app", "My Tool!")),
        ("--app x --global", ("opt-in", "--app", "x", "--global")),
        ("opt-out --app ''", ("opt-out", "--app", "")),
    ):

        @add("--app", f"{label}: usage error (exit 2, one line), nothing recorded", NONE)
        def _(c: Ctx, args: tuple[str, ...] = args) -> None:
            r = c.cli(*args)
            assert r.returncode == 2 and r.stdout == "", r
            assert r.stderr.count("\n") == 1 and r.stderr.startswith("optel: "), r.stderr
            assert not c.home.exists()  # not a global decision, nothing at all
            _, sent = c.tool("x")
            assert sent == 0
            c.notes.append(r.stderr.strip()[:90])

    @add("--app", "--app MyTool for a tool named mytool: the same tool, it sends", SENT)
    def _(c: Ctx) -> None:
        r = c.cli("opt-in", "--app", "MyTool")
        assert r.returncode == 0 and "granted for MyTool" in r.stdout, r
        assert "has used optel on this machine yet" in r.stdout  # true: it has not
        _, sent = c.tool("mytool")
        assert sent > 0 and c.status("mytool")["enabled"] is True
        c.cli("opt-out", "--app", "MYTOOL")
        _, after = c.tool("mytool")
        assert after == 0


# -- the opt-out notice: a terminal, a notebook, a pipe ----------------------------------------


def _notice(add: Any) -> None:
    @add("notice", "opt-out notice on a terminal: shown once, then sending", SENT)
    def _(c: Ctx) -> None:
        code = TOOL.format(app="nt", policy="opt-out", prompt=False,
                           extra=", notice_text='nt counts conversions.',"
                                 " notice_url='https://example.org/nt'")  # fmt: skip
        out, code_rc = c.on_tty(code, [])
        assert code_rc == 0 and "optel: nt counts conversions." in out, out
        assert "optel: Details: https://example.org/nt" in out and '"enabled": true' in out, out
        again, _ = c.on_tty(code, [])
        assert "nt counts conversions" not in again  # once
        assert c.consent_doc()["notices"]["nt"]["notice_version"] == 1

    for label, where in (("a pipe", "pipe"), ("/dev/null", "devnull"), ("a file", "file")):

        @add("notice", f"opt-out notice into {label}: not shown, not recorded, nothing sent", NONE)
        def _(c: Ctx, where: str = where) -> None:
            log = c.home.parent / "stderr.log"
            with open(log, "w") as f:
                stderr = {"pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL, "file": f}[where]
                r, sent = c.tool("nt", "opt-out", stderr=stderr)
            printed = (r.stderr or "") + log.read_text()
            assert sent == 0 and "Turn it off" not in printed, printed
            assert "could not reach a person" in json.loads(r.stdout)["reason"]
            assert not c.home.exists()  # not recorded as seen
            assert c.status("nt")["enabled"] is False

    @add("notice", "opt-out notice in a real Jupyter kernel: shown in the notebook, sending", SENT)
    def _(c: Ctx) -> None:
        outputs = _in_kernel(c, TOOL.format(app="nb", policy="opt-out", prompt=False, extra=""))
        assert "optel: Turn it off with 'optel opt-out --app nb'" in outputs["stderr"], outputs
        assert '"enabled": true' in outputs["stdout"], outputs
        assert c.consent_doc()["notices"]["nb"]["notice_version"] == 1


class Skip(Exception):
    """This row cannot run on this machine (the reason is printed in the table)."""


KERNEL = """
import json, sys, time
try:
    from jupyter_client import KernelManager
except ImportError as exc:
    print(json.dumps({"skip": f"jupyter_client is not installed ({exc})"}))
    sys.exit(0)
code = sys.stdin.read()
km = KernelManager(kernel_name="python3")
try:
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
except Exception as exc:  # no kernel spec, no ipykernel, no zmq: it cannot start here
    try:
        km.shutdown_kernel(now=True)
    except Exception:
        pass
    print(json.dumps({"skip": f"the notebook kernel cannot start: {type(exc).__name__}: {exc}"}))
    sys.exit(0)
streams = {"stdout": "", "stderr": ""}
try:
    msg_id = kc.execute(code)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            streams[content["name"]] += content["text"]
        elif kind == "error":
            streams["stderr"] += "\\n".join(content["traceback"])
        elif kind == "status" and content["execution_state"] == "idle":
            break
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print(json.dumps(streams))
"""


def _in_kernel(c: Ctx, code: str) -> dict[str, str]:
    """Run ``code`` in a real ipykernel (driven by jupyter_client from a process
    of its own: starting a kernel imports ipykernel into the driver); its
    stdout and stderr streams."""
    r = subprocess.run(
        [sys.executable, "-c", KERNEL], input=code, env=c.env(), capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in out:
        raise Skip(out["skip"])
    return dict(out)


# -- the prompt on a pseudo-terminal ---------------------------------------------------------


def _prompt(add: Any) -> None:
    code = TOOL.format(app="pt", policy="opt-in", prompt=True, extra="")

    @add("prompt", "Enter at [y/N]: the shown default, a refusal is recorded", NONE)
    def _(c: Ctx) -> None:
        out, rc = c.on_tty(code, [(b"[y/N]", b"\r")], OPTEL_PROMPT_TIMEOUT_S="20")
        assert rc == 0 and "Traceback" not in out, out
        assert c.status("pt")["consent"] == "denied"
        again, _ = c.on_tty(code, [], OPTEL_PROMPT_TIMEOUT_S="20")
        assert "[y/N]" not in again  # a refusal is never asked again

    @add("prompt", "no answer (timeout): nothing recorded, not asked again for 7 days", NONE)
    def _(c: Ctx) -> None:
        start = time.monotonic()
        out, rc = c.on_tty(code, [], OPTEL_PROMPT_TIMEOUT_S="1")
        assert rc == 0 and "[y/N]" in out and "not asked again for 7 days" in out, out
        assert c.status("pt")["consent"] == "unset"
        again, _ = c.on_tty(code, [], OPTEL_PROMPT_TIMEOUT_S="1")
        assert "[y/N]" not in again, again
        c.notes.append(f"asked once in {time.monotonic() - start:.1f} s over two runs")

    @add("prompt", "unclear answer ('yes please'): asked once more, then 'y' grants", SENT)
    def _(c: Ctx) -> None:
        out, rc = c.on_tty(
            code, [(b"[y/N]", b"yes please\r"), (b"Please answer", b"y\r")],
            OPTEL_PROMPT_TIMEOUT_S="20",
        )  # fmt: skip
        assert rc == 0 and "Please answer y or n" in out and '"enabled": true' in out, out
        assert c.status("pt")["consent"] == "granted"

    @add("prompt", "Ctrl-C at the question: exit 130, no traceback, nothing recorded", NONE)
    def _(c: Ctx) -> None:
        # typed as soon as the question starts: Ctrl-C may come at any moment
        out, rc = c.on_tty(code, [(b"can send", b"\x03")], OPTEL_PROMPT_TIMEOUT_S="20")
        assert rc == 130 and "Traceback" not in out and "KeyboardInterrupt" not in out, out
        assert "no decision recorded" in out
        assert c.status("pt")["consent"] == "unset"


# -- the drop-in ---------------------------------------------------------------------------


def _dropin(add: Any) -> None:
    for name, expected, check in (
        ("chosen, no consent, pytest-opentelemetry builds its own provider: 0 requests", NONE,
         consent_dropin.check_chosen_without_consent),
        ("chosen, consent: pytest-opentelemetry's spans go through optel, scrubbed", SENT,
         consent_dropin.check_chosen_with_consent),
        ("not chosen, opentelemetry-distro: the same requests as without optel", SENT,
         consent_dropin.check_not_chosen),
        ("not chosen, no other configurator: configures nothing, as without optel", NONE,
         consent_dropin.check_not_chosen_no_other_configurator),
    ):  # fmt: skip

        @add("drop-in", name, expected)
        def _(c: Ctx, check: Any = check) -> None:
            try:
                count, note = check(c.home, c.home.parent)
            except pytest.skip.Exception as exc:
                raise Skip(str(exc)) from None
            c.other_requests = count
            c.notes.append(note)


# -- state-folder attacks ----------------------------------------------------------------------


def _state_folder(add: Any) -> None:
    @add("state", "dangling .lock link: opt-in refused in one line, nothing created", NONE)
    def _(c: Ctx) -> None:
        c.home.mkdir(mode=0o700)
        target = c.home.parent / "made-through-the-link"
        (c.home / ".lock").symlink_to(target)
        r = c.cli("opt-in")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert not target.exists()
        _, sent = c.tool()
        assert sent == 0

    @add("state", "consent.json is a link to a granting file: not read, off", NONE)
    def _(c: Ctx) -> None:
        c.home.mkdir(mode=0o700)
        target = c.home.parent / "elsewhere.json"
        target.write_text(json.dumps({"global": {"decision": "granted"}}))
        (c.home / "consent.json").symlink_to(target)
        r, sent = c.tool()
        assert sent == 0 and "symbolic link" in r.stderr, r.stderr
        assert c.status()["problem"]

    for mode, label in ((0o777, "world-writable"), (0o775, "group-writable")):

        @add("state", f"{label} OPTEL_HOME with planted grant, endpoint, salt: refused", NONE)
        def _(c: Ctx, mode: int = mode) -> None:
            evil = OtlpServer().__enter__()
            try:
                c.home.mkdir(mode=0o700)
                (c.home / "consent.json").write_text(json.dumps({"global": "granted"}))
                (c.home / "settings.json").write_text(json.dumps({"otlp_endpoint": evil.url}))
                (c.home / "salt.json").write_text(json.dumps({"salt": "0" * 64}))
                os.chmod(c.home, mode)
                r, sent = c.tool(OTEL_EXPORTER_OTLP_ENDPOINT="")
                warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("optel:")]
                assert sent == 0 and len(evil.requests) == 0 and len(warnings) == 1, r.stderr
                assert "written by others" in warnings[0]
                st = c.status()
                assert st["untrusted"] and st["enabled"] is False
                assert c.cli("opt-in").returncode == 1
                c.notes.append(warnings[0][:80])
            finally:
                evil.__exit__(None, None, None)

    @add("state", "OPTEL_HOME owned by another user: refused", NONE)
    def _(c: Ctx) -> None:
        if os.geteuid() != 0:
            raise Skip("needs root to give the folder to another user")
        c.home.mkdir(mode=0o700)
        (c.home / "consent.json").write_text(json.dumps({"global": "granted"}))
        os.chown(c.home, 65534, 65534)
        r, sent = c.tool()
        assert sent == 0 and "belongs to another user" in r.stderr, r.stderr

    for name in ("consent.json", "settings.json", "salt.json"):

        @add("state", f"18 KB nested {name}: no RecursionError, no traceback", SENT)
        def _(c: Ctx, name: str = name) -> None:
            if name != "consent.json":
                c.cli("opt-in")
            c.home.mkdir(mode=0o700, exist_ok=True)
            (c.home / name).write_text(NESTED)
            code = TOOL.format(app="t", policy="opt-in", prompt=False, extra="")
            code += "print(optel.hashed('alice')[:2])\n"
            r = c.python(code)
            assert "RecursionError" not in r.stderr
            if name == "consent.json":
                assert json.loads(r.stdout.splitlines()[0])["enabled"] is False
                c.cli("opt-in")  # the nested file is kept aside, a new decision works
                c.tool()
            else:
                assert r.stdout.splitlines()[-1] == "h:"  # a new salt replaced the nested one
                s = c.cli("settings")
                assert s.returncode == 0

    @add("state", "a FIFO named consent.json: init returns at once, off", NONE)
    def _(c: Ctx) -> None:
        c.home.mkdir(mode=0o700)
        os.mkfifo(c.home / "consent.json")
        start = time.monotonic()
        r, sent = c.tool(policy="opt-out")
        took = time.monotonic() - start
        assert sent == 0 and took < 20 and "not a regular file" in r.stderr, r.stderr
        c.notes.append(f"tool ran in {took:.1f} s")

    for value in (None, 5, True):

        @add("state", f"settings.json {{'destinations': {json.dumps(value)}}}: one warning", SENT)
        def _(c: Ctx, value: Any = value) -> None:
            c.cli("opt-in")
            (c.home / "settings.json").write_text(json.dumps({"destinations": value}))
            r, sent = c.tool()
            assert sent > 0 and r.stderr.count("ignoring setting destinations") == 1, r.stderr
            s = c.cli("settings")
            assert s.returncode == 0 and re.search(r"^destinations +- +default ", s.stdout, re.M)


# -- kill switches for every command that sends ----------------------------------------------------


def _ga4(c: Ctx, ga4: FakeGA4) -> dict[str, str]:
    return {"OPTEL_GA4_MEASUREMENT_ID": "G-TRUST", "OPTEL_GA4_API_SECRET": "s3cret-Kill",
            "OPTEL_GA4_ENDPOINT": ga4.url, "OPTEL_DESTINATIONS": "ga4"}  # fmt: skip


def _kill_switches(add: Any) -> None:
    switches = (("DO_NOT_TRACK", "1"), ("OPTEL_DISABLED", "true"), ("OTEL_SDK_DISABLED", "true"),
                ("CI", "true"))  # fmt: skip
    for var, value in switches:

        @add(
            "kill switch", f"{var}={value}: tool, flush, ga4 validate, --pending send nothing", NONE
        )
        def _(c: Ctx, var: str = var, value: str = value) -> None:
            c.cli("opt-in")
            with FakeGA4() as down:
                ga = _ga4(c, down)
            # records waiting: the GA4 endpoint is gone when the tool sends
            c.tool(**ga, OPTEL_EXIT_BUDGET_MS="300")
            waiting = c.status()["pending"]
            assert waiting >= 1
            with FakeGA4() as ga4:
                ga = {**_ga4(c, ga4), var: value}
                _, sent = c.tool(**ga)
                for args in (("flush",), ("ga4", "validate"), ("ga4", "validate", "--pending")):
                    r = c.cli(*args, **ga)
                    assert r.returncode == 1 and f"nothing sent: {var}" in r.stderr.replace(
                        "a CI run (CI", "CI"), r.stderr  # fmt: skip
                assert len(ga4.hits) == 0 and sent == 0, len(ga4.hits)
                assert c.status(**{var: ""})["pending"] >= waiting  # kept for later
                # the control: without the switch the same commands send
                r = c.cli("ga4", "validate", "--pending", **_ga4(c, ga4))
                assert r.returncode in (0, 1) and len(ga4.hits) >= 1, r.stdout + r.stderr
                c.notes.append(f"control without {var}: {len(ga4.hits)} GA4 request(s)")

    @add("kill switch", "DO_NOT_TRACK=1: optel demo sends nothing to a configured GA4", NONE)
    def _(c: Ctx) -> None:
        with FakeGA4() as ga4:
            r = c.cli("demo", **_ga4(c, ga4), DO_NOT_TRACK="1")
            assert "Traceback" not in r.stderr
            assert len(ga4.hits) == 0, len(ga4.hits)


# -- secrets and loops ----------------------------------------------------------------------------

LOUD_HOST = """
import logging, time, optel
logging.basicConfig(level=logging.DEBUG)
t = optel.init(app="loud", capture_logs={capture!r})
t.event("one")
time.sleep({sleep})
"""


def _secrets_and_loops(add: Any) -> None:
    @add("secrets", "host logging at DEBUG: the GA4 api secret never printed", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        with FakeGA4() as ga4:
            r = c.python(LOUD_HOST.format(capture=False, sleep=0), **_ga4(c, ga4))
            c.other_requests = len(ga4.collected())
        assert c.other_requests >= 1
        assert "s3cret-Kill" not in r.stderr and "api_secret=***" in r.stderr, r.stderr[-500:]

    @add("loops", "capture_logs='DEBUG': optel's own records not captured (no loop)", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        with FakeGA4() as ga4:
            c.python(LOUD_HOST.format(capture="DEBUG", sleep=3), **_ga4(c, ga4),
                     OPTEL_FLUSH_INTERVAL_MS="200")  # fmt: skip
            hits = ga4.collected()
            c.other_requests = len(hits)
        events = [e["name"] for h in hits for e in h.events]
        assert 1 <= len(hits) <= 2, f"{len(hits)} requests in 3 s: {events[:20]}"
        c.notes.append(f"{len(hits)} request(s) in 3 s, events: {sorted(set(events))}")


# -- the spool: planted rows, links, and what opt-out leaves on disk ------------------------------

# the local user's name (getpass reads these first): a name the anonymizer looks for
USER_ENV = {"USER": "ursulak", "LOGNAME": "ursulak"}
PLANTED = {
    "e-mail": "kwame.osei7@acme-corp.com",
    "home path": "/home/ursulak/models/zq7-best.pt",
    "token": "ghp_Zq7xK2mN9pL4vB8cR3tY6wE1uI5oA0sD7fG2",
    "user name": "ursulak",
}
SPOTS = {  # where a datum is planted in a record the tool spooled
    "name": lambda r, v: r.update(name=v),
    "attribute value": lambda r, v: r["attributes"].update(model=v),
    "attribute key": lambda r, v: r["attributes"].update({v: "x"}),
    "resource": lambda r, v: r["resource"].update({"service.name": v}),
    "event": lambda r, v: r.setdefault("events", []).append(
        {"name": v, "time_ns": 1, "attributes": {}}),
    "status": lambda r, v: r.update(status={"code": "ERROR", "message": v}),
    "scope": lambda r, v: r["scope"].update(name=v),
}  # fmt: skip

SPOOLING_TOOL = """
import json, sys, optel
t = optel.init(app="t", attributes={{"model": optel.Label, "ds": optel.Hashed}})
t.event("used", model={marker!r}, ds="dataset-{marker}")
with t.tracer.start_as_current_span("convert", attributes={{"model": {marker!r}}}):
    pass
t.flush({flush})
print(json.dumps({{"hashed": optel.hashed("{marker}-value")}}), flush=True)
{wait}
"""


def _spooling_tool(marker: str, flush: int = 5, wait: bool = False) -> str:
    return SPOOLING_TOOL.format(
        marker=marker, flush=flush, wait="sys.stdin.readline()" if wait else ""
    )


def _plant(spool: Path, rows: list[tuple[str, str, str, bool]]) -> int:
    """Add ``(signal, body, destination, rendered)`` rows for tool t, as someone
    with the state folder could; the deliveries added."""
    import sqlite3

    db = sqlite3.connect(spool)
    with db:
        for signal, body, dest, rendered in rows:
            entry = db.execute(
                "INSERT INTO entries (app, policy, signal, body, rendered, size, created)"
                " VALUES ('t', 'opt-in', ?, ?, ?, ?, ?)",
                (signal, body, int(rendered), len(body), time.time()),
            ).lastrowid
            db.execute("INSERT INTO deliveries (entry, destination) VALUES (?, ?)", (entry, dest))
            db.execute("UPDATE totals SET entries = entries + 1, bytes = bytes + ?", (len(body),))
    db.close()
    return len(rows)


def _waiting_records(spool: Path) -> dict[str, dict[str, Any]]:
    import sqlite3

    db = sqlite3.connect(spool)
    found = {sig: json.loads(body) for sig, body in db.execute("SELECT signal, body FROM entries")}
    db.close()
    return found


def _search(folder: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """Every file under ``folder``, every byte: which needles each holds."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits = [name for name, needle in needles.items() if needle in data]
            if hits:
                found[path.name] = hits
    return found


def _spool(add: Any) -> None:
    @add(
        "spool", "planted rows (e-mail, home path, token, user name; nested GA4): none leaves", SENT
    )
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        with FakeGA4() as down:
            ga, gone = _ga4(c, down), down.url
        dests = {**ga, "OPTEL_DESTINATIONS": "otlp,ga4", **USER_ENV}
        # the tool's own records wait: neither destination can be reached now
        c.python(_spooling_tool("zq7own", flush=0), **dests, OTEL_EXPORTER_OTLP_ENDPOINT=gone,
                 OPTEL_EXIT_BUDGET_MS="300")  # fmt: skip
        spool = c.home / "spool.sqlite3"
        base = _waiting_records(spool)
        rows = []
        for datum in PLANTED.values():
            for plant in SPOTS.values():
                record = json.loads(json.dumps(base["span"]))
                plant(record, datum)
                rows += [("span", json.dumps(record), d) for d in ("otlp", "ga4")]
        nested = json.loads(json.dumps(base["event"]))
        nested["attributes"]["model"] = json.loads("[" * 300 + '"deep"' + "]" * 300)
        rows.append(("event", json.dumps(nested), "ga4"))
        deep = json.dumps(base["event"])[:-1] + ',"x":' + "[" * 20000 + "]" * 20000 + "}"
        rows.append(("event", deep, "ga4"))
        rendered = json.dumps({"events": [{"name": "old", "params": {"mail": PLANTED["e-mail"]}}]})
        planted = _plant(
            spool, [(s, b, d, False) for s, b, d in rows] + [("event", rendered, "ga4", True)]
        )
        needles = {k: v.encode() for k, v in PLANTED.items()}
        shown = c.cli("show", "--json", "--limit", "1000", **dests)
        items = json.loads(shown.stdout)
        assert sum(1 for i in items if i.get("not_sent")) == planted, shown.stdout[-500:]
        assert not [k for k, v in PLANTED.items() if v in shown.stdout]  # nothing planted shown
        with FakeGA4() as ga4:
            up = {**dests, **_ga4(c, ga4)}
            r = c.cli("flush", **up)
            assert r.returncode == 0, r.stdout + r.stderr
            raw = [q.raw for q in c.server.requests] + [h.raw for h in ga4.hits]
            c.other_requests = len(ga4.collected())
            leaked = [k for k, v in needles.items() for body in raw if v in body]
            assert leaked == [], leaked
            assert any(b"zq7own" in body for body in raw)  # the tool's own records did leave
            assert {e["name"] for e in ga4.events()} >= {"used"}
        st = c.status(**USER_ENV)
        assert st["dropped"].get("unverified") == planted and st["pending"] == 0, st["dropped"]
        c.notes.append(f"{planted} planted deliveries dropped as unverified; show listed them")

    @add("spool", "spool.sqlite3 links to another app's database: never written, one warning", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        other = c.home.parent / "app.db"
        before = another_programs_database(other)
        (c.home / "spool.sqlite3").symlink_to(other)
        r, sent = c.tool()
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("optel:")]
        assert sent > 0 and len(warnings) == 1 and "symbolic link" in warnings[0], r.stderr
        assert "symbolic link" in (c.status()["last_error"] or "")
        assert c.cli("opt-out").returncode == 0
        assert sha256_of(other) == before
        assert (
            oct(other.stat().st_mode & 0o777) == "0o644" and (c.home / "spool.sqlite3").is_symlink()
        )
        assert not list(c.home.parent.glob("app.db-*"))  # no log of ours beside it
        c.notes.append(warnings[0][:90])

    @add("spool", "dangling spool.sqlite3 link: nothing created through it, one warning", SENT)
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        target = c.home.parent / "made-through-the-link"
        (c.home / "spool.sqlite3").symlink_to(target)
        r, sent = c.tool()
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("optel:")]
        assert sent > 0 and len(warnings) == 1 and "symbolic link" in warnings[0], r.stderr
        assert not list(c.home.parent.glob("made-through-the-link*"))

    @add(
        "spool", "opt-out, then every byte of the state folder: no payload, salt, id or hash", SENT
    )
    def _(c: Ctx) -> None:
        c.cli("opt-in")
        sent = c.python(_spooling_tool("zq7sent"))  # sent (the sent log keeps it)
        hashes = [json.loads(sent.stdout)["hashed"]]
        with FakeGA4() as down:  # a port nothing listens on once the block ends
            off = {"OTEL_EXPORTER_OTLP_ENDPOINT": down.url, "OPTEL_EXIT_BUDGET_MS": "300"}
        waiting = c.python(_spooling_tool("zq7waiting", flush=0), **off)  # waits: cannot be sent
        hashes.append(json.loads(waiting.stdout)["hashed"])
        salt = json.loads((c.home / "salt.json").read_text())["salt"]
        client = json.loads((c.home / "identity.json").read_text())["client_id"]
        spool = c.home / "spool.sqlite3"
        aside = c.home / "spool.sqlite3.corrupt-20250101-000000-1"
        aside.write_bytes(spool.read_bytes())  # a copy once moved aside holds records too
        # a second process holds the spool open (a tool still running, records waiting)
        holder = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_spooling_tool("zq7holder", 0, wait=True))],
            env=c.env(**off), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdin is not None
            hashes.append(json.loads(holder.stdout.readline())["hashed"])
            recorded = [r.get("attributes", {}).get("ds") for r in _waiting_records(spool).values()]
            needles = {
                "sent payload": b"zq7sent", "waiting payload": b"zq7waiting",
                "holder's payload": b"zq7holder", "salt": salt.encode(),
                "salt bytes": bytes.fromhex(salt), "client id": client.encode(),
                "client id hex": uuid.UUID(client).hex.encode(),
                **{f"hashed {h}": h.encode() for h in hashes + [d for d in recorded if d]},
            }  # fmt: skip
            before = {n for hits in _search(c.home, needles).values() for n in hits}
            assert {
                "sent payload",
                "waiting payload",
                "holder's payload",
                "salt",
                "client id",
            } <= before, before
            r = c.cli("opt-out")
            assert r.returncode == 0 and "deleted" in r.stdout and r.stderr == "", r.stderr
            assert (c.home / "spool.sqlite3").exists() and not aside.exists()
            left = _search(c.home, needles)
            assert left == {}, left
            files = sorted(p.name for p in c.home.iterdir())
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=60)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
        assert _search(c.home, needles) == {}  # nor once the holder has ended
        c.notes.append(f"{len(needles)} needles, 0 hits in {', '.join(files)}")


# -- running the table -------------------------------------------------------------------------------


def _run(row: Row, root: Path) -> tuple[Row, int, str, str]:
    start = time.monotonic()
    home = root / uuid.uuid4().hex[:8] / "home"
    home.parent.mkdir(parents=True, mode=0o700)
    with OtlpServer() as server:
        ctx = Ctx(home, server)
        error = ""
        try:
            row.run(ctx)
        except Skip as exc:
            error = f"SKIPPED: {exc}"
        except AssertionError as exc:
            error = str(exc).splitlines()[0][:160] if str(exc) else "assertion failed"
        except Exception as exc:  # a row's own bug: report it in the table
            error = f"{type(exc).__name__}: {exc}"[:160]
        count = len(server.requests) - ctx.count_from + ctx.other_requests
    observed = SENT if count > 0 else NONE
    if not error and observed != row.expected:
        error = f"expected {row.expected}, counted {count}"
    ctx.notes.insert(0, f"{time.monotonic() - start:.1f} s")
    return row, count, error, "; ".join(ctx.notes)


def run_table(
    root: Path, workers: int = 3, groups: tuple[str, ...] = ()
) -> tuple[str, list[str], list[str]]:
    """Every row (or those of ``groups``); the printable table, the failures and the skips."""
    rows = [r for r in _rows() if not groups or r.group in groups]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda r: _run(r, root), rows))
    lines = [f"{'#':>3}  {'group':<11} {'scenario':<84} {'expected':<8} {'requests':>8}  result"]
    failures, skips = [], []
    for i, (row, count, error, notes) in enumerate(results, 1):
        if error.startswith("SKIPPED"):
            verdict = error
            skips.append(f"{row.name}: {error}")
        else:
            verdict = "ok" if not error else f"FAIL: {error}"
            if error:
                failures.append(f"{row.group}: {row.name}: {error}")
        lines.append(
            f"{i:>3}  {row.group:<11} {row.name:<84} {row.expected:<8} {count:>8}  {verdict}"
        )
        if notes:
            lines.append(f"{'':>5}{notes}")
    return "\n".join(lines), failures, skips


def test_consent_and_state_you_can_trust(tmp_path: Path) -> None:
    table, failures, skips = run_table(tmp_path)
    print("\n" + table)
    for skip in skips:
        print(f"skipped: {skip}")
    assert not failures, "\n".join(failures)


if __name__ == "__main__":  # python -m tests.integration.test_consent_trust [GROUP ...]
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with tempfile.TemporaryDirectory() as d:
        text, failed, _ = run_table(Path(d), groups=tuple(sys.argv[1:]))
    print(text)
    sys.exit(1 if failed else 0)
