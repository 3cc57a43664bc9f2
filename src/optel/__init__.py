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

_POLICIES = ("opt-in", "opt-out")
_active = _telemetry.active  # the enabled telemetry of each app (tests reset it)


def _check(app: Any, version: Any, policy: Any) -> None:
    from .consent.rule import check_app  # the one rule, shared with `optel ... --app`

    check_app(app)
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValueError(f"version must be a non-empty string or None, got {version!r}")
    if policy not in _POLICIES:
        raise ValueError(f"policy must be 'opt-in' or 'opt-out', got {policy!r}")


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

    An argument that is ``None`` or an empty string (``os.environ.get(X,
    "")`` for an unset ``X``) is not set.
    """
    _check(app, version, policy)
    declarations = Declarations(attributes, allowed_attributes, free_text)
    if not isinstance(prompt, bool):
        raise ValueError(f"prompt must be True or False, got {prompt!r}")
    if (
        isinstance(notice_version, bool)
        or not isinstance(notice_version, int)
        or notice_version < 1
    ):
        raise ValueError(f"notice_version must be a whole number >= 1, got {notice_version!r}")
    if telemetry_command is not None and not isinstance(telemetry_command, str):
        raise ValueError(f"telemetry_command: expected a string, got {telemetry_command!r}")
    from . import commands, config, consent

    if telemetry_command and telemetry_command.strip():
        commands.register(app, telemetry_command)
    if notice_text is not None or notice_url is not None:  # the notice module loads only then
        notice_text = consent.check_text(notice_text)
        notice_url = consent.check_url(notice_url)
    overrides = {
        "ga4_measurement_id": ga4_measurement_id,
        "ga4_api_secret": ga4_api_secret,
        "otlp_endpoint": otlp_endpoint,
        "destinations": destinations,
        "exit_budget_ms": exit_budget_ms,
    }
    setup = _telemetry.Setup(
        app, version, policy, declarations, overrides,
        capture_crashes, capture_logs, max_events_per_minute, max_events_per_run,
        notice_version,
    )  # fmt: skip
    cfg = config.resolve(overrides)  # may raise ValueError: the author's mistake
    if cfg["debug"]:
        # OPTEL_DEBUG: a preview, before or whatever the decision: no notice, no
        # question, nothing written or sent; each record is printed to stderr
        decision = consent.decide(app, policy, p=cfg.paths, notice_version=notice_version)
        _telemetry.announce_preview(app, decision)
    else:
        decision = consent.settle(
            app, policy, notice_version, prompt, cfg.paths, notice_text, notice_url
        )
    return _telemetry.start(setup, cfg, decision)


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
