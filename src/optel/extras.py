"""``init()``'s opt-in extras: crash capture, the logging bridge, rate limits.

Kept apart from :mod:`optel.usage` so that checking these arguments costs
nothing at start-up: without consent only this small module is imported.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from .telemetry import Telemetry

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


def check(
    capture_crashes: Any,
    capture_logs: Any,
    max_events_per_minute: Any,
    max_events_per_run: Any,
) -> dict[str, Any]:
    """Validate the crash, logging and rate-limit arguments; ``ValueError`` if wrong."""
    if not isinstance(capture_crashes, bool):
        raise ValueError(f"capture_crashes must be True or False, got {capture_crashes!r}")
    level: int | None
    if capture_logs is False or capture_logs is None:
        level = None
    elif capture_logs is True:
        level = _LEVELS["WARNING"]
    elif isinstance(capture_logs, int) and 0 < capture_logs <= 50:
        level = capture_logs
    elif isinstance(capture_logs, str) and capture_logs.strip().upper() in _LEVELS:
        level = _LEVELS[capture_logs.strip().upper()]
    else:
        raise ValueError(
            "capture_logs must be True, False or a logging level (e.g. 'WARNING', 40),"
            f" got {capture_logs!r}"
        )
    caps = None
    if max_events_per_minute is not None or max_events_per_run is not None:
        from .ratelimit import check_caps

        caps = check_caps(max_events_per_minute, max_events_per_run)
    return {"capture_crashes": capture_crashes, "log_level": level, "caps": caps}


def setup(telemetry: Telemetry, extras: dict[str, Any], new: bool) -> None:
    """Apply the extras to an enabled telemetry object (``new``: just created)."""
    if new:
        import atexit

        from . import usage
        from .ratelimit import RateLimiter

        if extras["caps"] is not None:
            telemetry._limiter = RateLimiter(*extras["caps"])
        usage.state(telemetry)  # the run's clock starts now
        # registered after the pipeline's own exit hook, so it runs first (LIFO)
        atexit.register(usage.end_run, telemetry)
    if extras["capture_crashes"]:
        from . import crash

        crash.install(telemetry)
    if extras["log_level"] is not None and telemetry.__dict__.get("_log_capture") is None:
        from . import logbridge

        handler = telemetry.log_handler(extras["log_level"])
        telemetry.__dict__["_log_capture"] = handler
        logbridge.capture(handler)  # the host's own logging set-up stays as it was
