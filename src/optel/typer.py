"""optel's commands under a Typer tool's own name, in one call::

    import typer
    import optel.typer

    app = typer.Typer()
    optel.typer.mount(app, app="mytool", policy="opt-in")

``mytool telemetry status | opt-in | opt-out | show | flush | settings`` then
work for ``mytool``, and optel's messages name ``mytool telemetry ...``. The
command hands its arguments to optel's own command line, like
:mod:`optel.click`. Typer is imported only by :func:`mount`.
"""

from __future__ import annotations

from .click import HELP, PASS_THROUGH, check, prefix, run

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any


def mount(
    typer_app: Any,
    name: str = "telemetry",
    *,
    app: str,
    policy: str = "opt-in",
    prog: str | None = None,
    help: str = HELP,
) -> Any:
    """Add optel's commands as ``name`` to the ``typer.Typer`` ``typer_app``;
    returns the command's function. ``prog``: as in :func:`optel.click.mount`.
    Raises ``ValueError``/``TypeError`` for a wrong argument.
    """
    check(app, policy)
    import typer

    if not isinstance(typer_app, typer.Typer):
        raise TypeError(f"expected a typer.Typer, got {type(typer_app).__name__}")
    prefix(name, app, prog)

    def telemetry(ctx: Any) -> None:
        raise typer.Exit(run(list(ctx.args), prog or ctx.command_path, app, policy))

    # Typer finds the context by the parameter's type; the real class, not the
    # string `from __future__ import annotations` would leave it
    telemetry.__annotations__ = {"ctx": typer.Context, "return": None}
    return typer_app.command(
        name, help=help, context_settings=dict(PASS_THROUGH), add_help_option=False
    )(telemetry)
