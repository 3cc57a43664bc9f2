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


def environment(python: str, version: str) -> Path:
    """``.venv-3.N`` with optel (editable) and the test extra, reused while
    pyproject.toml is unchanged."""
    venv = ROOT / f".venv-{version}"
    stamp = venv / ".pyproject-sha256"
    digest = hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), *PIP, "install", "-e", f"{ROOT}[test]"], check=True
    )
    stamp.write_text(digest)
    return venv


def unit_suite(venv: Path) -> tuple[bool, str]:
    """Run tests/unit with ``venv``'s Python; (passed, pytest's last line)."""
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-20000:] + result.stderr[-5000:])
    return result.returncode == 0, lines[-1] if lines else result.stderr.strip()[-300:]


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
    failed = False
    for version, which in ((oldest, "oldest"), (newest, "newest")):
        python = find(version)
        if python is None:
            print(
                f"pythons: {which} claimed Python {version}: skipped, not on this machine"
                f" (no python{version} on PATH or under pyenv)"
            )
            continue
        t0 = time.monotonic()
        venv = environment(python, version)
        ok, last = unit_suite(venv)
        python_version, sdk = (_sdk(venv).split() + ["?", "?"])[:2]
        print(
            f"pythons: {which} claimed Python {version} ({python_version},"
            f" opentelemetry-sdk {sdk}): unit suite {'ok' if ok else 'FAILED'}: {last}"
            f" [{time.monotonic() - t0:.0f} s with set-up]"
        )
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
