"""Shapes: what a label, a version, a path, a name and a location look like.

The ground floor of the anonymizer: pure checks with no dependence on the
other modules of this package. :func:`label_ok` (a short identifier-like
token that names nothing personal), :func:`version_ok`, :func:`path_kind`
(what a path is, never the path), :func:`name` (a name reduced to an
identifier), :func:`location` (a file as a module-relative location), and
who runs this process (:func:`mentions_identity`: this machine's user and
host names, also glued to digits). Memoized: labels and names repeat.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import socket
import sysconfig
import tempfile
from functools import lru_cache
from typing import Callable

MAX_LABEL = 64
MAX_NAME_CHARS = 200
MAX_NAME_TOKENS = 40


# -- who runs this --------------------------------------------------------------------------

_GENERIC_NAMES = {"root", "user", "admin", "runner", "ubuntu", "localhost", "home", "users",
                  "test", "dev", "build", "default", "guest", "docker", "app"}  # fmt: skip


def _identity_pattern(names: list[str]) -> re.Pattern[str] | None:
    names = sorted({n for n in names if len(n) >= 3 and n.lower() not in _GENERIC_NAMES}, key=len)
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in reversed(names))
    # letters may not touch the name; digits may (jsmith2024, 2jsmith)
    return re.compile(rf"(?i)(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])")


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
ON_IDENTITY_CHANGE: list[Callable[[], None]] = []
"""Called when the names looked for change (memos built on them are dropped)."""


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
    _label_memo.clear()
    _name_memo.clear()
    _path_memo.clear()
    for forget in ON_IDENTITY_CHANGE:
        forget()


def identity() -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """The patterns of this machine's user and host names (``None``: unknown)."""
    return _USER, _HOST


def mentions_identity(text: str) -> bool:
    """Does ``text`` hold this machine's user or host name?"""
    return (_USER is not None and _USER.search(text) is not None) or (
        _HOST is not None and _HOST.search(text) is not None
    )


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_WORDY = re.compile(r"[a-z]{3,}")


def random_looking(text: str, min_entropy: float) -> bool:
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


def is_card(digits: str) -> bool:
    return (
        13 <= len(digits) <= 19
        and _CARD_PREFIX.match(digits) is not None
        and luhn(digits)
        and len(set(digits)) > 1
    )


_label_memo: dict[str, bool] = {}
_name_memo: dict[str, str] = {}

# -- labels --------------------------------------------------------------------------------

_LABEL = re.compile(rf"[A-Za-z0-9_.:+\-]{{1,{MAX_LABEL}}}")
_DIGIT_RUN = re.compile(r"\d{6}")
# nine digits joined by single separators: a phone, SSN or card number in disguise
_SPLIT_DIGITS = re.compile(r"\d(?:[.:()+/\-]?\d){8}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{20}")
_IPV4 = re.compile(r"(?<!\d)\d{1,3}(?:\.\d{1,3}){3}(?!\d)")
_MAC = re.compile(
    r"(?i)(?<![0-9a-f])(?:[0-9a-f]{2}[:\-]){5}[0-9a-f]{2}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"
)
_BARE_MAC = re.compile(
    r"(?i)(?<![0-9a-z])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12}(?![0-9a-z])"
)
_IPV6 = re.compile(r"(?i)(?:^|[^0-9a-z:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:$|[^0-9a-z:])")
_KNOWN_SECRET = re.compile(
    r"(?:gh[pousr]_|github_pat_|glpat-|gldt-|glrt-|glptt-|hf_|sk-|sk_live_|sk_test_|rk_live_"
    r"|xox[abposr]-|AKIA|ASIA|AGPA|AIDA|AROA|dapi|npm_|pypi-|AIza|ya29\.|shpat_|shpss_|dop_v1_"
    r"|SG\.|eyJ)"
)
TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "internal",
        "local",
        "lan",
        "corp",
        "home",
        "intranet",
        "localdomain",
        "localhost",
        "io",
        "co",
        "uk",
        "de",
        "fr",
        "nl",
        "eu",
        "us",
        "ca",
        "au",
        "jp",
        "cn",
        "in",
        "ru",
        "br",
        "ch",
        "se",
        "no",
        "fi",
        "dk",
        "es",
        "it",
        "pl",
        "cz",
        "at",
        "be",
        "ie",
        "nz",
        "ai",
        "dev",
        "app",
        "cloud",
        "tech",
        "site",
        "online",
        "xyz",
        "info",
        "biz",
        "me",
        "tv",
        "cc",
        "sg",
        "hk",
        "kr",
        "tw",
        "mx",
        "ar",
        "za",
        "il",
        "tr",
    ]
)
"""Last labels of host names (a dotted token ending in one is a host, not a module)."""
_GENERIC_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "internal",
        "local",
        "lan",
        "corp",
        "intranet",
        "localdomain",
    ]
)


