"""The anonymizer's rules, one by one."""

from __future__ import annotations

import json
import sys

import pytest

from optel.anonymize import Anonymizer, denied, exceptions, values
from optel.anonymize.values import scrub_text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/home/alice/models/x.onnx", "<home>/models/x.onnx"),
        ("C:\\Users\\Bob\\x.py", "<home>\\x.py"),
        ("~carol/data", "<home>/data"),
        ("mail bob@corp.com now", "mail <email> now"),
        ("at 10.0.0.1 and ::1", "at <ip> and <ip>"),
        ("mac aa:bb:cc:dd:ee:ff", "mac <mac>"),
        ("https://u:pw@h.com/a?token=x&y=1#f", "https://h.com/a?token=<value>&y=<value>"),
        ("card 4111 1111 1111 1111", "card <card>"),
        ("Bearer abcdefghijklmnop", "Bearer <secret>"),
        ("password=hunter2 ok", "password=<secret> ok"),
        ("card 4111 1111 1111 1111 0 left", "card <card> 0 left"),  # next to another number
        ("key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "key <secret>"),  # random, slashed
        ("::ffff:192.168.0.1", "::ffff:<ip>"),  # IPv4-mapped: no octet survives
        ("ssh alice@10.0.0.1", "ssh <user>@<ip>"),
        ("scp x bob@[2001:db8::1]:/tmp", "scp x <user>@[<ip>]:/tmp"),
        ("Cookie: sessionid=abcdef123456", "Cookie: <secret>"),
        ("Set-Cookie: sid=9f8e7d6c5b4a; Path=/", "Set-Cookie: <secret>; Path=/"),
    ],
)
def test_placeholders_keep_the_meaning(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "onnx",
        "1.2.3",
        "2.1.0+cu121",
        "torch.nn.functional",
        "fp16",
        "resnet50",
        "12:30:45",  # a time, not an IPv6 address
        "4111 1111 1111 1112",  # fails the Luhn check
        "0123456789abcdef" * 4,  # a sha256 digest
        "123e4567-e89b-12d3-a456-426614174000",  # a uuid
        "basic training",
        "the token budget was exceeded",
        "root cause",
        "the session was long",
        "12:30:45.123",
        "tensor shape 1:3:224:224",
        "0.4111111111111111",  # a float's digits are no card
        "2.48003782611709e+20",
        "4097903733940887.0",
        "site-packages/PIL/Image2Module/TiffImagePlugin.py",  # paths are no random secrets
        "datasets/ImageNet1K/Val2012/n01440764/ILSVRC2012_val_00000293.JPEG",
    ],
)
def test_plain_values_pass_unchanged(text: str) -> None:
    assert scrub_text(text) == text


def test_local_user_and_host_names_are_replaced() -> None:
    values.set_local_identity("zelda", "zelda-laptop.corp")
    try:
        assert scrub_text("run by zelda on zelda-laptop.corp") == "run by <user> on <host>"
        assert scrub_text("zelda-laptop") == "<host>"
    finally:
        values.set_local_identity()  # back to this machine's names


def test_luhn() -> None:
    assert values.luhn("4111111111111111")
    assert not values.luhn("4111111111111112")


@pytest.mark.parametrize(
    "key",
    [
        "user.email",
        "enduser.id",
        "db.password",
        "x-api-key",
        "auth_header",
        "session.id",
        "host.name",
        "process.command_line",
        "net.peer.name",
        "network.peer.address",
    ],
)
def test_identity_and_secret_keys_are_dropped_even_when_declared(key: str) -> None:
    assert denied(key)
    a = Anonymizer([key])
    assert not a.allowed(key)


def test_undeclared_keys_are_dropped_and_counted() -> None:
    a = Anonymizer(["framework"])
    rec = {
        "signal": "span",
        "name": "convert",
        "attributes": {"framework": "onnx", "x": 1},
        "resource": {"service.name": "t", "host.name": "box"},
        "events": [{"name": "e", "attributes": {"y": 2}}],
    }
    out = a.scrub(rec)
    assert out["attributes"] == {"framework": "onnx"}
    assert out["resource"] == {"service.name": "t"}
    assert out["events"][0]["attributes"] == {}
    assert out["dropped_attributes"] == 2
    assert rec["attributes"] == {"framework": "onnx", "x": 1}  # the input is not mutated


