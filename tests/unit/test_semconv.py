"""The semantic-convention registry (optel.semconv) against the package it was built from.

A semconv upgrade that renames a key or a closed set's value must fail here,
not silently drop data: every key is checked against the constant it stands
for, every closed set against its enum, every never-sent key against the
package and the deny rule.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from optel import semconv
from optel.anonymize import Anonymizer
from optel.anonymize.keys import denied
from optel.kinds import BUILTIN_KEYS, Declarations, semconv_keys
from tests.conftest import ROOT

PACKAGE = "opentelemetry-semantic-conventions"


def _installed() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "none"


needs_pinned = pytest.mark.skipif(
    _installed() != semconv.CHECKED_AGAINST,
    reason=f"{PACKAGE} {_installed()} is installed; the registry was checked against"
    f" {semconv.CHECKED_AGAINST} (the dev extra pins it; older Pythons get older versions)",
)


def _resolve(ref: str) -> Any:
    # "resource.ResourceAttributes.X": a class attribute of the old modules
    parts = ref.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module("opentelemetry.semconv." + ".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(ref)


@needs_pinned
@pytest.mark.parametrize(
    "key,ref", [(k, ref) for k, _, ref, _ in semconv.REGISTRY if ref is not None]
)
def test_each_key_is_the_package_constant_it_stands_for(key: str, ref: str) -> None:
    assert _resolve(ref) == key, f"{ref} is now {_resolve(ref)!r}: update optel/semconv.py"


@needs_pinned
@pytest.mark.parametrize("key,ref", sorted(semconv.ENUMS.items()))
def test_each_closed_set_is_the_package_enum(key: str, ref: str) -> None:
    values = {v.value for v in _resolve(ref)}
    assert set(semconv_keys()[key].values) == values


@needs_pinned
@pytest.mark.parametrize("key,ref", semconv.NEVER)
def test_never_sent_keys_are_the_packages_and_denied(key: str, ref: str) -> None:
    assert _resolve(ref) == key
    assert denied(key), f"{key} says who or where: it must be denied even when declared"
    assert key not in semconv_keys()
    a = Anonymizer(Declarations({key: str}))  # declared, and still never sent
    assert a.kind(key) is None


def test_keys_without_a_constant_are_named() -> None:
    """Only the instrumentations' own keys stand for no constant (listed, not hidden)."""
    assert [k for k, _, ref, _ in semconv.REGISTRY if ref is None] == [
        "pytest.nodeid",
        "pytest.span_type",
        "pytest.fixture_scope",
    ]


def test_keys_are_unique_and_old_names_have_new_ones() -> None:
    keys = [k for k, *_ in semconv.REGISTRY]
    assert len(keys) == len(set(keys))
    known = set(keys) | set(BUILTIN_KEYS)
    for old, new in semconv.RENAMED:
        assert old in known and new in known, (old, new)


def test_denied_families_leave_only_reduced_or_closed() -> None:
    """A key whose family names who or where (url.*) is in the registry only with a
    kind that cannot carry who or where."""
    safe = {"url", "route", "oneof", "number", "bool", "statement", "location", "stacktrace"}
    for key, kind in semconv_keys().items():
        if denied(key):
            assert kind.name in safe or key == "url.scheme", (key, kind)
    assert semconv_keys()["url.scheme"].name == "label"  # https: a word, never a place


def test_no_identity_key_is_registered() -> None:
    for key in semconv_keys():
        assert not key.startswith(("server.", "client.", "net.peer.", "network.peer.")), key
        assert key not in ("user_agent.original", "url.query", "process.command_line"), key