def looks_like_host(token: str) -> bool:
    """``build-42.int.corp.com``, ``example.com``; not ``torch.nn.functional``."""
    parts = token.lower().rstrip(".").split(".")
    if len(parts) < 2 or not all(parts) or parts[-1] not in TLDS:
        return False
    return len(parts) >= 3 or parts[-1] in _GENERIC_TLDS


def looks_secret(token: str) -> bool:
    """A known credential prefix, a long hex run, or a long random-looking string."""
    if len(token) >= 16 and _KNOWN_SECRET.match(token):
        return True
    if _HEX_RUN.search(token):
        return True
    return len(token) >= 16 and random_looking(token, 3.5)


def _is_label(text: str, shape: re.Pattern[str] | None = None) -> bool:
    if (shape or _LABEL).fullmatch(text) is None:
        return False
    if _DIGIT_RUN.search(text) or _SPLIT_DIGITS.search(text):
        return False
    if ("." in text and (_IPV4.search(text) or looks_like_host(text))) or (
        ":" in text and (_MAC.search(text) or _IPV6.search(text))
    ):
        return False
    if len(text) >= 12 and (_MAC.search(text) or _BARE_MAC.search(text)):
        return False
    if looks_secret(text):
        return False
    return not mentions_identity(text)


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")


def key_ok(key: str) -> bool:
    """Is ``key`` an attribute key that says nothing about who (the label rules,
    up to 128 identifier characters)? Not memoized here: the anonymizer caches keys."""
    return _is_label(key, _KEY)


def label_ok(text: str) -> bool:
    """Is ``text`` a label: a short identifier-like token that says nothing about who?"""
    hit = _label_memo.get(text)
    if hit is None:
        hit = _is_label(text)
        if len(_label_memo) >= 8192:
            _label_memo.clear()
        _label_memo[text] = hit
    return hit


def card_int(value: int) -> bool:
    digits = str(abs(value))
    return 13 <= len(digits) <= 19 and is_card(digits)


# -- versions --------------------------------------------------------------------------------

_VERSION = re.compile(
    r"[vV]?\d{1,8}(?:\.\d{1,8}){0,5}"
    r"(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|post|r|rev|final)[-_.]?\d{0,8})*"
    r"(?:-[0-9A-Za-z]{1,20}(?:\.[0-9A-Za-z]{1,20}){0,4})?"
    r"(?:\+[0-9A-Za-z]{1,20}(?:[.\-][0-9A-Za-z]{1,20}){0,4})?"
)


def version_ok(text: str) -> bool:
    return (
        len(text) <= MAX_LABEL
        and _VERSION.fullmatch(text) is not None
        and not looks_secret(text)
        and not mentions_identity(text)
    )


# -- paths ---------------------------------------------------------------------------------

_EXT = re.compile(r"(?:\.[A-Za-z][A-Za-z0-9]{0,7}|\.[0-9][A-Za-z0-9]{0,7}){1,2}$")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{1,15}):/")
_WIN_DRIVE = re.compile(r"[A-Za-z]:/")
_HOME_ROOTS = re.compile(
    r"(?i)^(?:/home/|/users/|/export/home/|/nfs/home/|/srv/users?/|/u\d*/|/mnt/[a-z]/users/"
    r"|[a-z]:/users/|[a-z]:/documents and settings/|/root(?:/|$)|/var/home/)"
)
_TEMP_ROOTS = re.compile(
    r"(?i)^(?:/tmp(?:/|$)|/var/tmp(?:/|$)|/private/tmp(?:/|$)|/private/var/folders/"
    r"|/var/folders/|/dev/shm(?:/|$)|[a-z]:/windows/temp(?:/|$)|[a-z]:/temp(?:/|$))"
    r"|/appdata/local/temp(?:/|$)"
)


def _home_and_temp() -> tuple[str, str]:
    def norm(p: str) -> str:
        return p.replace("\\", "/").rstrip("/").lower() + "/"

    try:
        home = norm(os.path.expanduser("~"))
    except Exception:  # no home known: only the usual roots are recognised
        home = "/nonexistent-home/"
    try:
        temp = norm(tempfile.gettempdir())
    except Exception:
        temp = "/tmp/"
    return home, temp


_HOME, _TEMP = _home_and_temp()


