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

from . import config, consent
from ._demo_tool import DEMO_BROKEN, DEMO_PATH


def run() -> int:
    home = tempfile.mkdtemp(prefix="optel-demo-")
    environ = dict(os.environ, OPTEL_HOME=home)
    cfg = config.resolve(environ=environ)
    consent.record(consent.GRANTED, "democonvert", source="demo", p=cfg.paths)
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
    print("\n== what was recorded (optel show):")
    show = subprocess.run([sys.executable, "-m", "optel", "show"], env=environ)
    _print_scrubbing(environ)
    print("\n== optel status --app democonvert:")
    status = subprocess.run(
        [sys.executable, "-m", "optel", "status", "--app", "democonvert"], env=environ
    )
    print(f"\n== it all lives in {home}; 'OPTEL_HOME={home} optel show --json' shows it again")
    return show.returncode or status.returncode


def _print_scrubbing(environ: dict[str, str]) -> None:
    """Show what the tool passed in next to what optel kept."""
    out = subprocess.run(
        [sys.executable, "-m", "optel", "show", "--json"],
        env=environ,
        capture_output=True,
        text=True,
    )
    try:
        items = [i["payload"] for i in json.loads(out.stdout)]
    except ValueError:
        return
    convert = next((p for p in items if p.get("name") == "convert"), None)
    failure = next((p for p in items if p.get("name") == "exception"), None)
    print("\n== personal data in, scrubbed data out:")
    if convert is not None:
        kept = convert.get("attributes", {})
        print(f"  input_path  in:  {DEMO_PATH}")
        print(f"              out: {kept.get('input_path', '(dropped)')}")
        print("  user.email  in:  alice@example.com")
        print(f"              out: {kept.get('user.email', '(dropped: not an allowed key)')}")
    if failure is not None:
        print(f"  error       in:  [Errno 2] No such file or directory: '{DEMO_BROKEN}'")
        print(f"              out: {failure.get('attributes', {}).get('exception.message')}")
