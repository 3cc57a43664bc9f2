"""Free-text scrubbers: the second line, for the text kind only.

Free text leaves only when a tool opts in (``optel.Text`` attributes,
``free_text=True``); everything else is shaped by its kind (:mod:`.fit`).
When it does leave, personal data in it becomes typed placeholders, so the
text keeps its meaning (``<file:.onnx@home> not found``, ``user <email>
failed``).

First the text is normalised, so that look-alikes are seen for what they
are: NFKC (full-width ``＠`` and letters, no-break spaces), invisible format
characters removed (zero-width spaces and joiners), and percent-encoded
ASCII decoded (``%40``). Then the rules of :data:`RULES` run in order: whole
secrets and URLs first (a URL loses userinfo, path and every query value,
and keeps its host only when it is a well-known public one), then header
and assignment forms, paths (reduced to their kind, library paths to their
module-relative location), addresses, identity numbers (checksummed where a
checksum exists), tokens, host names, and last this machine's user and host
names, also glued to digits (``jsmith2024``).

Measured and decided against: ``phonenumbers`` (~45 ms import, ~700 us per
80-character text) and ``python-stdnum`` (~60 ms import, ~30 us per IBAN
check); optel lives inside other people's programs and scrubs on a budget of
microseconds, so the few checksums it needs (Luhn, IBAN mod 97) are here.

:func:`scrub_text` is memoized (bounded in entries, and in bytes: only
strings up to :data:`MEMO_MAX_LEN`).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urlsplit

from .keys import SECRET_WORDS
from .shapes import (
    _EMAIL_WORDS,
    ON_IDENTITY_CHANGE,
    is_card,
    library_location,
    looks_like_host,
    luhn,
    mentions_identity,
    path_kind,
    random_looking,
    set_local_identity,
)
from .shapes import identity as _identity

Replace = Callable[["re.Match[str]"], str]


def _const(text: str) -> Replace:
    return lambda m: text


def _keep_group(group: int, text: str) -> Replace:
    return lambda m: m.group(group) + text


# -- normalisation -----------------------------------------------------------------------

_FORMAT_CHARS = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_PERCENT = re.compile(r"%([2-7][0-9A-Fa-f])")


def normalize(text: str) -> str:
    """Look-alikes as what they are: NFKC, no invisible characters, %XX decoded."""
    if not text.isascii():
        text = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", text))
    if "%" in text:
        text = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


# -- secrets -----------------------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*(?:PRIVATE KEY|CERTIFICATE)-----.*?(?:-----END [A-Z0-9 ]*-----|$)", re.S
)
_KNOWN_TOKENS = re.compile(
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWT
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"  # GitHub
    r"|\bgl(?:pat|dt|rt|ptt|cbt|imt|agent|oas|ft|soat)-[A-Za-z0-9_\-]{16,}"  # GitLab
    r"|\bhf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|\b(?:sk|rk|pk)[-_](?:proj-|ant-|live_|test_)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic, Stripe
    r"|\bxox[abposr]-[A-Za-z0-9-]{8,}"  # Slack
    r"|\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"  # AWS key ids
    r"|\bdapi[0-9a-f]{16,}(?:-\d+)?"  # Databricks
    r"|\bnpm_[A-Za-z0-9]{20,}|\bpypi-[A-Za-z0-9_\-]{20,}"  # npm, PyPI
    r"|\bAIza[0-9A-Za-z_\-]{20,}|\bya29\.[0-9A-Za-z_\-]{10,}"  # Google
    r"|\bSG\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"  # SendGrid
    r"|\b(?:shpat|shpss|shpca|shppa)_[0-9a-fA-F]{16,}|\bdop_v1_[0-9a-f]{20,}"
    r"|[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{20,}"  # Azure AD client secrets
)
_SCHEME_WORD = re.compile(
    r"\b((?i:bearer))(\s+)[A-Za-z0-9._~+/=\-]{8,}"
    r"|\b((?i:basic))(\s+)(?=[A-Za-z0-9+/]*(?:[\d+/=]|[a-z][A-Z]|[A-Z][a-z]*[A-Z]))"
    r"[A-Za-z0-9+/]{8,}={0,2}"
    r"|\b((?i:token|digest|apikey|api-key|key|secret))(\s+|\s*[:=]\s*)"
    r"(?=[A-Za-z0-9._~+/=\-]*[\d+/=_~])[A-Za-z0-9._~+/=\-]{8,}"
)


def _scheme_word(m: re.Match[str]) -> str:
    word, space = next((m.group(i), m.group(i + 1)) for i in (1, 3, 5) if m.group(i))
    return word + space + "<secret>"


_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key|api-key|x-auth-token|x-access-token"
    r"|cookie|set-cookie)(\s*[:=]\s*)[^\n\"'}]*"
)

# ``password=...``, ``DB_PASS: x``, ``{'pass': 'x'}``, ``--token x``, ``-pPASSWORD``, .netrc
_SECRET_NAME = (
    r"[\w.\-]*(?:pass|pwd|secret|token(?!s\b|iz)|api[_\-]?key|access[_\-]?key|private[_\-]?key"
    r"|account[_\-]?key|secret[_\-]?key|auth|cred|cookie|session[_\-]?id|\bsid\b|salt)[\w.\-]*"
)
_QUOTED_OR_RUN = r"""(?:"[^"\n]*"?|'[^'\n]*'?|[^\s"'}\]),;]+)"""
_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w.\-])([\"']?" + _SECRET_NAME + r"[\"']?\s*[=:]\s*)" + _QUOTED_OR_RUN
)
_FLAG = re.compile(
    r"(?i)(?<!\S)(--?[\w\-]*(?:pass|pwd|secret|token|key|auth|cred)[\w\-]*\s+)"
    r"(?!-)" + _QUOTED_OR_RUN
)
_MYSQL_P = re.compile(r"(?<!\S)(-p)(?=[^\s\d])\S+")
_NETRC = re.compile(r"(?i)\b(password|passwd|passphrase)(\s+)(?=\S*[^a-z\s])\S+")
_NETRC_LOGIN = re.compile(r"(?i)\b(machine\s+)\S+(\s+login\s+)\S+")
_USER_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w.\-])([\"']?(?:user(?:[_\-]?name)?|login|owner|email|account|customer"
    r"|author)[\"']?\s*[=:]\s*)" + _QUOTED_OR_RUN
)
_USER_FLAG = re.compile(r"(?i)(?<!\S)(--(?:user|username|login|owner|email)\s+)(?!-)\S+")

# -- locations ----------------------------------------------------------------------------

PUBLIC_HOSTS = frozenset(
    {
        "pypi.org", "files.pythonhosted.org", "github.com", "gitlab.com", "huggingface.co",
        "download.pytorch.org", "storage.googleapis.com", "registry.npmjs.org",
        "conda.anaconda.org", "repo.anaconda.com", "localhost", "127.0.0.1",
    }
)  # fmt: skip
"""Hosts kept in URLs; every other host becomes ``<host>`` (internal names are personal)."""

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s\"'<>`]+")


