"""Value scrubbers: personal data inside strings becomes a typed placeholder.

Applied to every string that survives the key policy (attribute values,
span, event and metric names, log bodies, exception messages). Each rule
has a name and a placeholder, so the data keeps its meaning
(``<home>/models/resnet.onnx``, ``user <email> failed``). Order matters:
whole secrets first (a JWT contains dots that look like other things), then
URLs, then paths, then addresses and numbers.

:func:`scrub_text` is memoized (bounded in entries, and in bytes: only
strings up to :data:`MEMO_MAX_LEN`); short plain values (``onnx``,
``1.2.3``, ``torch.nn.functional``) take a fast path that skips every rule,
and each rule in :data:`RULES` runs only when its cheap hint is present.
"""

from __future__ import annotations

import getpass
import ipaddress
import math
import re
import socket
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from .keys import SECRET_WORDS

Rule = tuple[str, "re.Pattern[str]", Callable[["re.Match[str]"], str]]


def _const(text: str) -> Callable[[re.Match[str]], str]:
    return lambda m: text


def _keep_group(group: int, text: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(group) + text


# -- secrets ---------------------------------------------------------------------------

_SECRETS: list[Rule] = [
    (
        "pem",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
            re.S,
        ),
        _const("<secret>"),
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        _const("<secret>"),
    ),
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"), _keep_group(1, "<secret>")),
    (
        "basic_auth",  # base64 of user:password; must hold a digit so prose stays
        re.compile(r"(?i)\b(basic\s+)(?=[A-Za-z0-9+/]*\d)[A-Za-z0-9+/]{8,}={0,2}"),
        _keep_group(1, "<secret>"),
    ),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"), _const("<secret>")),
    (
        "github",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"),
        _const("<secret>"),
    ),
    ("huggingface", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), _const("<secret>")),
    ("openai", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), _const("<secret>")),
    ("slack", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), _const("<secret>")),
]

# ``password=...`` in free text; runs after URLs, whose query values go anyway.
# The words are the key policy's secret words (``session`` only as a session id).
_ASSIGNMENT_NAMES = "|".join(
    re.escape(w).replace("_", "[_-]").replace("\\-", "[_-]")
    for w in sorted({*SECRET_WORDS, "sid", "session_id"} - {"session"}, key=len, reverse=True)
)
_ASSIGNMENT: Rule = (
    "assignment",
    re.compile(
        r"(?i)(?<![A-Za-z])((?:" + _ASSIGNMENT_NAMES + r")"
        r"[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&<]+"
    ),
    _keep_group(1, "<secret>"),
)

# -- locations ----------------------------------------------------------------------------

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s\"'<>`]+")


def _url(m: re.Match[str]) -> str:
    """Keep scheme, host and path; drop userinfo, query values and fragment."""
    raw = m.group(0)
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        query = "&".join(
            f"{pair.split('=', 1)[0]}=<value>" if "=" in pair else "<value>"
            for pair in parts.query.split("&")
            if pair
        )
        return urlunsplit((parts.scheme, host, _paths(parts.path), query, ""))
    except ValueError:
        return "<url>"


_HOME_POSIX = re.compile(r"(?<![\w.])/(?:home|Users|export/home)/[^/\s\"'<>:]+")
_HOME_WIN = re.compile(r"(?i)\b[A-Z]:[\\/]+(?:Users|Documents and Settings)[\\/]+[^\\/\s\"'<>:]+")
_HOME_TILDE = re.compile(r"(?<![\w/])~[A-Za-z_][\w.-]*(?=/|\b)")


def _paths(text: str) -> str:
    text = _HOME_POSIX.sub("<home>", text)
    text = _HOME_WIN.sub("<home>", text)
    return _HOME_TILDE.sub("<home>", text)


# -- addresses and numbers ------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_MAC = re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
# not next to a decimal point: a float's digits ("0.4111...", "4111...1.0") are no card
_CARD = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?!\d|\.\d)")
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
_USER_AT = re.compile(r"(?<![\w.+-])[\w.+-]+@(?=\[?<(?:ip|host)>)")


