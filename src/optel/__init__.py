"""optel: consent-first, anonymizing, durable telemetry for Python tools.

    import optel
    telemetry = optel.init(app="mytool", version="1.2.3")
    with telemetry.tracer.start_as_current_span("convert"):
        ...
    telemetry.event("model_converted", framework="onnx")

Nothing leaves the machine without consent (``optel opt-in``), personal
data is dropped or scrubbed before anything is written to disk, and the
host's exit is never delayed beyond the exit budget.

Errors: a wrong argument to :func:`init` raises ``ValueError`` at once;
nothing else in optel ever raises into the host.
"""

from __future__ import annotations

from . import telemetry as _telemetry
from ._version import __version__
from .config import Settings
from .kinds import Bool, Declarations, Hashed, Label, Number, OneOf, PathKind, Text, Version
from .telemetry import NullTelemetry, Telemetry

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping

__all__ = [
    "init",
    "describe",
    "hashed",
    "settings",
    "Telemetry",
    "NullTelemetry",
    "Declarations",
    # kinds of declared attributes (optel.kinds)
    "Label",
    "Number",
    "Bool",
    "Version",
    "PathKind",
    "Hashed",
    "Text",
    "OneOf",
    "__version__",
]

settings = Settings()
"""The user's stored settings (dict-like; ``update()``, ``reset()``)."""

_active = _telemetry.active  # the enabled telemetry of each app (tests reset it)


def init(
    app: str,
    version: str | None = None,
    policy: str = "opt-in",
    allowed_attributes: Iterable[str] = (),
    attributes: Mapping[str, Any] | None = None,
    free_text: bool = False,
    ga4_measurement_id: str | None = None,
    ga4_api_secret: str | None = None,
    otlp_endpoint: str | None = None,
    destinations: str | Iterable[str] | None = None,
    exit_budget_ms: int | None = None,
    capture_crashes: bool = False,
    capture_logs: bool | int | str = False,
    max_events_per_minute: int | None = None,
    max_events_per_run: int | None = None,
    prompt: bool = False,
    notice_version: int = 1,
    telemetry_command: str | None = None,
    notice_text: str | None = None,
    notice_url: str | None = None,
    events: Iterable[str] | Mapping[str, str] | None = None,
    spans: Iterable[str] | Mapping[str, str] | None = None,
    metrics: Iterable[str] | Mapping[str, str] | None = None,
) -> NullTelemetry:
    """Set up telemetry for ``app`` and return the object the tool keeps.

    Returns a :class:`Telemetry` when sending is allowed now, otherwise a
    :class:`NullTelemetry` (no SDK import, no thread, no file). Raises
    ``ValueError`` for a wrong argument; never for state on disk or in the
    environment.

    What leaves is what the tool declared, in the shape it declared:
    ``attributes={"framework": ("onnx", "tf"), "batch": int, "input":
    optel.PathKind, ...}`` gives each key a kind (:mod:`optel.kinds`); the
    keys of ``allowed_attributes=[...]`` (and those passed to ``event()``) are
    labels. A value that does not fit its kind is replaced by a placeholder
    and counted. Free text (exception messages, span status descriptions,
    log message text) is sent only with ``free_text=True``, then scrubbed by
    patterns; failure reports always keep the type and module-relative
    frames. ``telemetry.declarations`` lists the keys with their kinds.

    ``events``, ``spans`` and ``metrics`` name what the tool records (a list
    of names, or a mapping of name to a short description); names are sent
    either way, declaring them documents them: :func:`describe` and
    ``telemetry.describe()`` write the tool's "what we collect" page from
    all of this, and mark a name seen in use that was not declared.

    ``capture_crashes=True`` reports unhandled exceptions (the traceback the
    user sees is unchanged); ``capture_logs=True`` (or a level such as
    ``"ERROR"``) sends log records at WARNING (or that level) and above from
    every logger, leaving the host's logging set-up untouched;
    ``max_events_per_minute`` / ``max_events_per_run`` cap events, failure
    reports and log records (drops are counted).

    ``prompt=True`` asks the user when no decision is recorded, on an
    interactive terminal only (never in CI, notebooks or child processes; at
    most 10 s; no answer means no decision); a grant takes effect in this run.
    ``notice_version`` is the version of the tool's telemetry notice: under
    the ``opt-out`` policy the notice is shown once per version (on stderr),
    and a decision given at a prompt for an older version is asked again.

    ``telemetry_command`` is what your users type to reach optel's commands
    under your tool (``"mytool telemetry"``, see :func:`optel.cli.mount` and
    :mod:`optel.click`); the notice, the question and status messages name
    it instead of ``optel``. Mounting the commands sets it too, but ``init``
    may run first.

    Under ``opt-out`` nothing is sent until the notice reached a person (a
    terminal or a notebook's output; not a pipe, file or ``/dev/null``).
    ``notice_text`` words what is collected in the tool's own words (at most
    1000 characters, 10 lines) and ``notice_url`` adds a link (http/https);
    how to turn it off is always added by optel.

    With ``OPTEL_DEBUG=1`` in the environment the run is a preview, before
    any decision and whatever it is: each record is printed to stderr as it
    would be sent, nothing is sent or written (``telemetry.enabled`` is false,
    ``telemetry.preview`` true).

    An argument that is ``None`` or an empty string (``os.environ.get(X,
    "")`` for an unset ``X``) is not set.
    """
    setup, cfg = _telemetry.prepare(**locals())
    from . import consent

    if _telemetry.describing:  # `optel describe` imports the tool: read, decide nothing
        return _telemetry.described(setup)
    if cfg["debug"]:
        # OPTEL_DEBUG: a preview, before or whatever the decision: no notice, no
        # question, nothing written or sent; each record is printed to stderr
        decision = consent.decide(app, policy, p=cfg.paths, notice_version=notice_version)
        _telemetry.announce_preview(app, decision)
    else:
        decision = consent.settle(
            app, policy, notice_version, prompt, cfg.paths, setup.notice_text, setup.notice_url,
            setup.declarations.free_text,
        )  # fmt: skip
    return _telemetry.start(setup, cfg, decision)


def describe(app: str, **init_args: Any) -> str:
    """The tool's "what we collect" page, in Markdown, from ``init()``'s arguments.

    Takes exactly what :func:`init` takes (pass the same dict to both), checks
    it the same way, and decides, asks, writes and sends nothing: a tool can
    build the page in its docs build. It lists every event, span and metric
    name declared (``events=``, ``spans=``, ``metrics=``), every attribute
    with its kind and an example of what is sent, optel's own records and
    the anonymous system facts, the destinations the arguments configure,
    how long records wait on the machine, what is never sent, and how users
    see, stop and delete it. ``telemetry.describe()`` writes the same page
    for a running tool, adding the names it used and ``track()`` declared.
    """
    setup, _cfg = _telemetry.prepare(app, **init_args)
    from .page import render

    return render(setup)


def hashed(value: object) -> str:
    """A keyed hash of ``value`` for grouping without revealing it.

    HMAC-SHA256 with a random per-install salt kept in the state folder; the
    salt never leaves the machine. Without consent in this process nothing
    is sent, so nothing is computed or written: the result is ``<hashed>``.
    """
    if not _telemetry.any_enabled():
        return "<hashed>"
    from .anonymize.hashing import hashed as _hashed

    return _hashed(value)
