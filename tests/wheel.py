"""The package as users get it: build the wheel and the sdist, install the
wheel outside the source tree, run ``optel --version`` and a sample tool.

``make test`` runs this (``make wheel`` alone). ``python -m build`` builds
both into ``dist/``; a deprecation warning from the build fails the check
(setuptools warns about outdated metadata long before it refuses it). The
wheel must hold every module of ``src/optel`` and ``py.typed``. It is
installed into ``.venv-wheel``, a virtual environment holding only optel's
own dependencies (made once, made again when pyproject.toml changes; the
wheel itself is reinstalled every time), and run from a temporary folder
with no ``PYTHONPATH``, so nothing comes from the source tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

from tests import pythons

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
VENV = ROOT / ".venv-wheel"
PIP = ("-m", "pip", "--disable-pip-version-check", "--quiet")

SAMPLE_TOOL = """
    import sys
    import optel

    telemetry = optel.init(app="sampletool", version="1.0", allowed_attributes=["framework"])

    @telemetry.track("convert", params=["framework"])
    def convert(path, framework="onnx"):
        return path

    convert("model.onnx", framework="tflite")
    print(telemetry.enabled, optel.__file__)
"""


def _clean_env(home: str) -> dict[str, str]:
    """The environment of a user's shell: nothing of this checkout, no kill switch."""
    from optel import env  # the checkout's list of CI markers (a CI run sends nothing)

    drop = {"PYTHONPATH", "VIRTUAL_ENV", env.DO_NOT_TRACK, *env.CI_VARIABLES}
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("OPTEL_", "OTEL_"))
    }
    environ["OPTEL_HOME"] = home
    return environ


def build() -> tuple[Path, Path, float]:
    """The wheel and the sdist, freshly built; fails on a deprecation warning."""
    shutil.rmtree(DIST, ignore_errors=True)
    t0 = time.monotonic()
    environ = dict(os.environ)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # else build_py warns it cannot compile
    # uv sets up the isolated build environment in a second or two
    fast = ["--installer", "uv"] if pythons.uv() else []
    result = subprocess.run(
        [sys.executable, "-m", "build", *fast, "--outdir", str(DIST), str(ROOT)],
        capture_output=True,
        text=True,
        env=environ,
    )
    took = time.monotonic() - t0
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"wheel: build failed\n{output[-5000:]}")
    warnings = [line for line in output.splitlines() if "deprecat" in line.lower()]
    if warnings:
        raise SystemExit("wheel: the build warns:\n" + "\n".join(warnings))
    (wheel,) = DIST.glob("optel-*.whl")
    (sdist,) = DIST.glob("optel-*.tar.gz")
    return wheel, sdist, took


def contents(wheel: Path, sdist: Path) -> int:
    """Every module and py.typed is in the wheel, and the sources in the sdist."""
    expected = {
        str(p.relative_to(ROOT / "src"))
        for p in (ROOT / "src" / "optel").rglob("*")
        if p.suffix == ".py" or p.name == "py.typed"
    }
    with zipfile.ZipFile(wheel) as z:
        missing = expected - set(z.namelist())
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    missing |= {f"sdist: src/{m}" for m in expected if f"src/{m}" not in names}
    missing |= {f"sdist: {m}" for m in ("pyproject.toml", "README.md") if m not in names}
    if missing:
        raise SystemExit("wheel: missing from the package: " + ", ".join(sorted(missing)))
    return len(expected) - 1  # modules, py.typed aside


def install(wheel: Path) -> Path:
    """``.venv-wheel`` holding the wheel: made with its dependencies when
    pyproject.toml changed, else only optel is replaced."""
    stamp = VENV / ".pyproject-sha256"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        pythons.make_venv(sys.executable, VENV, str(wheel))
        stamp.write_text(digest)
        return VENV
    fast = pythons.uv()
    python = str(VENV / "bin" / "python")
    if fast:
        args = [fast, "pip", "install", "--quiet", "--python", python, "--reinstall"]
    else:
        args = [python, *PIP, "install", "--force-reinstall"]
    subprocess.run([*args, "--no-deps", str(wheel)], check=True)
    return VENV


def run_installed(venv: Path, version: str) -> list[str]:
    """``optel --version`` and a sample tool from the installed wheel."""
    bin_ = venv / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, "home")
        environ = _clean_env(home)

        def run(*argv: str) -> str:
            r = subprocess.run(argv, cwd=tmp, env=environ, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"wheel: {' '.join(argv)} failed ({r.returncode}): {r.stderr}")
            return r.stdout.strip()

        said = run(str(bin_ / "optel"), "--version")
        if said != f"optel {version}":
            raise SystemExit(f"wheel: optel --version said {said!r}, expected 'optel {version}'")
        run(str(bin_ / "optel"), "opt-in", "--app", "sampletool")
        tool = os.path.join(tmp, "sampletool.py")
        Path(tool).write_text(textwrap.dedent(SAMPLE_TOOL))
        enabled, where = run(str(bin_ / "python"), tool).split()
        if enabled != "True" or not where.startswith(str(venv)):
            raise SystemExit(f"wheel: the sample tool ran {enabled} from {where}, not the wheel")
        rows = json.loads(run(str(bin_ / "optel"), "show", "--json"))
        names = sorted(r["payload"].get("name", "") for r in rows if r["app"] == "sampletool")
        if "convert" not in names:
            raise SystemExit(f"wheel: the sample tool's convert event is not waiting: {names}")
        return [said, f"sample tool recorded {', '.join(n for n in names if n)}"]


def main() -> int:
    wheel, sdist, took = build()
    modules = contents(wheel, sdist)
    print(
        f"wheel: built {wheel.name} and {sdist.name} in {took:.0f} s, no deprecation warnings;"
        f" {modules} modules and py.typed in both"
    )
    version = wheel.name.split("-")[1]
    venv = install(wheel)
    said, sample = run_installed(venv, version)
    python = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(
        f"wheel: installed into {VENV.name} (Python {python}): 'optel --version' -> {said}; {sample}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
