"""``optel demo``: a sample tool instrumented with optel, end to end.

The tool runs in a child process with a throw-away ``OPTEL_HOME`` where
consent is granted, so the user's real decision is never touched. Then the
demo prints what was recorded, as ``optel show`` prints it, and where it
lives. GA4 or OTLP destinations configured in the environment get the
records too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from . import config, consent


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
    print("\n== optel status --app democonvert:")
    status = subprocess.run(
        [sys.executable, "-m", "optel", "status", "--app", "democonvert"], env=environ
    )
    print(f"\n== it all lives in {home}; 'OPTEL_HOME={home} optel show --json' shows it again")
    return show.returncode or status.returncode
