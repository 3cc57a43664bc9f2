"""optel's commands under a Click tool's own name, in one call::

    import click
    import optel.click

    @click.group()
    def cli(): ...

    optel.click.mount(cli, app="mytool", policy="opt-in")

``mytool telemetry status | opt-in | opt-out | show | flush | settings`` then
work for ``mytool`` (``--global``: every optel tool), and optel's messages
name ``mytool telemetry ...``, not ``optel``. For Typer: :mod:`optel.typer`.

The ``telemetry`` command hands its arguments to optel's own command line
(:func:`optel.cli.main`), so help, options and exit statuses are the same
under every tool and under ``optel``. Click is imported only by
:func:`mount`: optel does not depend on it.
"""

from __future__ import annotations

import os
import sys

from . import cli, commands, consent

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

HELP = "see and control the anonymous telemetry this tool sends"

# what Click (or Typer) must pass through untouched: options such as --json
# and --help are optel's, parsed by optel.cli
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def check(app: Any, policy: Any) -> None:
    """The author's mistakes raise at once, as in :func:`optel.cli.mount`."""
    if not isinstance(app, str) or not app:
        raise ValueError(f"app must be the tool's name, got {app!r}")
    if policy not in consent.POLICIES:
        raise ValueError(f"policy must be 'opt-in' or 'opt-out', got {policy!r}")


def program() -> str:
    """The tool's command as its user typed it (argparse's and Click's rule)."""
    name = os.path.basename(sys.argv[0] if sys.argv else "")
    main = sys.modules.get("__main__")
    package = getattr(main, "__package__", None)
    if name == "__main__.py" and package:
        return f"python -m {package}"
    return name if name and not name.startswith("-") else ""


def prefix(name: str, app: str, prog: str | None) -> str:
    """What the tool's users type before ``status``, registered for messages."""
    found = prog or " ".join(filter(None, (program() or app, name)))
    commands.register(app, found)
    return found


def run(argv: list[str], prog: str, app: str, policy: str) -> int:
    """Run optel's command ``argv`` for the tool; the exit status."""
    return cli.main(argv, prog=prog, app=app, policy=policy)


def mount(
    group: Any,
    name: str = "telemetry",
    *,
    app: str,
    policy: str = "opt-in",
    prog: str | None = None,
    help: str = HELP,
) -> Any:
    """Add optel's commands as ``name`` to the Click ``group``; returns the command.

    ``prog`` is what users type before ``status`` in messages (default: the
    program's name and ``name``, as Click shows it; when the command runs,
    the exact command path). Raises ``ValueError``/``TypeError`` for a wrong
    argument.
    """
    check(app, policy)
    import click

    if not isinstance(group, click.Group):
        raise TypeError(f"expected a click.Group, got {type(group).__name__}")
    prefix(name, app, prog)

    def telemetry(argv: tuple[str, ...]) -> None:
        ctx = click.get_current_context()
        ctx.exit(run(list(argv), prog or ctx.command_path, app, policy))

    command = click.Command(
        name,
        callback=telemetry,
        params=[click.Argument(["argv"], nargs=-1, type=click.UNPROCESSED)],
        help=help,
        short_help=help,
        context_settings=dict(PASS_THROUGH),
        add_help_option=False,
    )
    group.add_command(command)
    return command
