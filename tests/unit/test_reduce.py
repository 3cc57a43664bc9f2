"""Reductions (optel.anonymize.reduce): who and where out, what kind of work in.

The gateway runs the same rules on optel's output and on any sender's, so
each reduction must be a fixpoint: reducing a reduced value changes nothing.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optel.anonymize import reduce
from optel.anonymize.fit import fit
from optel.kinds import semconv_keys

URLS = [
    (
        "http://127.0.0.1:44449/users/alice/repos?token=ghp_abcdefghijklmnopqrstuvwxyz0123",
        "http://<host>/users/{}/repos",
    ),
    ("http://127.0.0.1:44449/missing/bob@example.com", "http://<host>/missing/{}"),
    (
        "https://bob:s3cret@api.corp.example.com:8443/v1/orders/12345/items/a3f9e2c?x=1#frag",
        "https://<host>/v1/orders/{}/items/{}",
    ),
    (
        "https://huggingface.co/bert-base-uncased/resolve/main/config.json",
        "https://huggingface.co/{}/resolve/main/{}",
    ),
    ("https://github.com/alice/widget/releases", "https://github.com/{}/widget/releases"),
    ("https://pypi.org/simple/numpy/", "https://pypi.org/simple/numpy/"),
    ("HTTPS://PyPI.org/simple/numpy/", "HTTPS://<host>/simple/numpy/"),
    (
        "http://h.internal/api/v1/models/resnet50/download",
        "http://<host>/api/v1/models/{}/download",
    ),
    ("http://h/d3b07384-d113-4ec6-a1b2-0123456789ab/x", "http://<host>/{}/x"),
    ("http://h/%40alice/Report.PDF", "http://<host>/{}/{}"),
    ("http://h/home/alice/notes", "http://<host>/home/{}/notes"),
    ("http://h/2024/pay", "http://<host>/{}/pay"),
    ("https://[::1]:8080/x", "https://<host>/x"),
    ("http://10.0.0.7", "http://<host>"),
]


@pytest.mark.parametrize("raw,reduced", URLS)
def test_url(raw: str, reduced: str) -> None:
    assert reduce.url(raw) == reduced
    assert reduce.url(reduced) == reduced  # a fixpoint: the gateway reduces again


def test_url_refuses_what_is_not_one() -> None:
    assert reduce.url("C:/Users/alice/x") is None
    assert reduce.url("alice@example.com") is None
    assert fit(semconv_keys()["url.full"], "/home/alice") == ("<not-url>", True)


@pytest.mark.parametrize(
    "raw,reduced",
    [
        ("/users/{id}/repos", "/users/{id}/repos"),
        ("/api/v2/users/42?q=alice", "/api/v2/users/{}"),
        ("/<int:id>/x", "/{}/x"),
        ("users/alice", "/users/{}"),
        ("/status/ok", "/status/{}"),  # after a word ending in s: over-reduced, never under
        ("/alice/tools", "/alice/tools"),  # a name as a plain word stays (documented)
    ],
)
def test_route(raw: str, reduced: str) -> None:
    assert reduce.route(raw) == reduced
    assert reduce.route(reduced) == reduced


@pytest.mark.parametrize(
    "raw,reduced",
    [
        (
            "INSERT INTO users VALUES (7, 'Alice Smith', 'alice@example.com')",
            "INSERT INTO users VALUES (?)",
        ),
        (
            "SELECT name FROM users WHERE email = 'alice@example.com' AND id = 42",
            "SELECT name FROM users WHERE email = ? AND id = ?",
        ),
        (
            'SELECT * FROM t WHERE a IN (1, 2, 3) -- by alice\n AND b = "x"',
            "SELECT * FROM t WHERE a IN (?) AND b = ?",
        ),
        (
            "select x from t1 where y = 0x1F and z = -1.5e3",
            "select x from t1 where y = ? and z = -?",
        ),
        ("SELECT $$alice$$, 'it''s', 'C:\\\\x'", "SELECT ?, ?, ?"),
        ("SELECT 'unterminated alice", "SELECT ?"),
        ("INSERT INTO t VALUES (1,2),(3,4)", "INSERT INTO t VALUES (?)"),
        ("SELECT /* alice */ 1 # bob", "SELECT ?"),
        ("SELECT * FROM users WHERE email = ?", "SELECT * FROM users WHERE email = ?"),
    ],
)
def test_statement(raw: str, reduced: str) -> None:
    assert reduce.statement(raw) == reduced
    assert reduce.statement(reduced) == reduced


def test_location() -> None:
    kind = semconv_keys()["code.filepath"]
    import json as stdlib_json

    assert fit(kind, "/home/alice/tool/x.py") == ("<user-code>", False)
    assert fit(kind, stdlib_json.__file__) == ("<stdlib>/json/__init__.py", False)
    assert fit(kind, "/opt/venv/lib/python3.11/site-packages/requests/api.py") == (
        "site-packages/requests/api.py",
        False,
    )
    assert fit(kind, "site-packages/requests/api.py") == ("site-packages/requests/api.py", False)
    assert fit(kind, "<frozen importlib._bootstrap>") == ("<frozen importlib._bootstrap>", False)
    assert fit(kind, 42) == ("<not-location>", True)


_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http://", "https://", "ftp://"]), _text)
def test_every_url_reduction_is_a_fixpoint(scheme: str, rest: str) -> None:
    once = reduce.url(scheme + rest)
    assert once is not None and reduce.url(once) == once


@settings(max_examples=300, deadline=None)
@given(_text)
def test_every_route_and_statement_reduction_is_a_fixpoint(text: str) -> None:
    assert reduce.route(reduce.route(text)) == reduce.route(text)
    assert reduce.statement(reduce.statement(text)) == reduce.statement(text)


@settings(max_examples=300, deadline=None)
@given(st.emails(), st.integers(min_value=1000, max_value=10**12))
def test_no_email_or_number_survives(email: str, number: int) -> None:
    assert email not in (reduce.url(f"https://h/a/{email}/b?c={number}") or "")
    assert str(number) not in (reduce.url(f"https://h/a/{number}/b") or "")
    assert email not in reduce.statement(f"SELECT 1 FROM t WHERE e = '{email}'")
    assert str(number) not in reduce.statement(f"SELECT a FROM t WHERE id = {number}")
