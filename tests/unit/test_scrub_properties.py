"""Property tests: generated personal data never survives; plain values pass unchanged."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from optel.anonymize.values import scrub_text

name = st.text(string.ascii_lowercase, min_size=3, max_size=10)
word = st.text(string.ascii_letters + " ,.;()[]-", max_size=30)
octet = st.integers(0, 255)

emails = st.builds(lambda u, d, t: f"{u}@{d}.{t}", name, name, st.sampled_from(["com", "org", "io", "de"]))
ipv4 = st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", octet, octet, octet, octet)
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda groups: ":".join(f"{g:x}" for g in groups)
)
macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda bs: ":".join(f"{b:02x}" for b in bs)
)
homes = st.builds(
    lambda kind, user, rest: kind.format(user=user) + rest,
    st.sampled_from(["/home/{user}", "/Users/{user}", "C:\\Users\\{user}", "~{user}"]),
    name.map(lambda n: "u" + n),
    st.sampled_from(["", "/x", "/data/model.pt", "\\AppData\\tmp"]),
)
github = st.text(string.ascii_letters + string.digits, min_size=36, max_size=40).map(lambda s: "ghp_" + s)
aws = st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(lambda s: "AKIA" + s)


def _needle(value: str) -> str:
    """The identifying part that must be gone."""
    for marker in ("/home/", "/Users/", "C:\\Users\\", "~"):
        if value.startswith(marker):
            return value[len(marker):].split("/")[0].split("\\")[0]
    return value


@settings(max_examples=150, deadline=None)
@given(before=word, leak=st.one_of(emails, ipv4, ipv6, macs, homes, github, aws), after=word)
def test_personal_data_embedded_in_text_never_survives(before: str, leak: str, after: str) -> None:
    text = f"{before} {leak} {after}"
    assert _needle(leak) not in scrub_text(text).replace(before, "").replace(after, "")


versions = st.builds(
    lambda a, b, c, suffix: f"{a}.{b}.{c}{suffix}",
    st.integers(0, 99), st.integers(0, 99), st.integers(0, 999),
    st.sampled_from(["", "rc1", "+cu121", ".dev0", "-beta"]),
)
enums = st.text(string.ascii_lowercase + "_", min_size=1, max_size=19)
modules = st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=8), min_size=1, max_size=4).map(".".join)
frameworks = st.sampled_from(["onnx", "pytorch", "tensorflow", "paddle", "openvino", "fp16", "int8", "cuda"])


# counts, sizes, durations and millisecond timestamps (a 13-19 digit number
# with a card network's prefix that passes Luhn is treated as a card)
numbers = st.one_of(
    st.integers(-(10**12), 10**12), st.integers(1_000_000_000_000, 1_999_999_999_999)
).map(str)


@settings(max_examples=300, deadline=None)
@given(st.one_of(versions, enums, modules, frameworks, numbers))
def test_plain_values_pass_unchanged(value: str) -> None:
    assert scrub_text(value) == value