def where(path: str) -> str:
    """home, temp, site-packages, network, relative or other."""
    p = path.replace("\\", "/")
    low = p.lower()
    if low.startswith("//"):
        return "network"
    if "/site-packages/" in low or "/dist-packages/" in low:
        return "site-packages"
    if low.startswith(_TEMP) or _TEMP_ROOTS.search(low):
        return "temp"
    if low.startswith(("~", _HOME)) or low + "/" == _HOME or _HOME_ROOTS.match(low):
        return "home"
    if p.startswith("/") or _WIN_DRIVE.match(p):
        return "other"
    return "relative"


_path_memo: dict[str, str] = {}


def path_kind(path: str) -> str:
    """What ``path`` is, never the path: ``file:.onnx@home``, ``dir@temp``, ``url:https``."""
    hit = _path_memo.get(path)
    if hit is None:
        hit = _path_kind(path)
        if len(_path_memo) >= 4096:
            _path_memo.clear()
        _path_memo[path] = hit
    return hit


def _path_kind(path: str) -> str:
    p = path.strip()
    m = _SCHEME.match(p)
    if m is not None and not _WIN_DRIVE.match(p):
        scheme = m.group(1).lower()
        if scheme == "file":
            p = p[len("file://") :]
        else:
            return f"url:{scheme}" if label_ok(scheme) else "url"
    p = p.replace("\\", "/")
    place = where(p)
    if p.endswith("/"):
        return f"dir@{place}"
    name = p.rsplit("/", 1)[-1]
    ext = _EXT.search(name[1:]) if len(name) > 1 else None
    if ext is not None:
        suffix = ext.group(0).lower()
        if label_ok(suffix):
            return f"file:{suffix}@{place}"
    return f"path@{place}"


# -- names ---------------------------------------------------------------------------------

_NAME_TOKEN = re.compile(
    r"""(?P<q>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|`[^`]*`?)"""
    r"|(?P<ws>\s+)"
    r"""|(?P<chunk>[^\s'"`]+)"""
)
_CHUNK_PART = re.compile(
    r"(?P<num>[-+]?\.?\d[\w.]*)|(?P<word>[^\W\d][\w.\-]*)|(?P<punct>[!-/:-@\[-`{-~])|(?P<other>.)",
    re.S,
)
_EMAIL_WORDS = re.compile(
    r"(?i)\b[\w.+\-]+\s*(?:\[at\]|\(at\)|\{at\}|<at>|\s+at\s+)\s*[\w\-]+"
    r"(?:\s*(?:\[dot\]|\(dot\)|\{dot\}|<dot>|\s+dot\s+|\.)\s*[\w\-]+)*"
    r"\s*(?:\[dot\]|\(dot\)|\{dot\}|<dot>|\s+dot\s+|\.)\s*(?:com|net|org|edu|gov|io|co|de|uk|fr|info)\b"
)
_ADDRESSY = re.compile(r"@|%40|%2[fF]|%5[cC]|＠")


def _chunk(chunk: str) -> str:
    if "::" in chunk and ("/" in chunk or "\\" in chunk):
        # a pytest node id: tests/test_x.py::TestA::test_b -> <path>::TestA::test_b
        return "::".join(_chunk(part) for part in chunk.split("::"))
    if "://" in chunk:
        return "<url>"
    if _ADDRESSY.search(chunk):
        return "?"
    if "/" in chunk or "\\" in chunk or (chunk.startswith("~") and len(chunk) > 1):
        return "<path>"  # ~alice is alice's home folder
    if len(chunk) >= 16 and (looks_secret(chunk) or _PADDED.search(chunk)):
        return "?"
    if ":" in chunk and (_MAC.search(chunk) or _IPV6.search(chunk)):
        return "?"  # aa:bb:cc:dd:ee:ff, fe80::1 are addresses, not words and colons
    m = _SHORT_FLAG.match(chunk)
    if m is not None:
        return m.group(1) + "?"  # -uroot, -pS3cret: a short option glued to its value
    if len(chunk) >= 6 and _PASSWORDY.search(chunk):
        return "?"  # letters mixed with ! & $ # % ^ ~: a password, not a name
    out = []
    after_equals = False
    for m in _CHUNK_PART.finditer(chunk):
        kind = m.lastgroup
        text = m.group(0)
        if kind == "word":
            # a word after '=' is a value (key=value), not part of the name
            out.append("?" if after_equals or not label_ok(text) else text)
        elif kind == "num":
            out.append("?")
        elif kind == "punct":
            out.append(text)
        # other characters (zero-width, symbols outside ASCII) are dropped
        if kind != "other":
            after_equals = text == "="
    return "".join(out)


_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|$)", re.S)
_SHORT_FLAG = re.compile(r"(-[A-Za-z])[^\s=\-]+$")
_PASSWORDY = re.compile(r"[!$&#%^~]")
_PADDED = re.compile(r"[A-Za-z0-9+/]{6,}==?$")
_SECRET_WORDS = frozenset(
    [
        "bearer",
        "basic",
        "token",
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "apikey",
        "api_key",
        "key",
        "auth",
    ]
)


