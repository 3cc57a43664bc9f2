"""Every command and every option of ``optel`` (and of a tool's ``telemetry``
command) says what it does in its help."""

from __future__ import annotations

import argparse
from typing import Iterator

from optel import cli


def _parsers(
    p: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name}: no help line in the command list"
                yield from _parsers(sub, f"{path} {name}")


def _check(parser: argparse.ArgumentParser, root: str) -> set[str]:
    seen = set()
    for path, p in _parsers(parser, root):
        seen.add(path)
        if path != root:
            assert p.description, f"{path}: no description"
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (
                f"{path} {'/'.join(action.option_strings) or action.dest}: no help"
            )
    return seen


def test_every_optel_command_and_option_has_help() -> None:
    seen = _check(cli.build_parser(), "optel")
    assert {"optel status", "optel show", "optel flush", "optel settings", "optel describe",
            "optel ga4 validate"} <= seen  # fmt: skip


def test_a_tools_telemetry_command_has_help_too() -> None:
    parser = argparse.ArgumentParser(prog="mytool")
    sub = parser.add_subparsers()
    cli.mount(sub, app="mytool")
    seen = _check(parser, "mytool")
    assert "mytool telemetry describe" in seen and "mytool telemetry demo" not in seen
