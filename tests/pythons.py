"""The unit suite on the oldest and the newest Python the package claims.

``make test`` runs this (``make pythons`` alone). The oldest is the lower
bound of ``requires-python`` in pyproject.toml, the newest the highest
``Programming Language :: Python :: 3.N`` classifier. Each runs in its own
virtual environment, ``.venv-3.N`` (optel editable, with the ``test``
extra), made once and made again only when pyproject.toml changes. A Python
this machine does not have is skipped, saying so: the check is as good as
the machine, never a reason for ``make test`` to fail.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PIP = ("-m", "pip", "--disable-pip-version-check", "--quiet")


def claimed(text: str | None = None) -> tuple[str, str]:
    """(oldest, newest) Python versions pyproject.toml claims, as ``3.N``."""
    text = PYPROJECT.read_text() if text is None else text
    low = re.search(r'^requires-python\s*=\s*">=\s*(3\.\d+)', text, re.M)
    listed = re.findall(r"Programming Language :: Python :: (3\.\d+)\"", text)
    if not low or not listed:
        raise SystemExit("pythons: pyproject.toml needs requires-python and 3.N classifiers")
    newest = max(listed, key=lambda v: int(v.split(".")[1]))
    return low.group(1), newest


def find(version: str) -> str | None:
    """An interpreter for ``version`` (``3.9``): on PATH, else under pyenv."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(
        glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", f"python{version}")),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.split("versions")[-1])],
        reverse=True,
    )
    for path in candidates:
        if path and "shims" not in path and _runs(path, version):
            return path
    return None


def _runs(path: str, version: str) -> bool:
    try:
        out = subprocess.run(
            [path, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def uv() -> str | None:
    """uv (a dev dependency) beside this Python: it makes and fills a virtual
    environment in seconds where venv and pip take a minute or more."""
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.exists() else shutil.which("uv")


def make_venv(python: str, venv: Path, *requirements: str) -> None:
    """A new virtual environment at ``venv`` for ``python`` holding ``requirements``."""
    shutil.rmtree(venv, ignore_errors=True)
    fast = uv()
    if fast:
        subprocess.run([fast, "venv", "--quiet", "--python", python, str(venv)], check=True)
        target = ["--python", str(venv / "bin" / "python")]
        subprocess.run([fast, "pip", "install", "--quiet", *target, *requirements], check=True)
        return
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), *PIP, "install", *requirements], check=True)


def environment(python: str, version: str) -> Path:
    """``.venv-3.N`` with optel (editable) and the test extra, reused while
    pyproject.toml is unchanged."""
    venv = ROOT / f".venv-{version}"
    stamp = venv / ".pyproject-sha256"
    digest = hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return venv
    make_venv(python, venv, "-e", f"{ROOT}[test]")
    stamp.write_text(digest)
    return venv


def unit_suite(venv: Path) -> subprocess.Popen[str]:
    """Start tests/unit with ``venv``'s Python (its output kept to report)."""
    argv = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.Popen(
        [*argv, "tests/unit"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _sdk(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from importlib.metadata import version as v; "
         "import platform as p; print(p.python_version(), v('opentelemetry-sdk'))"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    return out.stdout.strip()


def main() -> int:
    oldest, newest = claimed()
    t0 = time.monotonic()
    runs = []
    for version, which in ((oldest, "oldest"), (newest, "newest")):
        python = find(version)
        if python is None:
            print(
                f"pythons: {which} claimed Python {version}: skipped, not on this machine"
                f" (no python{version} on PATH or under pyenv)"
            )
            continue
        venv = environment(python, version)  # one at a time: each builds optel's metadata
        runs.append((version, which, venv, unit_suite(venv)))
    failed = False
    for version, which, venv, suite in runs:  # the suites run side by side
        output, _ = suite.communicate()
        ok = suite.returncode == 0
        if not ok:
            sys.stdout.write(output[-20000:])
        lines = output.strip().splitlines()
        python_version, sdk = (_sdk(venv).split() + ["?", "?"])[:2]
        print(
            f"pythons: {which} claimed Python {version} ({python_version},"
            f" opentelemetry-sdk {sdk}): unit suite {'ok' if ok else 'FAILED'}:"
            f" {lines[-1] if lines else 'no output'}"
        )
        failed |= not ok
    print(f"pythons: {time.monotonic() - t0:.0f} s with set-up")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
