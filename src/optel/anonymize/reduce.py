"""Reductions: values that say who or where, reduced to the part that says what.

Some semantic-convention attributes carry identity inside a useful value. A
full URL names a host, maybe a user and password, ids and tokens in its path
and query; a database query holds the data it looks for; a source file's
path names the user's folders. Each reduction keeps what kind of work it was
and drops the rest:

- **url** (``url.full``, ``http.url``): the scheme, a well-known public host
  (:data:`PUBLIC_HOSTS` but loopback, else ``<host>``) and the path as a route template;
  userinfo, port, query and fragment dropped:
  ``http://bob:pw@10.0.0.7:8080/users/alice/repos?token=x`` ->
  ``http://<host>/users/{}/repos``;
- **route** (``url.path``, ``http.target``, ``http.route``, ``url.template``):
  a path as a route template: a segment stays only when it is a plain
  lowercase word (letters, ``-``, ``_``, at most 3 digits together:
  ``api``, ``v1``, ``resnet50``); anything else (numbers, ids, hashes,
  e-mail addresses, file names, capitals, anything over 24 characters)
  becomes ``{}``, and so does the segment after a collection (``/users/{}``)
  or a home folder (``/home/{}``), and the owner on GitHub, GitLab and
  Hugging Face (``github.com/{}/tools``). A lowercase word that is a name
  elsewhere stays (``/users/alice`` does not, ``/alice/tools`` does): a tool
  whose URLs name people declares the key itself (``optel.PathKind`` sends
  ``url:https`` only);
- **statement** (``db.statement``, ``db.query.text``): every literal
  replaced by ``?`` (strings, numbers, hex, dollar-quoted), comments
  removed, lists collapsed: ``SELECT * FROM users WHERE email = ? AND id IN (?)``.

Every rule is a regular expression in the common subset of Python's ``re``
and RE2, the collector's engine (no look-around, no back-references, ASCII
classes, ``\\1`` for a group in the replacement), so :mod:`optel.gateway`
writes the very same rules into the gateway's OTTL statements: one source
for both sides.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .values import PUBLIC_HOSTS


class Rule(NamedTuple):
    """One rewrite: every match of ``pattern`` -> ``replacement`` (``\\1`` for a group)."""

    pattern: str
    replacement: str


MARK = "\u241e"
"""Marks what a later rule must leave alone (a public host); removed from the
input first, so no input can forge it."""


_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"

URL_SHAPE = rf"^{_SCHEME}://"
"""What a URL must start with to be reduced; anything else is ``<not-url>``."""

NOT_URL = (
    r"(?s)^(?:$|[^A-Za-z].*|[A-Za-z][A-Za-z0-9+.\-]*"
    r"(?:$|[^A-Za-z0-9+.\-:].*|:$|:[^/].*|:/$|:/[^/].*))$"
)
"""Exactly the values :data:`URL_SHAPE` does not match (RE2 has no negative
look-ahead): the gateway replaces them by ``<not-url>`` in one rule."""

LOOPBACK = frozenset({"localhost", "127.0.0.1"})
"""Not kept in a URL: a host on this machine says nothing (and the gateway masks IPs)."""
_PUBLIC = "|".join(re.escape(h) for h in sorted(PUBLIC_HOSTS - LOOPBACK))

_SEGMENT_RULES: tuple[Rule, ...] = (
    # the segment after a home root is a user
    Rule(r"/(home|Users)/[^/{][^/]*", r"/\1/{}"),
    Rule(r"/[^/]{25,}", "/{}"),  # long: an id, a hash, a name with data
    # a character outside lowercase words: capitals, dots (file names), @, %, ~, =, :, +
    Rule(r"/[^/]*[^a-z0-9_\-/{}][^/]*", "/{}"),
    Rule(r"/[0-9_\-][^/]*", "/{}"),  # starts with a digit, _ or -: a number, an id
    Rule(r"/[^/]*[0-9]{4}[^/]*", "/{}"),  # 4 digits together: a year, an id
    Rule(r"/[^/]*[0-9][^/]*[a-z_\-][^/]*[0-9][^/]*", "/{}"),  # digits in two places: a3f9e2c
    # the segment after a collection is one of its members: /users/{}, /repos/{}
    Rule(r"/([a-z][a-z_\-]*[a-z]s)/[^/{][^/]*", r"/\1/{}"),
)

ROUTE_RULES: tuple[Rule, ...] = (
    Rule(r"(?s)[?#].*", ""),  # query and fragment
    Rule(r"^([^/])", r"/\1"),  # a relative path's first segment is a segment too
    *_SEGMENT_RULES,
)
"""A path as a route template (the route kind)."""

OWNER_HOSTS = ("github.com", "gitlab.com", "huggingface.co")
"""Public hosts whose first path segment is an owner (a user or an organisation)."""

_OWNERS = "|".join(re.escape(h) for h in OWNER_HOSTS)

URL_RULES: tuple[Rule, ...] = (
    Rule(MARK, ""),
    Rule(r"\s+", ""),  # a URL has no white space; none left for $ to differ on
    Rule(r"[?#].*", ""),  # query and fragment: where tokens and e-mail addresses travel
    Rule(rf"^({_SCHEME}://)[^/@]*@", r"\1"),  # user and password
    Rule(rf"^({_SCHEME}://[^/:]*):[0-9]*", r"\1"),  # port
    Rule(rf"^({_SCHEME}://)({_PUBLIC})(/|$)", rf"\1{MARK}\2\3"),  # a well-known host stays
    Rule(rf"^({_SCHEME}://)[^{MARK}/][^/]*", r"\1<host>"),  # any other: <host>
    Rule(MARK, ""),
    # while the path is reduced, the host must not look like a path segment
    Rule(rf"^({_SCHEME})://", r"\1:"),
    Rule(rf"^({_SCHEME}:(?:{_OWNERS}))/[^/{{][^/]*", r"\1/{}"),  # github.com/{}/...
    *_SEGMENT_RULES,
    Rule(rf"^({_SCHEME}):", r"\1://"),
)
"""A full URL as scheme, public host or ``<host>``, and route template (the url kind;
:data:`URL_SHAPE` first: what is no URL is ``<not-url>``)."""

STATEMENT_RULES: tuple[Rule, ...] = (
    # quoted strings first: a comment marker inside one is data, not a comment
    Rule(r"'(?:[^'\\]|\\.|'')*'", "?"),
    Rule(r'"(?:[^"\\]|\\.|"")*"', "?"),  # MySQL strings; quoted identifiers go too
    Rule(r"(?s)['\"].*", "?"),  # an unterminated quote: everything after it is data
    Rule(r"(?s)\$[A-Za-z_]*\$.*?\$[A-Za-z_]*\$", "?"),  # PostgreSQL dollar quoting
    Rule(r"(?s)/\*.*?\*/", " "),
    Rule(r"(?s)/\*.*", ""),  # an unterminated comment
    Rule(r"--[^\n]*", ""),
    Rule(r"#[^\n]*", ""),  # MySQL comments
    Rule(r"(?i)\b0x[0-9a-f]+\b", "?"),
    Rule(r"(?i)\b[0-9]+(?:\.[0-9]+)?(?:e[+\-]?[0-9]+)?\b", "?"),
    Rule(r"\s+", " "),
    Rule(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?)"),  # IN (?, ?, ?) and VALUES (?, ?): one
    Rule(r"\(\?\)(?:\s*,\s*\(\?\))+", "(?)"),  # VALUES (?), (?): one
    Rule(r"^ | $", ""),
)
"""A database query with every literal replaced (the statement kind)."""

MAX_REDUCED = 1000
"""Reduced values longer than this are cut (a query can be long)."""


class _Compiled:
    __slots__ = ("rules", "memo")

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = [(re.compile(r.pattern, re.ASCII), r.replacement) for r in rules]
        self.memo: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        hit = self.memo.get(value)
        if hit is not None:
            return hit
        out = value
        for pattern, replacement in self.rules:
            out = pattern.sub(replacement, out)
        if len(out) > MAX_REDUCED:
            out = out[:MAX_REDUCED] + "…"
        if len(self.memo) >= 4096:
            self.memo.clear()
        self.memo[value] = out
        return out


_route = _Compiled(ROUTE_RULES)
_url = _Compiled(URL_RULES)
_statement = _Compiled(STATEMENT_RULES)
_NOT_URL = re.compile(NOT_URL, re.ASCII)


def route(path: str) -> str:
    """``/users/alice/repos?x=1`` -> ``/users/{}/repos``."""
    return _route(path)


def url(value: str) -> str | None:
    """A full URL reduced (see the module docstring); ``None`` when it is no URL."""
    if _NOT_URL.match(value) is not None:
        return None
    return _url(value)


def statement(query: str) -> str:
    """``SELECT * FROM t WHERE a = 'x' AND b = 42`` -> ``SELECT * FROM t WHERE a = ? AND b = ?``."""
    return _statement(query)


def forget() -> None:
    """Drop the memos (tests)."""
    for compiled in (_route, _url, _statement):
        compiled.memo.clear()


__all__ = [
    "Rule",
    "MARK",
    "URL_SHAPE",
    "NOT_URL",
    "URL_RULES",
    "ROUTE_RULES",
    "STATEMENT_RULES",
    "route",
    "url",
    "statement",
]
