"""The import graph of ``src/optel``, measured from the code, against its layers.

Run ``make layers`` (or ``python -m tests.layers``) to print the layers, every
import between rooms and any import that runs up; ``tests/unit/test_layers.py``
keeps the rules: no import cycle, every module placed, nothing below the
package face imports it, and only the imports named in :data:`ALLOWED_UP` run
up the layers.

A *room* is a module, or a subpackage taken as one (``consent``,
``exporters``, ``anonymize``). Imports inside functions count (optel imports
lazily to keep start-up cheap, but a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "optel"

LAYERS: list[tuple[str, ...]] = [
    # semconv: the semantic-convention registry, plain data
    ("_version", "env", "_errors", "_fs", "_redact", "commands", "semconv"),
    # kinds: the vocabulary of declarations; collected: what is collected, in words
    # sdkenv: the OTEL_* values the SDK reads for optel's providers, checked first
    ("config", "records", "ratelimit", "kinds", "collected", "sdkenv"),
    ("system", "identity", "spool", "anonymize", "usage", "crash"),
    ("consent", "recheck"),  # recheck: a spooled record checked again before it is sent
    ("stage",),  # gate-scrub-render: used by the pipeline and the GA4 SDK exporter
    ("exporters", "logbridge"),
    ("delivery",),
    ("pipeline",),
    ("run", "page"),  # page: the "what we collect" page (optel describe)
    ("telemetry",),
    ("__init__",),  # the package face: public API only
    # entry points, test help; click and typer: optel's commands under a Click or Typer tool;
    # report: optel report (a command, read by cli); gateway: the collector config generated
    # from the anonymizer's rules (optel gateway-config); describe_cli: optel describe TARGET
    (
        "autoconf",
        "cli",
        "demo",
        "_demo_tool",
        "__main__",
        "testing",
        "click",
        "typer",
        "report",
        "gateway",
        "describe_cli",
    ),  # fmt: skip
]
"""Rooms from the ground up; a room may import rooms on its own level or below."""

ALLOWED_UP: dict[tuple[str, str], str] = {}
"""(from room, to room) -> why that import runs up the layers (at most 2)."""

SUBPACKAGES = ("consent", "exporters", "anonymize", "report")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def room(module: str) -> str:
    """``optel.consent.rule`` -> ``consent``; ``optel`` -> ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports."""
    files = {module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}
    modules = set(files)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = []
                for alias in node.names:
                    sub = f"{prefix}.{alias.name}"
                    targets.append(sub if sub in modules else prefix)
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]  # import a.b.c -> the module a.b
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def level_of() -> dict[str, int]:
    return {r: i for i, rooms in enumerate(LAYERS) for r in rooms}


def room_edges(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(room(a), room(b)) for a, targets in edges.items() for b in targets} - {
        (r, r) for r in level_of()
    }


def unplaced(edges: dict[str, set[str]]) -> list[str]:
    levels = level_of()
    return sorted({room(m) for m in edges} - set(levels))


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    levels = level_of()
    return sorted(
        (a, b)
        for a, b in room_edges(edges)
        if a in levels and b in levels and levels[b] > levels[a]
    )


def face_importers(edges: dict[str, set[str]]) -> list[str]:
    """Modules below the entry points that import the package face ``optel``."""
    top = set(LAYERS[-1])
    return sorted(m for m, targets in edges.items() if PACKAGE in targets and room(m) not in top)


def main() -> int:
    edges = graph()
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports between them")
    for i, rooms in reversed(list(enumerate(LAYERS))):
        print(f"layer {i:2d}: {', '.join(rooms)}")
    print("\nimports between rooms (from -> to):")
    by_from: dict[str, list[str]] = {}
    for a, b in sorted(room_edges(edges)):
        by_from.setdefault(a, []).append(b)
    for a, targets in by_from.items():
        print(f"  {a} -> {', '.join(targets)}")
    found = cycles(edges)
    up = upward(edges)
    print(f"\nimport cycles: {len(found)}")
    for group in found:
        print("  " + " <-> ".join(group))
    print(f"imports running up the layers: {len(up)}")
    for a, b in up:
        print(f"  {a} -> {b}: {ALLOWED_UP.get((a, b), 'NOT ALLOWED')}")
    missing = unplaced(edges)
    if missing:
        print(f"modules in no layer: {', '.join(missing)}")
    face = face_importers(edges)
    if face:
        print(f"modules below the entry points importing the package face: {', '.join(face)}")
    ok = not found and not missing and not face and all(u in ALLOWED_UP for u in up)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
