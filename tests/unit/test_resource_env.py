"""OTEL_RESOURCE_ATTRIBUTES as the drop-in reads it: pairs kept, anything else one line."""

from __future__ import annotations

from unittest import mock
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from optel import _errors
from optel.pipeline import resource_attributes_from_env
from tests.unit.test_sdkenv import _written

VAR = "OTEL_RESOURCE_ATTRIBUTES"
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
key = text.filter(lambda k: k != "")
pair = st.tuples(key, text).map(lambda kv: ("pair", kv))
# not a pair: text without '=' (a comma would split it), or a pair without a key
no_sign = text.filter(lambda t: "=" not in t and "," not in t and t.strip() != "")
no_key = st.tuples(st.sampled_from(["", " "]), text).map(lambda p: f"{p[0]}={quote(p[1])}")
bad = st.one_of(no_sign, no_key).map(lambda t: ("bad", t))
blank = st.sampled_from(["", " "]).map(lambda t: ("blank", t))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(pair, bad, blank), max_size=8))
def test_pairs_are_kept_and_anything_else_is_one_line(entries: list[tuple[str, object]]) -> None:
    parts, expected, n_bad = [], {}, 0
    for kind, item in entries:
        if kind == "pair":
            k, v = item  # type: ignore[misc]
            parts.append(f"{quote(k)}={quote(v)}")  # the spec: URL-encoded
            expected[k] = v  # (encoded, its spaces are its own)
        else:
            parts.append(str(item))
            n_bad += kind == "bad"
    _errors._warned.clear()
    with mock.patch("sys.stderr") as err:
        got = resource_attributes_from_env({VAR: ",".join(parts)})
    said = _written(err)
    assert got == expected
    if not n_bad:
        assert said == ""  # (a blank entry, such as a trailing comma, is not worth a word)
        return
    (line,) = said.splitlines()
    counted = "1 entry is" if n_bad == 1 else f"{n_bad} entries are"
    assert line.startswith(f"optel: {VAR} is not valid ({counted} not key=value, such as ")
    using = f"the other {len(expected)}" if expected else "none of it"
    assert line.endswith(f"; using {using} instead")
