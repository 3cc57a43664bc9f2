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
from pathlib import Path
from typing import Any, Callable, Iterator

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
    import pty

    main, sub = pty.openpty()
    proc = subprocess.Popen(argv, env=environ, stdin=sub, stdout=sub, stderr=sub, cwd=cwd)
    os.close(sub)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=timeout)
    os.close(main)
    return proc.returncode, out.decode(errors="replace")


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
