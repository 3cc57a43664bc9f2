"""Every documented Measurement Protocol limit, and the sanitizers that keep to them.

This is the one place that knows GA4's rules. Sources (fetched 2026-11):

- [MP-LIMITS] Sending events, "Limitations":
  https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations
- [MP-REF] Measurement Protocol reference (endpoint, EU endpoint, payload,
  reserved names): https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference
- [MP-TIME] Backdating, 72 hours:
  https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#override_timestamp
- [MP-UP] User properties, reserved names:
  https://developers.google.com/analytics/devguides/collection/protocol/ga4/user-properties
- [GA-NAMES] Event naming rules (reserved names for web and app streams):
  https://support.google.com/analytics/answer/13316687
- [MP-VALIDATE] Validation server, ``/debug/mp/collect`` and its messages:
  https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events

Sanitizing is deterministic: the same input name always gives the same GA4
name, in every process and on every machine (no per-process salt, only
sha256), so a tool event always lands under one GA4 event name.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from typing import Any

# -- limits [MP-LIMITS] -----------------------------------------------------------

MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_USER_PROPERTIES = 25
MAX_NAME = 40  # event and parameter names
MAX_PARAM_VALUE = 100
MAX_USER_PROPERTY_NAME = 24
MAX_USER_PROPERTY_VALUE = 36
MAX_BODY_BYTES = 130_000
"""The post body must be smaller than 130kB; we read "kB" as 1000 bytes (the
stricter reading) and stay a further margin below it, see BODY_BUDGET."""
BODY_BUDGET = MAX_BODY_BYTES - 2_000
"""What a request body may use: the margin covers the envelope (client id,
flags) that :func:`optel.exporters.ga4.Destination.send` adds."""
MAX_AGE_S = 72 * 3600
"""Events may be backdated up to 72 hours [MP-TIME]; older ones are dropped."""
AGE_MARGIN_S = 60
"""Drop a little early, so an event never crosses the line on its way."""

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
"""Names must start with a letter and hold only letters, digits and underscores."""

ENDPOINT = "https://www.google-analytics.com"
ENDPOINT_EU = "https://region1.google-analytics.com"
"""Data collected in the EU [MP-REF]."""
COLLECT_PATH = "/mp/collect"
DEBUG_PATH = "/debug/mp/collect"

# -- reserved names --------------------------------------------------------------

RESERVED_EVENT_NAMES = frozenset(
    {
        # web streams [GA-NAMES]
        "ad_impression", "app_remove", "app_store_refund", "app_store_subscription_cancel",
        "app_store_subscription_renew", "click", "error", "file_download", "first_open",
        "first_visit", "form_start", "form_submit", "in_app_purchase", "page_view", "scroll",
        "session_start", "user_engagement", "view_complete", "video_progress", "video_start",
        "view_search_results",
        # app streams [GA-NAMES], [MP-REF]
        "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
        "app_background", "app_clear_data", "app_exception", "app_install",
        "app_store_subscription_convert", "app_update", "app_upgrade", "dynamic_link_app_open",
        "dynamic_link_app_update", "dynamic_link_first_open", "firebase_campaign",
        "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
        "firebase_in_app_message_impression", "notification_dismiss",
        "notification_foreground", "notification_open", "notification_receive", "os_update",
        "screen_view", "session_start_with_rollout",
    }
)  # fmt: skip
"""Event names GA4 reserves; a tool event with one of these names is renamed."""

RESERVED_EVENT_PREFIXES = ("_", "ga_", "google_", "firebase_", "gtag_")
RESERVED_PARAM_PREFIXES = ("_", "ga_", "google_", "firebase_", "gtag_")  # "gtag." once cleaned
RESERVED_USER_PROPERTY_PREFIXES = ("_", "ga_", "google_", "firebase_")

RESERVED_PARAM_NAMES = frozenset(
    {
        "firebase_conversion",  # [MP-REF]
        # set by optel itself on every event; a tool's own key is renamed
        "session_id", "engagement_time_msec",
        # reserved for custom dimensions [GA-NAMES]: renamed so they stay usable
        "session_number", "gclid", "dclid", "cid", "uid", "sid", "currency", "customer_id",
        "customerid", "sessionid", "sfmc_id", "srsltid", "user_id", "userid",
    }
)  # fmt: skip
"""Parameter names a tool's attribute may not use as is."""

