"""Anonymous facts about the machine a tool runs on.

Only coarse, common values: OS type and version, Python version and
implementation, tool and optel versions, CPU count, memory in buckets,
which accelerators are present, and whether this is a container, a
notebook or a CI run. Nothing identifies a person or a machine: no host
name, no user name, no paths, no serial numbers, no exact memory size.

:func:`facts` computes them once per process, on first use (the run-start
event), never on the host's hot path. Accelerators are detected from
device files, driver folders and ``importlib.util.find_spec`` (which finds
a package without importing it): ``torch`` is never imported.

Every key starts with ``optel.`` so the anonymizer's allowlist keeps it.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from typing import Any, Mapping

from . import env
from ._version import __version__

# Buckets in GiB: upper bounds, exclusive; the label says the range.
MEMORY_BUCKETS_GB = (2, 4, 8, 16, 32, 64, 128, 256)

# Frameworks looked up with find_spec only (never imported).
FRAMEWORKS = ("torch", "tensorflow", "jax", "onnxruntime", "tensorrt")

_lock = threading.Lock()
_cached: dict[str, Any] | None = None


def memory_bucket(total_bytes: int | None) -> str:
    """``"8-16GB"``-style bucket of a memory size; ``"unknown"`` when not known."""
    if not total_bytes or total_bytes <= 0:
        return "unknown"
    gb = total_bytes / 2**30
    low = 0
    for high in MEMORY_BUCKETS_GB:
        if gb < high:
            return f"{low}-{high}GB"
        low = high
    return f">={low}GB"


def _total_memory() -> int | None:
    try:
        if hasattr(os, "sysconf"):
            pages = os.sysconf("SC_PHYS_PAGES")
            size = os.sysconf("SC_PAGE_SIZE")
            if pages > 0 and size > 0:
                return int(pages * size)
    except (ValueError, OSError):
        pass
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = _Status()
        status.dwLength = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullTotalPhys)
    return None


def os_type() -> str:
    """``linux``, ``darwin``, ``windows`` or another ``sys.platform`` value."""
    return "windows" if sys.platform == "win32" else sys.platform


def _os_release(path: str = "/etc/os-release") -> dict[str, str]:
    # https://www.freedesktop.org/software/systemd/man/latest/os-release.html
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    out[key] = value.strip().strip("\"'")
    except OSError:
        pass
    return out


def os_version() -> str:
    """A coarse OS version: ``ubuntu 22.04``, ``macos 14.5``, ``windows 10``."""
    if sys.platform.startswith("linux"):
        rel = _os_release()
        distro = " ".join(v for v in (rel.get("ID", ""), rel.get("VERSION_ID", "")) if v)
        if distro:
            return distro[:40]
        kernel = platform.release().split("-")[0]  # 5.15.0-1049-gcp -> 5.15.0
        return f"linux {'.'.join(kernel.split('.')[:2])}"
    if sys.platform == "darwin":
        mac = platform.mac_ver()[0]
        return f"macos {'.'.join(mac.split('.')[:2])}" if mac else "macos"
    if sys.platform == "win32":
        return f"windows {platform.release()}"
    return sys.platform


def accelerators(environ: Mapping[str, str] | None = None, root: str = "/") -> list[str]:
    """Kinds of accelerator present (``nvidia``, ``rocm``, ``apple``), cheaply.

    Looks at device files and driver folders and at ``CUDA_VISIBLE_DEVICES``;
    loads no driver library and imports no framework.
    """
    environ = os.environ if environ is None else environ
    found = []

    def exists(path: str) -> bool:
        return os.path.exists(os.path.join(root, path.lstrip("/")))

    cuda = environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        # "" or "-1" hides every GPU: https://docs.nvidia.com/cuda/cuda-c-programming-guide/#cuda-environment-variables
        nvidia = cuda.strip() not in ("", "-1")
    else:
        nvidia = exists("/dev/nvidia0") or exists("/proc/driver/nvidia")
    if nvidia:
        found.append("nvidia")
    if exists("/dev/kfd"):  # the ROCm compute device node
        found.append("rocm")
    if sys.platform == "darwin" and platform.machine() == "arm64":
        found.append("apple")  # every Apple-silicon Mac has a Metal GPU
    return found


def frameworks() -> list[str]:
    """Which of :data:`FRAMEWORKS` are installed (found, not imported)."""
    import importlib.util

    out = []
    for name in FRAMEWORKS:
        try:
            if importlib.util.find_spec(name) is not None:
                out.append(name)
        except (ImportError, ValueError):  # a broken or half-installed package
            pass
    return out


def in_container(environ: Mapping[str, str] | None = None, root: str = "/") -> bool:
    """Docker, Podman or Kubernetes, from marker files and the environment."""
    environ = os.environ if environ is None else environ
    if "KUBERNETES_SERVICE_HOST" in environ or environ.get("container"):
        return True  # podman and systemd-nspawn set container=...
    for marker in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(os.path.join(root, marker.lstrip("/"))):
            return True
    try:
        with open(os.path.join(root, "proc/1/cgroup"), encoding="utf-8") as f:
            text = f.read(4096)
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "libpod", "lxc"))


def in_notebook(modules: Mapping[str, Any] | None = None) -> bool:
    """Running inside a Jupyter/IPython kernel or Colab (already imported there)."""
    modules = sys.modules if modules is None else modules
    return "ipykernel" in modules or "google.colab" in modules


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """A well-known CI variable is set (the same list the consent rule uses)."""
    return env.ci_variable(os.environ if environ is None else environ) is not None


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine or "unknown")


def _compute() -> dict[str, Any]:
    return {
        "optel.os.type": os_type(),
        "optel.os.version": os_version(),
        "optel.arch": _arch(),
        "optel.python.version": platform.python_version(),
        "optel.python.implementation": platform.python_implementation().lower(),
        "optel.version": __version__,
        "optel.cpu.count": os.cpu_count() or 0,
        "optel.memory": memory_bucket(_total_memory()),
        "optel.accelerators": ",".join(accelerators()) or "none",
        "optel.frameworks": ",".join(frameworks()) or "none",
        "optel.container": in_container(),
        "optel.notebook": in_notebook(),
        "optel.ci": in_ci(),
    }


def facts(tool_version: str | None = None) -> dict[str, Any]:
    """The anonymous facts of this process (computed once, then cached).

    ``tool_version`` adds ``optel.tool.version``; the rest is the same for
    every tool in the process.
    """
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = _compute()
    out = dict(_cached)
    if tool_version:
        out["optel.tool.version"] = tool_version
    return out
