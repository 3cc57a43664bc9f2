"""Load a page in headless Chromium (Debian's ``chromium``) and ask it what it
shows, through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte, on file descriptors 3 and 4), stdlib only.

:func:`load` returns what a reader would see: every ``figure.chart`` with its
drawn size and marks, every console error, exception and CSP violation, and
a full-page screenshot. ``make chromium`` installs the browser where it is
missing (see the Makefile); :func:`find` says why a test must skip.

Also a command, to take the screenshot of a report::

    python -m tests.report.browser report.html shot.png
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

PROBE = """JSON.stringify([...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg.plot');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.id, width: box.width, height: box.height,
          empty: svg ? svg.hasAttribute('data-empty') : true,
          marks: svg ? svg.querySelectorAll('rect title, path, circle').length : 0,
          visible: svg ? getComputedStyle(svg).visibility === 'visible' : false};
}))"""


def find() -> tuple[str | None, str]:
    """The browser to use, or None and why not."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if path is None:
        return (
            None,
            "Debian's chromium is not installed (make chromium installs it: apt-get install chromium)",
        )
    return path, ""


@dataclass
class Loaded:
    charts: list[dict[str, Any]]
    errors: list[str]  # console errors, uncaught exceptions, CSP violations, failed loads
    screenshot: bytes
    title: str
    events: list[dict[str, Any]] = field(default_factory=list)


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int):
        self.w, self.r = write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 16)
                if not chunk:
                    raise EOFError("chromium closed the DevTools pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return dict(json.loads(msg))

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            got = self._read(deadline)
            if got.get("id") == self.next_id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return dict(got.get("result", {}))
            self.events.append(got)

    def wait_for(self, method: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            out.append(
                "exception: " + str(d.get("exception", {}).get("description") or d.get("text"))
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
            "warning",
        ):
            args = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            out.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in (
            "error",
            "warning",
        ):
            entry = params["entry"]
            out.append(f"{entry.get('source')} {entry['level']}: {entry.get('text')}")
    return out


def _above(fd: int, low: int = 10) -> int:
    """``fd`` moved to a descriptor number of at least ``low``."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return high


def load(page: Path, width: int = 1280, timeout_s: float = 60.0) -> Loaded:
    """Open ``page`` (a file) in a fresh headless Chromium and report what it shows."""
    binary, why = find()
    if binary is None:
        raise FileNotFoundError(why)
    profile = tempfile.mkdtemp(prefix="optel-chromium-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # the child's ends above 9, so wiring them onto 3 and 4 cannot clobber one another
    to_browser_r, from_browser_w = _above(to_browser_r), _above(from_browser_w)

    log = open(os.path.join(profile, "stderr.log"), "wb")  # noqa: SIM115 - closed below
    # bash (dash takes one-digit descriptors only) puts our pipe ends on the descriptors chromium reads (3) and writes (4)
    wiring = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
    proc = subprocess.Popen(
        [shutil.which("bash") or "/bin/bash", "-c", wiring, binary, *FLAGS, f"--user-data-dir={profile}",
         "--remote-debugging-pipe", f"--window-size={width},900", "about:blank"],
        pass_fds=(to_browser_r, from_browser_w),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(to_browser_w, from_browser_r)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout_s=timeout_s)
        session = pipe.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired", timeout_s)
        pipe.drain(0.5)  # late console messages (CSP reports come after load)
        charts = json.loads(
            pipe.call(
                "Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session
            )["result"]["value"]
        )
        title = pipe.call(
            "Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
            session=session,
        )["result"]["value"]  # fmt: skip
        size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = pipe.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
            session=session,
            timeout_s=timeout_s,
        )
        events = list(pipe.events)
        try:
            pipe.call("Browser.close", timeout_s=10)
        except (EOFError, TimeoutError):
            pass
        return Loaded(charts, _errors(events), base64.b64decode(shot["data"]), title, events)
    except (OSError, EOFError, TimeoutError) as exc:
        log.flush()
        tail = Path(profile, "stderr.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{exc}; chromium's stderr:\n{tail}") from None
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str]) -> int:
    page, out = Path(argv[0]), Path(argv[1])
    got = load(page)
    out.write_bytes(got.screenshot)
    print(f"{len(got.charts)} charts, {len(got.errors)} console errors; screenshot {out}")
    for e in got.errors:
        print("  " + e)
    return 0 if not got.errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
