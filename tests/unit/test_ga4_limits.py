"""GA4 names, values and params stay within every documented limit."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from optel.exporters.ga4 import limits, mapping

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _valid_event_name(name: str) -> bool:
    low = name.lower()
    return (
        bool(NAME.match(name))
        and len(name) <= 40
        and low not in limits.RESERVED_EVENT_NAMES
        and not low.startswith(limits.RESERVED_EVENT_PREFIXES)
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_becomes_a_valid_unreserved_name(raw: str) -> None:
    name = limits.event_name(raw)
    assert _valid_event_name(name), (raw, name)
    assert name == limits.event_name(raw)  # deterministic
    p = limits.param_name(raw)
    assert NAME.match(p) and len(p) <= 40 and not p.lower().startswith(("_", "ga_", "google_"))
    u = limits.user_property_name(raw)
    assert NAME.match(u) and len(u) <= 24
    assert u.lower() not in limits.RESERVED_USER_PROPERTY_NAMES


def test_reserved_names_and_prefixes_are_renamed_never_sent_as_is() -> None:
    assert limits.event_name("error") == "tool_error"
    assert limits.event_name("session_start") == "tool_session_start"
    assert limits.event_name("First_Visit") == "tool_First_Visit"
    assert limits.event_name("ga_custom") == "tool_ga_custom"
    assert limits.event_name("firebase_thing") == "tool_firebase_thing"
    assert limits.param_name("google_x") == "tool_google_x"
    assert limits.param_name("_private") == "private"
    assert limits.param_name("session_id") == "tool_session_id"  # optel sets its own
    assert limits.user_property_name("user_id") == "tool_user_id"


def test_plain_names_are_kept_and_dots_become_underscores() -> None:
    assert limits.event_name("model_converted") == "model_converted"
    assert limits.event_name("model.converted") == "model_converted"
    assert limits.event_name("Convert Model!") == "Convert_Model"
    assert limits.event_name("3d-export") == "event_3d_export"
    assert limits.event_name("Ünïcode") == "Unicode"


def test_long_names_are_cut_with_a_tag_so_they_stay_distinct() -> None:
    a = limits.event_name("x" * 50 + "_alpha")
    b = limits.event_name("x" * 50 + "_beta")
    assert len(a) == len(b) == 40 and a != b
    assert a == limits.event_name("x" * 50 + "_alpha")


def test_values_are_cut_to_100_and_user_properties_to_36() -> None:
    assert len(limits.param_value("v" * 300)) == 100  # type: ignore[arg-type]
    assert limits.param_value(True) == "true"
    assert limits.param_value(3) == 3
    assert limits.param_value(float("nan")) == "nan"
    assert limits.param_value(None) is None
    assert limits.param_value([1, 2]) == "1,2"
    assert len(limits.user_property_value("1." * 40)) == 36


def test_params_keep_required_then_declared_first_and_count_the_rest() -> None:
    attrs = [(f"declared_{i}", i) for i in range(40)]
    p = mapping.params("123", 12.4, attrs, [("status", "error")])
    assert len(p) == 25
    keys = list(p)
    assert keys[:2] == ["session_id", "engagement_time_msec"]
    assert keys[2:24] == [f"declared_{i}" for i in range(22)]
    assert p["params_dropped"] == 40 + 1 - 22
    assert p["engagement_time_msec"] == 12


def test_params_that_collide_after_cleaning_are_both_kept() -> None:
    p = mapping.params("1", None, [("a.b", 1), ("a_b", 2), ("a-b", 3)])
    assert [p["a_b"], p["a_b_2"], p["a_b_3"]] == [1, 2, 3]
    assert p["engagement_time_msec"] == 1
