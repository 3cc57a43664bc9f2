"""The package's structure, measured from its imports (see ``tests/layers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import layers


def test_no_import_cycles() -> None:
    assert layers.cycles(layers.graph()) == []


def test_every_module_has_a_layer() -> None:
    assert layers.unplaced(layers.graph()) == []


def test_only_named_imports_run_up_the_layers() -> None:
    up = layers.upward(layers.graph())
    assert len(layers.ALLOWED_UP) <= 2
    assert set(up) <= set(layers.ALLOWED_UP), [u for u in up if u not in layers.ALLOWED_UP]


def test_nothing_below_the_entry_points_imports_the_package_face() -> None:
    assert layers.face_importers(layers.graph()) == []


def test_the_measure_sees_cycles_lazy_imports_and_skips_type_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a checker that cannot fail proves nothing: build a small package with a
    # lazy cycle, a TYPE_CHECKING-only import and an import of the face
    pkg = tmp_path / "optel"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text(
        "from .a import f\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n    from . import c\n"
    )
    (pkg / "c.py").write_text("import optel\nfrom .sub import d\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("from .. import env\n")
    (pkg / "env.py").write_text("")
    monkeypatch.setattr(layers, "SRC", tmp_path)
    edges = layers.graph()
    assert edges["optel.a"] == {"optel.b"} and edges["optel.b"] == {"optel.a"}
    assert layers.cycles(edges) == [["optel.a", "optel.b"]]
    assert "optel.c" not in edges["optel.b"]  # TYPE_CHECKING only
    assert edges["optel.c"] == {"optel", "optel.sub.d"}
    assert layers.face_importers(edges) == ["optel.c"]
    assert edges["optel.sub.d"] == {"optel.env"}
    assert layers.room("optel.sub.d") == "sub"
