"""``optel demo``: a sample tool instrumented with optel, end to end.

The tool runs in a child process with a throw-away ``OPTEL_HOME`` where
consent is granted, so the user's real decision is never touched. Then the
demo prints what was recorded, as ``optel show`` prints it, and where it
lives. GA4 or OTLP destinations configured in the environment get the
records too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from . import config, consent
from ._demo_tool import DEMO_BROKEN, DEMO_PATH


def run() -> int:
    home = tempfile.mkdtemp(prefix="optel-demo-")
    environ = dict(os.environ, OPTEL_HOME=home)
    cfg = config.resolve(environ=environ)
    consent.record(consent.GRANTED, "democonvert", source="api", p=cfg.paths)
    if (
        cfg.destinations() == ("local",)
        and consent.kill_switch(environ) is not None
        and consent.kill_switch({**environ, "OPTEL_ALLOW_CI": "1"}) is None
    ):
        # Only CI keeps telemetry off, and the demo sends nowhere: let it record.
        environ["OPTEL_ALLOW_CI"] = "1"
    print(f"== optel demo: state in {home} (consent granted there only)")
    print(f"== destinations: {', '.join(cfg.destinations()) or 'none'}\n")
    tool = subprocess.run([sys.executable, "-m", "optel._demo_tool"], env=environ)
    if tool.returncode != 0:
        print(f"the demo tool failed with exit status {tool.returncode}", file=sys.stderr)
        return 1
    print("\n== what was recorded (optel show --full):")
    show = subprocess.run([sys.executable, "-m", "optel", "show", "--full"], env=environ)
    _print_scrubbing(environ)
    print("\n== optel status --app democonvert:")
    status = subprocess.run(
        [sys.executable, "-m", "optel", "status", "--app", "democonvert"], env=environ
    )
    crashed = _crash_step(environ)
    _report_step(environ, home)
    print(f"\n== it all lives in {home}; 'OPTEL_HOME={home} optel show --json' shows it again")
    return show.returncode or status.returncode or crashed


def _crash_step(environ: dict[str, str]) -> int:
    """The tool crashes: Python's own traceback, unchanged, and one scrubbed report."""
    cmd = [sys.executable, "-m", "optel._demo_tool", "--crash"]
    print("\n== the tool crashes (python -m optel._demo_tool --crash, capture_crashes=True):")
    on = subprocess.run(cmd, env=environ, capture_output=True, text=True)
    off = subprocess.run(
        cmd, env={**environ, "OPTEL_DISABLED": "1"}, capture_output=True, text=True
    )
    print(on.stdout + on.stderr, end="")
    same = (on.stderr, on.returncode) == (off.stderr, off.returncode)
    verdict = "yes" if same else "NO"
    print(f"== traceback identical, byte for byte, to a run with telemetry off: {verdict}")
    payloads = _shown_payloads(environ)
    reports = [
        p for p in payloads if isinstance(p, dict) and p.get("attributes", {}).get("optel.crash")
    ]
    print(f"== crash reports in the spool: {len(reports)} (type and frames; no message):")
    for rep in reports:
        attrs = rep["attributes"]
        for key in ("exception.type", "exception.stacktrace"):
            print(f"  {key}: {attrs.get(key)!s}".replace("\n", "\n      "))
        message = attrs.get("exception.message", "(not sent: free text, off by default)")
        print(f"  exception.message: {message}")
    return 0 if same and len(reports) == 1 else 1


def _print_scrubbing(environ: dict[str, str]) -> None:
    """Show what the tool passed in next to what optel kept."""
    items = _shown_payloads(environ)
    convert = next((p for p in items if p.get("name") == "convert"), None)
    failure = next((p for p in items if p.get("name") == "exception"), None)
    print("\n== what went in, and what comes out (only what was declared, in its kind):")
    if convert is not None:
        kept = convert.get("attributes", {})
        print(f"  input_path  in:  {DEMO_PATH}")
        print(
            f"              out: {kept.get('input_path', '(dropped)')}   (a path kind, never the path)"
        )
        print("  user.email  in:  alice@example.com")
        print(
            f"              out: {kept.get('user.email', '(dropped: not declared, names a person)')}"
        )
    if failure is not None:
        attrs = failure.get("attributes", {})
        print(f"  error       in:  [Errno 2] No such file or directory: '{DEMO_BROKEN}'")
        print(
            f"              out: {attrs.get('exception.type')} at {attrs.get('exception.stacktrace')}"
        )
        print("                   (the message is free text: not sent unless the tool opts in)")


def _shown_payloads(environ: dict[str, str]) -> list[Any]:
    """The payloads ``optel show --json`` lists for this demo's state folder."""
    out = subprocess.run(
        [sys.executable, "-m", "optel", "show", "--json"],
        env=environ,
        capture_output=True,
        text=True,
    )
    try:
        return [i["payload"] for i in json.loads(out.stdout)]
    except ValueError:
        return []


def _report_step(environ: dict[str, str], home: str) -> None:
    """The tool author's view of what was recorded: ``optel report`` (needs DuckDB)."""
    page = os.path.join(home, "report.html")
    print(f"\n== the tool author's report of these runs (optel report --home {home}):")
    r = subprocess.run(
        [sys.executable, "-m", "optel", "report", "--home", home, "--out", page],
        env=environ,
        capture_output=True,
        text=True,
    )
    print(f"  open {page}" if r.returncode == 0 else f"  {r.stderr.strip()}")