def _url(m: re.Match[str]) -> str:
    """Scheme and a well-known host; userinfo, path, query and fragment dropped."""
    raw = m.group(0).rstrip(".,;:)]}")
    tail = m.group(0)[len(raw) :]
    try:
        parts = urlsplit(raw)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "<url>" + tail
    out = f"{parts.scheme.lower()}://" + (host if host in PUBLIC_HOSTS else "<host>")
    if parts.path.strip("/"):
        out += "/<path>"
    if parts.query:
        out += "?<query>"
    return out + tail


# a schemeless URL: a host name, then a port, path or query
_BARE_URL = re.compile(
    r"(?<![\w.@/\\\-])[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?::\d{1,5})?[/?][^\s\"'<>`]*"
)


def _bare_url(m: re.Match[str]) -> str:
    text = m.group(0)
    host = re.split(r"[:/?]", text, maxsplit=1)[0]
    if not looks_like_host(host):
        return text  # a relative path such as models.v2/x: the path rule decides
    return (host.lower() if host.lower() in PUBLIC_HOSTS else "<host>") + "/<path>"


# in SQL, quoted strings and numbers compared with something are data: WHERE name = ?
_SQL = re.compile(r"(?i)\b(?:select|insert|update|delete|where|values)\b")
_SQL_LITERAL = re.compile(
    r"""(?i)((?:=|<>|!=|<=|>=|<|>|\blike|\bin\s*\(|,|\bvalues\s*\()\s*)(?:'(?:[^'\\]|\\.|'')*'|\d[\d.]*)"""
)


def _sql(text: str) -> str:
    prev = None
    while prev != text:  # IN ('a', 'b'): each literal after the one before
        prev, text = text, _SQL_LITERAL.sub(lambda m: m.group(1) + "?", text)
    return text


_QUERY = re.compile(r"\?[^\s\"'<>`=&]+=[^\s\"'<>`]*")