def _name(text: str) -> str:
    text = _EMAIL_WORDS.sub("?", text)  # name at domain dot com
    if "-----BEGIN" in text:
        text = _PEM_BLOCK.sub("?", text)
    out: list[str] = []
    size = 0
    secret_next = False
    for m in _NAME_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            if out and out[-1] != " ":
                out.append(" ")
            continue
        chunk = m.group(0)
        # the chunk after "Bearer", "password", ... is the secret itself
        piece = "?" if kind == "q" or secret_next else _chunk(chunk)
        secret_next = chunk.lower().strip("-:") in _SECRET_WORDS
        if not piece:
            continue
        if len(out) >= 2 * MAX_NAME_TOKENS or size + len(piece) > MAX_NAME_CHARS:
            out.append("…")
            break
        out.append(piece)
        size += len(piece) + 1
    return "".join(out).strip()


def name(text: str) -> str:
    """A name as an identifier: words that pass the label rules stay; quoted
    strings and numbers become ``?``, paths ``<path>``, URLs ``<url>``,
    anything with an ``@`` or failing the label rules ``?`` (memoized)."""
    hit = _name_memo.get(text)
    if hit is None:
        hit = text if label_ok(text) else _name(text)
        if len(_name_memo) >= 8192:
            _name_memo.clear()
        _name_memo[text] = hit
    return hit


def _roots() -> list[tuple[str, str]]:
    """(absolute folder, label) pairs, longest first so the most specific wins."""
    roots: list[tuple[str, str]] = []
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib"):
        if paths.get(key):
            roots.append((paths[key], "site-packages"))
    try:
        import site

        for folder in [*site.getsitepackages(), site.getusersitepackages()]:
            roots.append((folder, "site-packages"))
    except Exception:  # site may be stripped down in embedded Pythons
        pass
    for key in ("stdlib", "platstdlib"):
        if paths.get(key):
            roots.append((paths[key], "<stdlib>"))
    roots.append((os.path.dirname(os.__file__), "<stdlib>"))
    seen, unique = set(), []
    for folder, label in roots:
        folder = os.path.normcase(os.path.abspath(folder))
        if folder not in seen:
            seen.add(folder)
            unique.append((folder, label))
    return sorted(unique, key=lambda r: len(r[0]), reverse=True)


_ROOTS = _roots()


PSEUDO_FILE = re.compile(
    r"<(?:string|stdin|unknown|console|frozen [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)>"
)
"""The interpreter's pseudo-file names that a frame location keeps as they are (ASCII
classes only: the generated gateway uses the same pattern in RE2)."""


@lru_cache(maxsize=2048)
def location(filename: str) -> str:
    """A frame's file as a module-relative, anonymous location."""
    if filename.startswith("<") and filename.endswith(">"):
        # the interpreter's own pseudo-files; any other name in brackets is a
        # program's choice (compile(src, "<alice@example.com>", ...)): user code
        return filename if PSEUDO_FILE.fullmatch(filename) else "<user-code>"
    path = os.path.normcase(os.path.abspath(filename))
    for folder, label in _ROOTS:
        if path.startswith(folder + os.sep):
            rel = path[len(folder) + 1 :].replace(os.sep, "/")
            if label == "<stdlib>" and rel.startswith(("site-packages/", "dist-packages/")):
                return "site-packages/" + rel.split("/", 1)[1]
            return f"{label}/{rel}"
    # Another interpreter's or environment's files (a traceback text from a
    # child process, a venv elsewhere): recognised by their folder names.
    slashed = filename.replace("\\", "/")
    m = _FOREIGN_PACKAGES.search(slashed)
    if m is not None:
        return "site-packages/" + m.group(1)
    m = _FOREIGN_STDLIB.search(slashed)
    if m is not None:
        return "<stdlib>/" + m.group(1)
    return "<user-code>"


_FOREIGN_PACKAGES = re.compile(r"/(?:site|dist)-packages/(.+)$")
_FOREIGN_STDLIB = re.compile(r"/lib/python\d+\.\d+/(.+)$")


def library_location(path: str) -> str | None:
    """The module-relative location of a library or standard-library file, else ``None``."""
    slashed = path.replace("\\", "/")
    if slashed.startswith(("site-packages/", "dist-packages/", "<stdlib>/")):
        loc = "site-packages/" + slashed.split("/", 1)[1] if slashed[0] != "<" else slashed
    else:
        loc = location(path)
    if loc.startswith(("site-packages/", "<stdlib>/")) and all(
        label_ok(part) for part in loc.split("/")[1:] if part
    ):
        return loc
    return None