def test_unknown_record_fields_are_scrubbed_not_passed_through() -> None:
    a = Anonymizer(["framework"])
    rec = {
        "signal": "event",
        "name": "run by bob@corp.com",
        "unit": "/home/bob",
        "note": "from 10.1.2.3",  # a field a future record kind might add
        "extra": {"framework": "onnx", "owner": "bob"},  # a mapping: the key policy applies
        "report": {"type": "x", "message": "/home/bob/x", "frames": [{"file": "<user-code>"}]},
        "status": {"code": "ERROR", "message": "mac aa:bb:cc:dd:ee:ff"},
        "scope": {"name": "optel.tool", "version": "~bob/v1"},
    }
    out = a.scrub(rec)
    assert out["name"] == "run by <email>" and out["unit"] == "<home>"
    assert out["note"] == "from <ip>"
    assert out["extra"] == {"framework": "onnx"} and out["dropped_attributes"] == 1
    assert out["report"]["message"] == "<home>/x"
    assert out["status"] == {"code": "ERROR", "message": "mac <mac>"}
    assert out["scope"]["version"] == "<home>/v1"


def test_values_of_unknown_types_are_scrubbed_as_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "owner bob@corp.com"

    assert values.scrub_value(Odd()) == "owner <email>"
    assert values.scrub_value((1, "a@b.co", None)) == [1, "<email>", None]
    assert values.scrub_value(2.5) == 2.5 and values.scrub_value(True) is True


def test_failure_report_is_module_relative_without_locals() -> None:
    secret_local = "/home/alice/secret.txt"  # noqa: F841 - must not appear

    try:
        json.loads("{bad json from /home/alice}")
    except ValueError as exc:
        rep = exceptions.report(exc)
    assert rep["type"] == "json.decoder.JSONDecodeError"
    files = [f["file"] for f in rep["frames"]]
    assert files[0] == "<user-code>"  # this test file is the user's code
    assert any(f.startswith("<stdlib>/json/") for f in files)
    text = json.dumps(rep)
    assert "alice" not in text and "secret.txt" not in text
    assert all(isinstance(f["line"], int) and f["function"] for f in rep["frames"])


def test_site_packages_frames_are_relative() -> None:
    import pytest as mod

    assert exceptions.location(mod.__file__).startswith("site-packages/")
    assert exceptions.location(json.__file__) == "<stdlib>/json/__init__.py"
    assert exceptions.location("/home/bob/proj/train.py") == "<user-code>"
    assert exceptions.location("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"
    # another environment's files (a traceback text from elsewhere)
    venv = "/home/bob/proj/.venv/lib/python3.12/site-packages/torch/nn/functional.py"
    assert exceptions.location(venv) == "site-packages/torch/nn/functional.py"
    win = "C:\\Users\\bob\\venv\\Lib\\site-packages\\numpy\\core.py"
    assert exceptions.location(win) == "site-packages/numpy/core.py"
    assert (
        exceptions.location("/opt/py/lib/python3.9/json/decoder.py") == "<stdlib>/json/decoder.py"
    )


def test_sdk_traceback_text_is_rewritten() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        f'  File "{json.__file__}", line 346, in loads\n'
        "    return _default_decoder.decode(s)\n"
        '  File "/home/alice/tool.py", line 3, in main\n'
        "    token = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "ValueError: bad /home/alice/x\n"
    )
    out = exceptions.scrub_traceback_text(tb)
    assert "<stdlib>/json/__init__.py:346 in loads" in out
    assert "<user-code>:3 in main" in out
    assert "alice" not in out and "ghp_" not in out and "_default_decoder" not in out


def test_scrub_is_memoized() -> None:
    values.clear_memo()
    scrub_text("see /home/alice/x")
    scrub_text("see /home/alice/x")
    assert values.memo_info().hits >= 1
    long = "see /home/alice/x " * 100  # longer than MEMO_MAX_LEN: scrubbed, not kept
    assert "alice" not in scrub_text(long)
    assert values.memo_info().currsize == 1


def test_exception_roots_cover_this_interpreter() -> None:
    assert exceptions.location(sys.modules["os"].__file__ or "") == "<stdlib>/os.py"


def test_hashed_is_keyed_stable_and_local(home) -> None:  # type: ignore[no-untyped-def]
    import optel
    from optel import consent
    from optel.anonymize import hashing
    from optel.config import paths

    assert optel.hashed("alice@example.com") == "<hashed>"  # no consent: nothing written
    assert not home.exists()
    consent.record(consent.GRANTED, p=paths())
    optel.init(app="mytool")
    hashing._salt = None
    first = optel.hashed("alice@example.com")
    assert first.startswith("h:") and len(first) == 18 and "alice" not in first
    assert optel.hashed("alice@example.com") == first
    assert optel.hashed("bob@example.com") != first
    assert scrub_text(first) == first  # a hash passes the scrubbers unchanged
    hashing._salt = None  # another install, another salt, another hash
    (home / "salt.json").unlink()
    assert optel.hashed("alice@example.com") != first
    assert oct((home / "salt.json").stat().st_mode & 0o777) == "0o600"
