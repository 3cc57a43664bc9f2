"""Shared fixtures: every test gets a clean environment and its own OPTEL_HOME.

- variables that steer optel (OPTEL_*, OTEL_*, DO_NOT_TRACK, CI markers)
  are removed, so the developer's or CI's own settings never leak in;
- ``OPTEL_HOME`` points at a fresh temporary folder;
- internal errors are re-raised (production swallows them);
- the OpenTelemetry global providers and optel's per-process state are reset.

Consent for a test: :func:`grant` records it in a state folder, the
``granted`` fixture records it for ``mytool`` and returns its enabled telemetry.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

import optel
from optel import _errors, commands, env, telemetry

ROOT = Path(__file__).resolve().parent.parent

# The Ctrl-C tests press Ctrl-C in child processes. A shell that starts a job in
# the background makes it ignore SIGINT, and an ignored signal stays ignored in
# every process started from it: the children never see the Ctrl-C (the 3 Ctrl-C
# tests failed so in a `make test` started in the background). Handled, not
# ignored, here, children start with SIGINT at its default, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _scrubbed_environ() -> dict[str, str]:
    drop_prefixes = ("OPTEL_", "OTEL_")
    drop = {env.DO_NOT_TRACK, *env.CI_VARIABLES}
    return {
        k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes) and k not in drop
    }


def _reset_otel_globals() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    _ = metrics


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith(("OPTEL_", "OTEL_")) or key in (env.DO_NOT_TRACK, *env.CI_VARIABLES):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "optel-home"
    monkeypatch.setenv(env.OPTEL_HOME, str(home))
    monkeypatch.setattr(_errors, "RAISE", True)
    monkeypatch.setattr(_errors, "_warned", set())
    monkeypatch.setattr(commands, "_prefixes", {})  # tools' command names, per test
    monkeypatch.setattr(telemetry, "tools", {})  # what each init() returned (optel describe)
    active = dict(optel._active)
    optel._active.clear()
    _reset_otel_globals()
    yield home
    for t in list(optel._active.values()):
        t.shutdown()
    optel._active.clear()
    optel._active.update(active)
    _reset_otel_globals()


@pytest.fixture
def home(clean_env: Path) -> Path:
    """This test's OPTEL_HOME (not created until optel writes something)."""
    return clean_env


def grant(home: Path, app: str | None = None) -> None:
    """Record consent in ``home`` for ``app`` or, without one, for every tool."""
    from optel import consent
    from optel.config import Paths

    consent.record(consent.GRANTED, app, p=Paths(str(home), str(home)))


Granted = Callable[..., optel.Telemetry]


@pytest.fixture
def granted(home: Path) -> Granted:
    """``granted(**init_args)``: consent recorded for ``mytool``, then its
    ``optel.init(app="mytool", version="1.0", ...)``, checked to be enabled."""

    def init(**kwargs: Any) -> optel.Telemetry:
        grant(home, "mytool")
        kwargs = {"app": "mytool", "version": "1.0", **kwargs}
        t = optel.init(**kwargs)
        assert isinstance(t, optel.Telemetry), t.reason
        return t

    return init


def tool_environ(home: Path, otlp_endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a tool run by the consent tables: a clean one, this
    tree's optel, ``home``, OTLP to ``otlp_endpoint``, and an exit budget long
    enough that a loaded machine never cuts a send short; then ``extra``."""
    environ = _scrubbed_environ()
    environ.update(
        OPTEL_HOME=str(home),
        PYTHONPATH=str(ROOT / "src"),
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OPTEL_EXIT_BUDGET_MS="3000",
    )
    environ.update(extra)
    return environ


def run_python(
    code: str,
    home: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with a clean environment and ``home``."""
    return _run(["-c", textwrap.dedent(code)], home, extra_env, timeout)


def _run(
    argv: list[str], home: Path, extra_env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    environ = _scrubbed_environ()
    environ[env.OPTEL_HOME] = str(home)
    environ["PYTHONPATH"] = str(ROOT / "src")
    environ.update(extra_env or {})
    return subprocess.run(
        [sys.executable, *argv], env=environ, capture_output=True, text=True, timeout=timeout
    )


def run_on_terminal(
    argv: list[str], environ: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr (where a
    notice reaches a person, and progress is drawn); its exit status and output."""
    out, code = converse_on_terminal(argv, environ, cwd=cwd, timeout_s=timeout)
    return code, out


TAKE_TTY = "import fcntl, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
"""Put before a ``python -c`` program run with ``own_session``: its new session
takes the pseudo-terminal as controlling terminal, so the program is its
foreground job, as in a shell (Ctrl-C typed there reaches it)."""


def converse_on_terminal(
    argv: list[str],
    environ: dict[str, str],
    script: Sequence[tuple[bytes, bytes]] = (),
    timeout_s: float = 60,
    cwd: Path | None = None,
    own_session: bool = False,
) -> tuple[str, int]:
    """Run ``argv`` on a pseudo-terminal (stdin, stdout and stderr): whenever the
    next ``(wait, type)`` pair's ``wait`` shows up in its output, type those
    bytes (``\\x03`` is Ctrl-C, with ``own_session`` and :data:`TAKE_TTY`).
    Its output and exit status; killed after ``timeout_s``."""
    import pty
    import select

    main, sub = pty.openpty()
    proc = subprocess.Popen(
        argv, env=environ, stdin=sub, stdout=sub, stderr=sub, cwd=cwd,
        start_new_session=own_session,
    )  # fmt: skip
    os.close(sub)
    seen, steps, pos = b"", list(script), 0
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if steps and seen.find(steps[0][0], pos) >= 0:
                wait, typed = steps.pop(0)
                pos = seen.find(wait, pos) + len(wait)
                os.write(main, typed)
            if proc.poll() is not None and not ready:
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    return seen.decode(errors="replace"), proc.returncode


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def another_programs_database(path: Path) -> str:
    """A SQLite database of some other program at ``path`` (a table, a row, mode
    0644), for a spool linked to it; the SHA-256 of its bytes."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE mine (x)")
    db.execute("INSERT INTO mine VALUES ('precious')")
    db.commit()
    db.close()
    os.chmod(path, 0o644)
    return sha256_of(path)


def run_cli(
    *args: str, home: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m optel ARGS`` in a clean environment with ``home``."""
    return _run(["-m", "optel", *args], home, extra_env, 60)