RESERVED_USER_PROPERTY_NAMES = frozenset(
    {
        # [MP-UP]
        "first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id",
        "first_open_after_install",
        # [GA-NAMES]
        "cid", "customer_id", "customerid", "google_allow_ad_personalization_signals",
        "last_advertising_id_reset", "last_gclid", "lifetime_user_engagement",
        "non_personalized_ads", "session_id", "session_number", "sessionid", "sfmc_id", "sid",
        "uid", "userid",
    }
)  # fmt: skip

RENAME_PREFIX = "tool_"
"""What a reserved name gets in front: ``error`` -> ``tool_error``."""


# -- sanitizers ----------------------------------------------------------------------

_INVALID = re.compile(r"[^A-Za-z0-9_]+")
_UNDERSCORES = re.compile(r"_{2,}")


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _fit(name: str, original: str, limit: int) -> str:
    """``name`` cut to ``limit``; a cut name ends in a hash of the original,
    so two long names sharing a prefix stay two names."""
    if len(name) <= limit:
        return name
    tag = _digest(original)
    return f"{name[: limit - len(tag) - 1].rstrip('_')}_{tag}"


def _clean(raw: str, fallback: str) -> str:
    """Letters, digits and single underscores; starts with a letter."""
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()  # é -> e
    name = _UNDERSCORES.sub("_", _INVALID.sub("_", ascii_)).strip("_")
    if not name:
        return f"{fallback}_{_digest(raw)}"
    if not name[0].isalpha():
        name = f"{fallback}_{name}"
    return name


def _reserved(name: str, names: frozenset[str], prefixes: tuple[str, ...]) -> bool:
    low = name.lower()  # GA4 names are case sensitive; be safe and compare folded
    return low in names or low.startswith(prefixes)


def _sanitize(
    raw: Any, fallback: str, limit: int, names: frozenset[str], prefixes: tuple[str, ...]
) -> str:
    original = str(raw)
    name = _clean(original, fallback)
    if _reserved(name, names, prefixes):
        name = RENAME_PREFIX + name
    return _fit(name, original, limit)


def event_name(raw: Any) -> str:
    """A valid, unreserved GA4 event name for ``raw`` (deterministic)."""
    return _sanitize(raw, "event", MAX_NAME, RESERVED_EVENT_NAMES, RESERVED_EVENT_PREFIXES)


def param_name(raw: Any) -> str:
    """A valid, unreserved GA4 parameter name for an attribute key (deterministic)."""
    return _sanitize(raw, "param", MAX_NAME, RESERVED_PARAM_NAMES, RESERVED_PARAM_PREFIXES)


def user_property_name(raw: Any) -> str:
    """A valid, unreserved GA4 user property name (deterministic)."""
    return _sanitize(
        raw,
        "prop",
        MAX_USER_PROPERTY_NAME,
        RESERVED_USER_PROPERTY_NAMES,
        RESERVED_USER_PROPERTY_PREFIXES,
    )


def text(value: str, limit: int, keep_end: bool = False) -> str:
    """``value`` within ``limit`` characters; an ellipsis marks a cut."""
    if len(value) <= limit:
        return value
    if keep_end:  # locations: the file and line are at the end
        return "…" + value[-(limit - 1) :]
    return value[: limit - 1] + "…"


def param_value(value: Any) -> str | int | float | None:
    """A JSON value GA4 accepts as a parameter: a number or a short string.

    ``None`` means "leave the parameter out" (nothing to send).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN is not JSON
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return text(str(value), MAX_PARAM_VALUE)


def user_property_value(value: Any) -> str:
    return text(str(value), MAX_USER_PROPERTY_VALUE)