def _ipv4(m: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return m.group(0)
    return "<ip>"


def _ipv6(m: re.Match[str]) -> str:
    text = m.group(0).split("%")[0]
    if "::" not in text and text.count(":") != 7:
        return m.group(0)  # "12:30:45" is a time, not an address
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return m.group(0)
    return "<ip>"


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes of the major card networks (Visa 4, Mastercard 51-55 and
# 22-27, Amex 34/37, Discover 6011/64/65, JCB 35, Diners 30/36/38, UnionPay
# 62): https://en.wikipedia.org/wiki/Payment_card_number#Issuer_identification_number_(IIN)
# Millisecond timestamps (13 digits starting with 1) are thereby never cards.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[0478]|35|6011|6[245]")


def _is_card(digits: str) -> bool:
    return (
        13 <= len(digits) <= 19
        and _CARD_PREFIX.match(digits) is not None
        and luhn(digits)
        and len(set(digits)) > 1
    )


def _card(m: re.Match[str]) -> str:
    text = m.group(0)
    pos = [i for i, c in enumerate(text) if c.isdigit()]
    digits = "".join(text[i] for i in pos)
    if _is_card(digits):
        return "<card>"
    # The match may run into a neighbouring number ("4111 1111 1111 1111 0"):
    # look for a card between separators inside it, longest first.
    n = len(digits)
    for start in range(n - 12):
        if start and text[pos[start] - 1] not in " -":
            continue
        for end in range(min(n, start + 19), start + 12, -1):
            if end < n and text[pos[end - 1] + 1] not in " -":
                continue
            if _is_card(digits[start:end]):
                a, b = pos[start], pos[end - 1] + 1
                return text[:a] + "<card>" + _CARD.sub(_card, text[b:])
    return text


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_WORDY = re.compile(r"[a-z]{3,}")


def _random_looking(text: str, min_entropy: float) -> bool:
    """Mixed case and digits, high entropy, and not made of words.

    Random keys have few runs of 3+ lowercase letters (under half their
    characters for 99.9% of base64 keys); CamelCase identifiers and folder
    names are mostly such runs (``Model3ConversionWeights``).
    """
    if not (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    ):
        return False
    if entropy(text) < min_entropy:
        return False
    wordy = sum(len(w) for w in _WORDY.findall(text))
    return wordy < len(text) / 2


def _token(m: re.Match[str]) -> str:
    """Long random-looking strings are treated as secrets.

    Hex digests (4 bits per character at most) and uuids stay: they name
    builds and models, not people. A slashed candidate is usually a path:
    it is a secret when it is random as a whole or has a random segment.
    """
    text = m.group(0)
    if _random_looking(text, 4.3):
        if "/" not in text:
            return "<secret>"
        segments = [s for s in text.split("/") if s]
        if len(segments) <= 3 or any(len(s) >= 16 and _random_looking(s, 3.6) for s in segments):
            return "<secret>"
    elif "/" in text and any(len(s) >= 16 and _random_looking(s, 3.6) for s in text.split("/")):
        return "<secret>"
    return text


# -- who runs this --------------------------------------------------------------------------

_GENERIC_NAMES = {"root", "user", "admin", "runner", "ubuntu", "localhost", "home", "users"}


def _identity_pattern(names: list[str]) -> re.Pattern[str] | None:
    names = sorted({n for n in names if len(n) >= 3 and n.lower() not in _GENERIC_NAMES}, key=len)
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in reversed(names))
    return re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def _local_identity() -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    try:
        user = getpass.getuser()
    except Exception:  # no user name known: nothing to look for
        user = ""
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    hosts = [host, host.split(".")[0]] if host else []
    return _identity_pattern([user]), _identity_pattern(hosts)


_USER, _HOST = _local_identity()


def set_local_identity(user: str | None = None, host: str | None = None) -> None:
    """Replace the user and host names looked for; no arguments: this machine's."""
    global _USER, _HOST
    if user is None and host is None:
        _USER, _HOST = _local_identity()
    else:
        host = host or ""
        _USER, _HOST = (
            _identity_pattern([user or ""]),
            _identity_pattern([host, host.split(".")[0]]),
        )
    clear_memo()


def scrub_blocks(text: str) -> str:
    """Only the rules that span lines (PEM blocks), for text handled line by line."""
    return _SECRETS[0][1].sub(_SECRETS[0][2], text)


# -- entry points --------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_.+-]{1,19}")  # shorter than any token rule
_SUSPECT = re.compile(r"\d{5,}|@|:|/|\\|~")

# Hints (see RULES): a rule whose hint is absent cannot match and is skipped.
# every assignment name contains one of these
_ASSIGNMENT_WORDS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "cookie",
    "session",
    "sid",
    "cred",
)
_DIGITS4 = re.compile(r"\d{4}")  # every card number format has a run of 4 digits

