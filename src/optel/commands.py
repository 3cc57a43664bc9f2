"""The command a user types to reach optel's commands, named in messages.

A tool that offers optel's commands under its own name (``mytool telemetry
opt-out``: :func:`optel.cli.mount`, :func:`optel.click.mount`, or
``optel.init(telemetry_command=...)``) registers that prefix here, and every
message that tells its users what to type (the opt-out notice, the consent
question, status reasons, the CLI's confirmations) names the tool's command.
Without one, messages name ``optel`` itself. A tool installed on its own
(pipx) may not put ``optel`` on the user's PATH, hence the tool's own name.
"""

from __future__ import annotations

_prefixes: dict[str, str] = {}  # app (lower case) -> "mytool telemetry"


def register(app: str, prefix: str) -> None:
    """Users of ``app`` reach optel's commands as ``prefix`` (``mytool telemetry``)."""
    prefix = " ".join(str(prefix).split())
    if app and prefix:
        _prefixes[app.lower()] = prefix


def prefix(app: str | None) -> str | None:
    """The registered prefix for ``app``; for no app, the process's only one."""
    if app:
        return _prefixes.get(app.lower())
    if len(_prefixes) == 1:  # a tool's own process: its users type its commands
        return next(iter(_prefixes.values()))
    return None


def command(action: str, app: str | None = None, every_tool: bool = False) -> str:
    """What to type for ``action`` (``opt-out``, ``status``, ...) about ``app``.

    Under a tool with a registered prefix: ``mytool telemetry opt-out``
    (``--global`` added for ``every_tool``); otherwise ``optel opt-out
    --app mytool`` (``optel opt-out`` for every tool, or without an app).
    """
    own = prefix(app)
    if own is not None:
        return f"{own} {action} --global" if every_tool else f"{own} {action}"
    if app and not every_tool:
        return f"optel {action} --app {app}"
    return f"optel {action}"


def reset() -> None:
    """Forget every registered prefix (tests)."""
    _prefixes.clear()


def plain(action: str, app: str | None = None) -> str:
    """What to type for an ``action`` that takes no ``--app`` (``show``, ``flush``):
    ``mytool telemetry show`` under a tool's prefix, else ``optel show``."""
    own = prefix(app)
    return f"{own} {action}" if own is not None else f"optel {action}"
