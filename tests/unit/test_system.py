"""Anonymous system facts: coarse, cheap, no heavy imports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optel import system
from tests.conftest import run_python


@pytest.mark.parametrize(
    ("size_gb", "label"),
    [(0.5, "0-2GB"), (2, "2-4GB"), (15.6, "8-16GB"), (16, "16-32GB"), (300, ">=256GB")],
)
def test_memory_is_a_bucket_never_the_exact_size(size_gb: float, label: str) -> None:
    assert system.memory_bucket(int(size_gb * 2**30)) == label


def test_unknown_memory() -> None:
    assert system.memory_bucket(None) == "unknown"
    assert system.memory_bucket(0) == "unknown"


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_accelerators_from_device_files_and_cuda_variable(tmp_path: Path) -> None:
    assert {"nvidia", "rocm"}.isdisjoint(system.accelerators({}, root=str(tmp_path)))
    _touch(tmp_path, "dev/nvidia0")
    _touch(tmp_path, "dev/kfd")
    found = system.accelerators({}, root=str(tmp_path))
    assert "nvidia" in found and "rocm" in found
    # CUDA_VISIBLE_DEVICES hides or shows NVIDIA GPUs whatever the device files say
    assert "nvidia" not in system.accelerators({"CUDA_VISIBLE_DEVICES": "-1"}, root=str(tmp_path))
    assert "nvidia" not in system.accelerators({"CUDA_VISIBLE_DEVICES": ""}, root=str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "nvidia" in system.accelerators({"CUDA_VISIBLE_DEVICES": "0,1"}, root=str(empty))


def test_container_markers(tmp_path: Path) -> None:
    assert system.in_container({}, root=str(tmp_path)) is False
    assert system.in_container({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, root=str(tmp_path))
    assert system.in_container({"container": "podman"}, root=str(tmp_path))
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "cgroup").write_text("0::/system.slice/sshd.service\n")
    assert system.in_container({}, root=str(tmp_path)) is False
    (tmp_path / "proc" / "1" / "cgroup").write_text("0::/kubepods/besteffort/pod1234\n")
    assert system.in_container({}, root=str(tmp_path)) is True
    other = tmp_path / "other"
    _touch(other, ".dockerenv")
    assert system.in_container({}, root=str(other)) is True


def test_notebook_and_ci_flags() -> None:
    assert system.in_notebook({}) is False
    assert system.in_notebook({"ipykernel": object()}) is True
    assert system.in_ci({}) is False
    assert system.in_ci({"GITHUB_ACTIONS": "true"}) is True
    assert system.in_ci({"CI": "false"}) is False


def test_os_release_parsing(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n')
    assert system._os_release(str(f)) == {"NAME": "Ubuntu", "ID": "ubuntu", "VERSION_ID": "22.04"}
    assert system._os_release(str(tmp_path / "missing")) == {}


def test_facts_are_anonymous_coarse_and_cached() -> None:
    facts = system.facts("1.2.3")
    assert all(key.startswith("optel.") for key in facts)
    assert facts["optel.tool.version"] == "1.2.3"
    assert facts["optel.memory"].endswith("GB") or facts["optel.memory"] == "unknown"
    assert facts["optel.cpu.count"] == (os.cpu_count() or 0)
    assert isinstance(facts["optel.container"], bool)
    assert all(isinstance(v, (str, int, bool)) for v in facts.values())
    text = " ".join(str(v) for v in facts.values())
    import getpass
    import socket

    assert getpass.getuser() not in text.split()
    assert socket.gethostname() not in text
    assert "optel.tool.version" not in system.facts()
    assert system._cached is not None  # computed once per process


def test_frameworks_are_found_without_being_imported(tmp_path: Path, home: Path) -> None:
    pkg = tmp_path / "pkgs" / "torch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise SystemExit('torch was imported')\n")
    r = run_python(
        """
        import sys
        from optel import system
        facts = system.facts()
        print(facts["optel.frameworks"], "torch" in sys.modules)
        """,
        home,
        extra_env={
            "PYTHONPATH": f"{tmp_path / 'pkgs'}{os.pathsep}{Path(system.__file__).parents[1]}"
        },
    )
    assert r.returncode == 0, r.stderr
    frameworks, imported = r.stdout.split()
    assert "torch" in frameworks.split(",")
    assert imported == "False"


def test_facts_are_computed_lazily_not_at_init_or_per_event(home: Path) -> None:
    from tests.conftest import run_cli

    run_cli("opt-in", "--app", "mytool", home=home)
    r = run_python(
        """
        import sys, optel
        t = optel.init(app="mytool")
        t.event("used")
        before = "optel.system" in sys.modules
        with t.track("convert"):  # the first tracked call records run_start with the facts
            pass
        print(t.enabled, before, "optel.system" in sys.modules)
        """,
        home,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False", "True"]
