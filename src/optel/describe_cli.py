"""``optel describe TARGET``: read a tool's declarations without running it.

How the command line knows a tool's declarations: it imports the tool's
module (or runs its script as a module, not as ``__main__``) with
``optel.init`` in describe mode (:data:`optel.telemetry.describing`):
``init()`` checks its arguments and keeps them, and decides, asks, writes,
starts and sends nothing, whatever the consent; ``track()`` decorators
applied at import declare their commands. Nothing is written for the tool.
A tool whose ``init()`` runs later (inside ``main()``) names what describes
it instead: ``module:ATTRIBUTE``, a telemetry object, a dict of ``init()``
arguments or a function returning one. Under a tool's own command
(``mytool telemetry describe``) the tool's process already holds its
telemetry: nothing is imported.
"""

from __future__ import annotations

from typing import Any

from . import telemetry
from .page import data, render

# -- reading a tool ----------------------------------------------------------------------------


class TargetError(Exception):
    """``optel describe TARGET``: the target cannot be read (the message says why)."""


def load(target: str, app: str | None = None, prog: str | None = None) -> Any:
    """The telemetry (or ``init()`` arguments) of the tool at ``target``.

    ``target`` is a module (``mytool.cli``) or a script (``tools/mytool.py``),
    optionally with ``:ATTRIBUTE`` naming a telemetry object, a dict of
    ``init()`` arguments, or a function returning either. The module is
    imported as ``import`` would (a script runs as a module, not as
    ``__main__``), with ``optel.init`` in describe mode: it decides, asks,
    writes and records nothing, and only keeps what the tool declared. No
    attribute: the telemetry ``init()`` made during the import (``app``
    picks one when there are several).

    Returns a :class:`~optel.telemetry.NullTelemetry` or a dict; raises
    :class:`TargetError`.

    While it is imported, ``sys.argv`` is ``[prog]`` (default: the script's name
    without ``.py``, or the module's top package), as when its users run it, so
    the commands it mounts name themselves as they will (``mytool telemetry``).
    """
    import importlib
    import os
    import sys

    where, _, attribute = target.partition(":")
    if os.name == "nt" and len(where) == 1 and attribute:  # C:\\tools\\mytool.py
        drive, _, rest = attribute.partition(":")
        where, attribute = f"{where}:{drive}", rest
    if not where:
        raise TargetError(f"expected MODULE[:ATTRIBUTE] or SCRIPT.py[:ATTRIBUTE], got {target!r}")
    before = dict(telemetry.tools)
    telemetry.tools.clear()
    telemetry.describing = True
    script = where.endswith(".py") or os.sep in where
    folder = os.path.dirname(os.path.abspath(where)) if script else os.getcwd()
    sys.path.insert(0, folder)  # the tool's own imports, as when it runs
    argv = sys.argv
    if prog is None:
        prog = os.path.basename(where)[:-3] if script else where.split(".")[0]
    sys.argv = [prog]
    try:
        if script:
            if not os.path.isfile(where):
                raise TargetError(f"no such script: {where}")
            namespace: Any = vars(_import_script(where, prog))
        else:
            namespace = vars(importlib.import_module(where))
        found: Any = None
        if attribute:
            found = namespace.get(attribute.split(".")[0], None)
            for part in attribute.split(".")[1:]:
                found = getattr(found, part, None)
            if found is None:
                raise TargetError(f"{where} has no attribute {attribute!r}")
            if callable(found) and not hasattr(found, "declarations"):
                found = found()  # a function giving the telemetry or init()'s arguments
            if not (isinstance(found, dict) or hasattr(found, "declarations")):
                raise TargetError(
                    f"{target} is {type(found).__name__}: expected a telemetry object, a dict"
                    " of optel.init() arguments or a function returning one"
                )
            return found
        made = dict(telemetry.tools)
    except TargetError:
        raise
    except (Exception, SystemExit) as exc:  # the tool's own import failed
        raise TargetError(
            f"importing {where} failed: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from None
    finally:
        sys.argv = argv
        telemetry.describing = False
        telemetry.tools.clear()
        telemetry.tools.update(before)
        if folder in sys.path:
            sys.path.remove(folder)
    if app is not None:
        for name, t in made.items():
            if name.lower() == app.lower():
                return t
        raise TargetError(f"importing {where} made no optel.init(app={app!r})")
    if len(made) == 1:
        return next(iter(made.values()))
    if not made:
        raise TargetError(
            f"importing {where} ran no optel.init(); name what describes the tool:"
            f" {where}:ATTRIBUTE (a telemetry object, a dict of init() arguments, or a"
            " function returning one)"
        )
    raise TargetError(
        f"importing {where} made several tools: pick one with --app ({', '.join(made)})"
    )


def _import_script(path: str, name: str) -> Any:
    """Run a script as the module ``name`` (not ``__main__``: its main block stays off)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot read {path} as Python")
    module = importlib.util.module_from_spec(spec)
    before = sys.modules.get(name)
    sys.modules[name] = module  # as an import does (dataclasses and pickling look here)
    try:
        spec.loader.exec_module(module)
    finally:
        if before is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = before
    return module


def describe_loaded(found: Any, as_data: bool = False) -> Any:
    """The page (or :func:`data`) of what :func:`load` returned."""
    if isinstance(found, dict):
        setup, _cfg = telemetry.prepare(**found)
        return data(setup) if as_data else render(setup)
    setup = found._setup
    return data(setup, found.declarations) if as_data else render(setup, found.declarations)
