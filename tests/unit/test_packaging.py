"""The checks make test runs on the package itself (tests/pythons.py, tests/wheel.py)."""

from __future__ import annotations

from tests import pythons


def test_the_claimed_pythons_come_from_pyproject() -> None:
    text = """
requires-python = ">=3.9"
classifiers = [
    "Programming Language :: Python :: 3.13",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.9",
]
"""
    assert pythons.claimed(text) == ("3.9", "3.13")
    oldest, newest = pythons.claimed()  # this package's own claim
    assert int(oldest.split(".")[1]) < int(newest.split(".")[1])


def test_a_python_the_machine_lacks_is_not_found() -> None:
    assert pythons.find("3.1") is None  # skipped by make test, with the reason printed