_PATH = re.compile(
    r"(?:(?<![\w.~])~[\w.\-]*(?:[/\\][^\s\"'<>|,;()\[\]{}]*)?"
    r"|(?<![\w.:/\\])(?:[A-Za-z]:)?[/\\]{1,2}[^\s\"'<>|,;()\[\]{}/\\]+(?:[/\\][^\s\"'<>|,;()\[\]{}]*)?"
    r"|(?<![\w.:/\\\-])(?:\.{1,2}[/\\]|[\w.\-$]+[/\\])[^\s\"'<>|,;()\[\]{}]*)"
)


def _path(m: re.Match[str]) -> str:
    raw = m.group(0)
    path = raw.rstrip(".:'\"`")
    tail = raw[len(path) :]
    if not (path.startswith(("/", "\\", "~", ".")) or path[1:3] in (":\\", ":/")):
        # relative: a/b words (I/O, km/h, and/or) stay unless long or file-like
        segments = [s for s in re.split(r"[/\\]", path) if s]
        if len(path) <= 7 and len(segments) <= 2 and "." not in path:
            return raw
    lib = library_location(path)
    if lib is not None:
        return lib + tail
    return f"<{path_kind(path)}>" + tail


# -- addresses and numbers ------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.%+\-]+@[\w\-\[\]:]+(?:\.[\w\-\[\]:]+)*")
_MAC = re.compile(
    r"(?i)(?<![\w:\-.])(?:(?:[0-9a-f]{2}([:\-]))(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}"
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})(?![\w:\-])"
)
_BARE_MAC = re.compile(r"(?i)(?<![\w\-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12}(?![\w\-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")


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


# 13-19 digits in groups separated by one space or dash, or dotted groups of
# four (4111.1111.1111.1111); never a float's digits
_CARD = re.compile(
    r"(?<![\d.,])(?:\d(?:[ \-]?\d){12,18}|\d{4}(?:\.\d{4}){2,3}(?:\.\d{1,4})?)(?!\d)(?!\.\d)"
)


def _card(m: re.Match[str]) -> str:
    text = m.group(0)
    pos = [i for i, c in enumerate(text) if c.isdigit()]
    digits = "".join(text[i] for i in pos)
    if is_card(digits):
        return "<card>"
    # The match may run into a neighbouring number ("4111 1111 1111 1111 0"):
    # look for a card between separators inside it, longest first.
    n = len(digits)
    for start in range(n - 12):
        if start and text[pos[start] - 1] not in " -.":
            continue
        for end in range(min(n, start + 19), start + 12, -1):
            if end < n and text[pos[end - 1] + 1] not in " -.":
                continue
            if is_card(digits[start:end]):
                a, b = pos[start], pos[end - 1] + 1
                return text[:a] + "<card>" + _CARD.sub(_card, text[b:])
    return text


def iban_ok(text: str) -> bool:
    """ISO 13616 check digits (mod 97 of the rearranged number)."""
    s = re.sub(r"\s", "", text).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


_IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


def _iban(m: re.Match[str]) -> str:
    return "<iban>" if iban_ok(m.group(0)) else m.group(0)


_SSN = re.compile(r"(?<![\d\-])\d{3}([- ])\d{2}\1\d{4}(?![\d\-])")
_NINO = re.compile(
    r"(?i)\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
# a phone number: +country or (area) or groups of 2-5 digits joined by one separator
_PHONE = re.compile(
    r"(?<![\w+.])\+\d{1,3}[ .\-]?(?:\(\d{1,5}\)[ .\-]?)?\d{1,5}(?:[ .\-]?\d{1,5}){1,5}(?![\w.]*\d)"
    r"|(?<![\w+.])00\d{1,3}[ .\-](?:\(\d{1,5}\)[ .\-]?)?\d{1,5}(?:[ .\-]?\d{1,5}){1,5}(?![\w.]*\d)"
    r"|(?<![\w.])\(\d{2,5}\)[ .\-]?\d{2,5}(?:[ .\-]?\d{2,5}){1,3}(?![\w.]*\d)"
    r"|(?<![\w.\-:])\d{2,5}(?:[ .\-]\d{2,5}){2,4}(?![\w.\-:]*\d)"
)
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{1,3}(?:\.\d{1,3}){3}")


def _phone(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15 or _DATE_LIKE.fullmatch(text):
        return text
    if text[0] not in "+(0" and "." in text and " " not in text and "-" not in text:
        return text  # dotted digits without a leading + or 0: a version, not a phone
    return "<phone>"


_LONG_NUMBER = re.compile(r"(?<![\w.])\d{9,}(?![\w]|\.\d)")

# -- tokens --------------------------------------------------------------------------------

_UUID = re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
# (the digits after a decimal point are a number's, as for _LONG_NUMBER: repr(0.0003054757828903180)
# is '0.00030547578289031804', twenty digits after the point)
_HEX = re.compile(r"(?i)(?<![0-9a-z])(?!(?<=\d\.)\d+(?![0-9a-z]))[0-9a-f]{20,}(?![0-9a-z])")
# padded base64 with both cases (or digits): not an upper-case NAME= assignment
_BASE64 = re.compile(
    r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z0-9+/])"
    r"[A-Za-z0-9+/]{8,}={1,2}(?![A-Za-z0-9+/=])"
)
_TOKEN = re.compile(r"[A-Za-z0-9+/_~=\-]{16,}")