def test_what_each_instrumentation_records_leaves_with_zero_configuration() -> None:
    """Attributes as the instrumentations record them (requests, urllib3, sqlite3,
    click, pytest-opentelemetry; old and new names): the useful ones leave with
    their kinds, the identifying ones never."""
    a = Anonymizer()  # nothing declared
    recorded = {
        "http.method": "GET",
        "http.request.method": "GET",
        "http.status_code": 404,
        "http.response.status_code": 200,
        "http.scheme": "http",
        "url.scheme": "https",
        "http.flavor": "1.1",
        "network.protocol.version": "1.1",
        "http.url": "http://127.0.0.1:8080/users/alice/repos?token=ghp_A1b2C3d4E5f6",
        "url.full": "https://bob:pw@build-7.int.corp.com/v1/orders/1234",
        "db.system": "sqlite",
        "db.system.name": "sqlite",
        "db.statement": "SELECT * FROM users WHERE email = 'alice@example.com' AND id = 42",
        "db.query.text": "INSERT INTO users VALUES (7, 'Alice Smith', 'alice@example.com')",
        "db.operation.name": "SELECT",
        "db.name": "/home/alice/app.db",
        "process.exit.code": 2,
        "error.type": "ValueError",
        "code.filepath": "/home/alice/tool/test_x.py",
        "code.function": "test_ok",
        "code.lineno": 3,
        "pytest.nodeid": "tests/test_x.py::test_ok",
        "pytest.span_type": "test",
        "rpc.system": "grpc",
        "messaging.operation.type": "publish",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
        # who and where: never
        "http.host": "127.0.0.1",
        "net.peer.name": "build-7.int.corp.com",
        "net.peer.port": 8080,
        "server.address": "build-7.int.corp.com",
        "server.port": 443,
        "user_agent.original": "alice-laptop/1.0",
        "url.query": "token=ghp_A1b2C3d4E5f6",
        "process.command_args": ["tool.py", "--token", "ghp_A1b2C3d4E5f6"],
        "process.executable.name": "tool.py",
        "process.pid": 4242,
        "process.owner": "alice",
    }
    record = {"signal": "span", "name": "GET", "attributes": recorded}
    out = a.scrub(record)
    assert out["attributes"] == {
        "http.method": "GET",
        "http.request.method": "GET",
        "http.status_code": 404,
        "http.response.status_code": 200,
        "http.scheme": "http",
        "url.scheme": "https",
        "http.flavor": "1.1",
        "network.protocol.version": "1.1",
        "http.url": "http://<host>/users/{}/repos",
        "url.full": "https://<host>/v1/orders/{}",
        "db.system": "sqlite",
        "db.system.name": "sqlite",
        "db.statement": "SELECT * FROM users WHERE email = ? AND id = ?",
        "db.query.text": "INSERT INTO users VALUES (?)",
        "db.operation.name": "SELECT",
        "db.name": "file:.db@home",
        "process.exit.code": 2,
        "error.type": "ValueError",
        "code.filepath": "<user-code>",
        "code.function": "test_ok",
        "code.lineno": 3,
        "pytest.nodeid": "<path>::test_ok",
        "pytest.span_type": "test",
        "rpc.system": "grpc",
        "messaging.operation.type": "publish",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
    }
    assert out["dropped_attributes"] == 11
    text = json.dumps(out)
    for leak in ("alice", "Alice", "ghp_", "corp", "8080", "4242", "bob", "pw@"):
        assert leak not in text, leak


def test_closed_sets_and_numbers_refuse_what_does_not_fit() -> None:
    a = Anonymizer()
    out = a.scrub(
        {
            "signal": "span",
            "name": "x",
            "attributes": {
                "http.request.method": "alice@example.com",
                "http.response.status_code": "4111 1111 1111 1111",
                "db.system": "jsmith@corp.example.com",
                "url.full": "not a url",
            },
        }
    )
    assert out["attributes"] == {
        "http.request.method": "<other>",
        "http.response.status_code": "<not-number>",
        "db.system": "<not-label>",
        "url.full": "<not-url>",
    }
    assert a.take_mismatches() == {"": 4}


def test_the_tools_declaration_comes_first_but_a_denied_family_stays_reduced() -> None:
    a = Anonymizer(Declarations({"http.method": str, "url.full": str}))
    assert a.kind("http.method").name == "label"  # the tool's kind
    assert a.kind("url.full").name == "url"  # url.* is denied: only the reduction leaves


def test_registry_keys_are_listed_as_what_can_leave() -> None:
    entries = {e.key: e for e in Declarations().entries()}
    assert entries["db.statement"].source == "builtin"
    assert entries["db.statement"].kind.name == "statement"
    assert "url.full" in Anonymizer().kinds


def test_import_optel_reads_neither_registry_nor_semconv_package() -> None:
    code = (
        "import sys, optel; t = optel.init(app='mytool');"
        "print(sorted(m for m in sys.modules if 'semconv' in m))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(ROOT / "src"), "OPTEL_HOME": str(Path("/nonexistent-optel"))},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