MAX_TEXT = 100_000
"""Longer strings are cut before scrubbing (bounded work per value)."""

MEMO_MAX_LEN = 1024
"""Only strings up to this length are memoized: the cache stays small in bytes."""


def _plain(text: str) -> bool:
    """Short values made of name characters, without long digit runs."""
    return _PLAIN.fullmatch(text) is not None and _SUSPECT.search(text) is None


_AWS_HINT = re.compile(r"A[KSGIR][IPSDO]A")
_ASSIGNMENT_HINT = re.compile("|".join(_ASSIGNMENT_WORDS))

Hint = Callable[[str, str], bool]
"""(text, text.lower()) -> False only when the rule cannot match."""

_SECRET_HINTS: list[Hint] = [
    lambda t, low: "-----BEGIN" in t,
    lambda t, low: "eyJ" in t,
    lambda t, low: "bearer" in low,
    lambda t, low: "basic" in low,
    lambda t, low: _AWS_HINT.search(t) is not None,
    lambda t, low: "gh" in t,
    lambda t, low: "hf_" in t,
    lambda t, low: "sk-" in t,
    lambda t, low: "xox" in t,
]

RULES: list[tuple[str, Hint, re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    # whole secrets first: a JWT or a key holds dots and dashes that look like other things
    *[
        (name, hint, pattern, replace)
        for (name, pattern, replace), hint in zip(_SECRETS, _SECRET_HINTS)
    ],
    ("url", lambda t, low: "://" in t, _URL, _url),
    (
        "assignment",
        lambda t, low: _ASSIGNMENT_HINT.search(low) is not None,
        _ASSIGNMENT[1],
        _ASSIGNMENT[2],
    ),
    ("home_posix", lambda t, low: "/home/" in t or "/Users/" in t, _HOME_POSIX, "<home>"),
    ("home_windows", lambda t, low: ":" in t, _HOME_WIN, "<home>"),
    ("home_tilde", lambda t, low: "~" in t, _HOME_TILDE, "<home>"),
    ("email", lambda t, low: "@" in t, _EMAIL, "<email>"),
    ("mac", lambda t, low: ":" in t or "-" in t, _MAC, "<mac>"),
    # IPv4 first: "::ffff:192.168.0.1" would otherwise lose only its "::ffff:192"
    ("ipv4", lambda t, low: "." in t, _IPV4, _ipv4),
    ("ipv6", lambda t, low: ":" in t, _IPV6, _ipv6),
    # the user part of user@address (ssh, scp, git remotes) once the address is gone
    ("user_at", lambda t, low: "@<" in t or "@[<" in t, _USER_AT, "<user>@"),
    ("card", lambda t, low: _DIGITS4.search(t) is not None, _CARD, _card),
    ("token", lambda t, low: len(t) >= 32, _TOKEN, _token),
]
"""Every value rule, in the order applied: (name, hint, pattern, replacement).

The hint is a cheap test implied by every match of the pattern; when it is
false the pattern is not run. The local user and host names come last."""


def _scrub(text: str) -> str:
    if _plain(text) and not _mentions_identity(text):
        return text
    low = text.lower()
    for _, hint, pattern, replace in RULES:
        if hint(text, low):
            new = pattern.sub(replace, text)
            if new != text:
                text, low = new, new.lower()
    if _HOST is not None:  # first: host names often contain the user name
        text = _HOST.sub("<host>", text)
    if _USER is not None:
        text = _USER.sub("<user>", text)
    return text


_memo = lru_cache(maxsize=8192)(_scrub)


def scrub_text(text: str) -> str:
    """``text`` with personal data replaced by typed placeholders.

    Memoized (bounded in entries and, through :data:`MEMO_MAX_LEN`, in bytes):
    the same path or message seen again costs a dictionary lookup.
    """
    if len(text) <= MEMO_MAX_LEN:
        return _memo(text)
    return _scrub(text if len(text) <= MAX_TEXT else text[:MAX_TEXT])


clear_memo = _memo.cache_clear
memo_info = _memo.cache_info


def _mentions_identity(text: str) -> bool:
    return (_USER is not None and _USER.search(text) is not None) or (
        _HOST is not None and _HOST.search(text) is not None
    )


def scrub_value(value: Any) -> Any:
    """Strings scrubbed; numbers, booleans and None as they are; sequences item
    by item; mappings value by value; anything else scrubbed as its ``str``
    (fail closed: an unknown type is never passed through)."""
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    return scrub_text(str(value)[:MAX_TEXT])