def _token(m: re.Match[str]) -> str:
    text = m.group(0)
    if random_looking(text, 3.5) or any(
        len(s) >= 16 and random_looking(s, 3.5) for s in re.split(r"[/_\-]", text)
    ):
        return "<secret>"
    return text


_HOSTNAME = re.compile(
    r"(?<![\w.\-@/\\])[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+\.?(?![\w\-/\\])"
)


def _hostname(m: re.Match[str]) -> str:
    text = m.group(0)
    if text.lower().rstrip(".") in PUBLIC_HOSTS:
        return text
    return "<host>" if looks_like_host(text) else text


def scrub_blocks(text: str) -> str:
    """Only the rules that span lines (PEM blocks), for text handled line by line."""
    return _PEM.sub("<secret>", text)


# -- the rules, in order ------------------------------------------------------------------------


Hint = Callable[[str, str], bool]
"""(text, text.lower()) -> False only when the rule cannot match."""


def _contains(*words: str, lower: bool = True) -> Hint:
    """A hint: one of ``words`` is in the text (in its lower-case form with ``lower``)."""
    if lower:
        return lambda t, low: any(w in low for w in words)
    return lambda t, low: any(w in t for w in words)


_TOKEN_PREFIXES = ("eyJ", "gh", "gl", "hf_", "k-", "k_", "xox", "AKIA", "ASIA", "AGPA", "AIDA",
                   "AROA", "ANPA", "ANVA", "AIPA", "dapi", "npm_", "pypi-", "AIza", "ya29", "SG.",
                   "shp", "dop_v1_", "Q~")  # fmt: skip
_ASSIGNMENT_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "cookie", "sess",
                     "sid", "salt")  # fmt: skip


def _has(pattern: str) -> Hint:
    """A hint: a small pattern every match of the rule contains (cheaper to look for)."""
    found = re.compile(pattern).search
    return lambda t, low: found(t) is not None


RULES: list[tuple[str, Hint, re.Pattern[str], Replace | str]] = [
    ("pem", lambda t, low: "-----BEGIN" in t, _PEM, "<secret>"),
    ("url", lambda t, low: "://" in t, _URL, _url),
    ("header", _contains("auth", "cookie", "key", "token"), _HEADER, _keep_group(1, ": <secret>")),
    ("known_token", _contains(*_TOKEN_PREFIXES, lower=False), _KNOWN_TOKENS, "<secret>"),
    ("scheme_word", _contains("bearer", "basic", "token", "digest", "key", "secret"), _SCHEME_WORD,
     _scheme_word),
    ("assignment", _contains(*_ASSIGNMENT_WORDS), _ASSIGNMENT, _keep_group(1, "<secret>")),
    ("flag", lambda t, low: "-" in t, _FLAG, _keep_group(1, "<secret>")),
    ("mysql_p", lambda t, low: "-p" in t, _MYSQL_P, _keep_group(1, "<secret>")),
    ("netrc", lambda t, low: "pass" in low, _NETRC, lambda m: m.group(1) + m.group(2) + "<secret>"),
    ("netrc_login", lambda t, low: "login" in low, _NETRC_LOGIN,
     lambda m: m.group(1) + "<host>" + m.group(2) + "<user>"),
    ("user_assignment", _contains("user", "login", "owner", "email", "account", "customer",
                                  "author"), _USER_ASSIGNMENT, _keep_group(1, "<user>")),
    ("user_flag", lambda t, low: "--" in t, _USER_FLAG, _keep_group(1, "<user>")),
    ("email", lambda t, low: "@" in t, _EMAIL, "<email>"),
    ("email_words",
     lambda t, low: " at " in low or "[at]" in low or "(at)" in low or "{at}" in low or "<at>" in low,
     _EMAIL_WORDS, "<email>"),
    ("bare_url", _has(r"\w\.\w+(?::\d+)?[/?]"), _BARE_URL, _bare_url),
    ("query", lambda t, low: "?" in t, _QUERY, "?<query>"),
    ("path", lambda t, low: "/" in t or "\\" in t or "~" in t, _PATH, _path),
    ("uuid", _has(r"[0-9a-fA-F]{8}-"), _UUID, "<uuid>"),
    # numbers with checksums or fixed shapes before the looser address shapes
    ("iban", _has(r"[A-Za-z]{2}\d\d"), _IBAN, _iban),
    ("ssn", _has(r"\d{3}[- ]\d\d[- ]\d"), _SSN, "<ssn>"),
    ("nino", _has(r"[A-Za-z]{2} ?\d\d ?\d\d"), _NINO, "<id>"),
    ("card", _has(r"\d{4}"), _CARD, _card),
    ("mac", _has(r"[0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-]|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\."),
     _MAC, "<mac>"),
    # IPv4 first: "::ffff:192.168.0.1" would otherwise lose only its "::ffff:192"
    ("ipv4", _has(r"\d\.\d{1,3}\.\d"), _IPV4, _ipv4),
    ("ipv6", _has(r"::|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]"), _IPV6, _ipv6),
    ("phone", _has(r"\+\d|\d{2}[ .\-)]+\d{2}"), _PHONE, _phone),
    ("long_number", _has(r"\d{9}"), _LONG_NUMBER, "<number>"),
    ("bare_mac", _has(r"[0-9A-Fa-f]{12}"), _BARE_MAC, "<mac>"),
    ("hex", _has(r"[0-9a-fA-F]{20}"), _HEX, "<hex>"),
    ("base64", lambda t, low: "=" in t, _BASE64, "<secret>"),
    ("token", _has(r"[A-Za-z0-9+/_~=\-]{16}"), _TOKEN, _token),
    ("hostname", _has(r"\w\.\w+\.\w|\w\.(?:com|net|org|edu|gov|internal|local|lan|corp)\b"),
     _HOSTNAME, _hostname),
]  # fmt: skip
"""Every value rule, in the order applied: (name, hint, pattern, replacement).

The hint is a cheap test implied by every match of the pattern; when it is
false the pattern is not run. The local user and host names come last."""

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-]{0,15}")  # shorter than any token rule


def _scrub(text: str) -> str:
    text = normalize(text)
    if _PLAIN.fullmatch(text) and "." not in text and not mentions_identity(text):
        return text
    if ("'" in text or "=" in text) and _SQL.search(text):
        text = _sql(text)
    low = text.lower()
    for _, hint, pattern, replace in RULES:
        if hint(text, low):
            new = pattern.sub(replace, text)
            if new != text:
                text, low = new, new.lower()
    user, host = _identity()
    if host is not None:  # first: host names often contain the user name
        text = host.sub("<host>", text)
    if user is not None:
        text = user.sub("<user>", text)
    return text


_memo = lru_cache(maxsize=8192)(_scrub)

MAX_TEXT = 100_000
"""Longer strings are cut before scrubbing (bounded work per value; the cut
tail is dropped by the text kind)."""

MEMO_MAX_LEN = 1024
"""Only strings up to this length are memoized: the cache stays small in bytes."""


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
ON_IDENTITY_CHANGE.append(clear_memo)

MAX_TEXT_OUT = 1000
"""Text-kind values are cut to this many characters after scrubbing, at a token boundary."""


CUT_MARGIN = 64
"""How much of a cut value's end is dropped: a datum cut in two (``x at y dot c``,
``4111 1111 1111``) starts at most this far before the cut."""


def text(value: str) -> str:
    """Free text through the pattern scrubbers, cut after scrubbing at a token boundary.

    A value cut before it got here (:class:`optel.records.Cut`, the SDK's
    length limit; or longer than :data:`MAX_TEXT`) may end in part of a datum
    that no pattern recognises any more (``write to kwame at acme dot c``):
    its last :data:`CUT_MARGIN` characters are dropped before scrubbing.
    """
    from ..records import Cut

    raw = str(value)
    if isinstance(value, Cut) or len(raw) > MAX_TEXT:
        raw = raw[:MAX_TEXT]
        out = _drop_tail(scrub_text(raw[: max(0, len(raw) - CUT_MARGIN)]))
    else:
        out = scrub_text(raw)
    if len(out) > MAX_TEXT_OUT:
        out = _drop_tail(out[:MAX_TEXT_OUT])
    return out


def _drop_tail(text: str) -> str:
    i = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
    return (text[:i] if i > 0 else "") + "…"  # the last token may be part of a datum


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


__all__ = [
    "scrub_text",
    "scrub_value",
    "text",
    "normalize",
    "RULES",
    "SECRET_WORDS",
    "set_local_identity",
    "mentions_identity",
    "is_card",
    "luhn",
]
