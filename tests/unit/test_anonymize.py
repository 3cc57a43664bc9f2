"""The anonymizer's rules, one by one."""

from __future__ import annotations

import json
import sys

import pytest

from optel.anonymize import Anonymizer, denied, exceptions, values
from optel.anonymize.values import scrub_text
from optel.kinds import Number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/home/alice/models/x.onnx", "<file:.onnx@home>"),  # a path says only what it is
        ("C:\\Users\\Bob\\x.py", "<file:.py@home>"),
        ("~carol/data", "<path@home>"),
        ("saved /tmp/john_smith_resume.pdf", "saved <file:.pdf@temp>"),
        ("mail bob@corp.com now", "mail <email> now"),
        ("at 10.0.0.1 and ::1", "at <ip> and <ip>"),
        ("mac aa:bb:cc:dd:ee:ff", "mac <mac>"),
        ("https://u:pw@h.com/a?token=x&y=1#f", "https://<host>/<path>?<query>"),
        ("https://github.com/acme/private", "https://github.com/<path>"),  # a public host stays
        ("card 4111 1111 1111 1111", "card <card>"),
        ("Bearer abcdefghijklmnop", "Bearer <secret>"),
        ("password=hunter2 ok", "password=<secret> ok"),
        ("password=p@ss&w0rd ok", "password=<secret> ok"),  # not cut at &
        ("card 4111 1111 1111 1111 0 left", "card <card> 0 left"),  # next to another number
        ("key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "key <secret>"),  # random, slashed
        ("::ffff:192.168.0.1", "::ffff:<ip>"),  # IPv4-mapped: no octet survives
        ("ssh alice@10.0.0.1", "ssh <email>"),
        ("Cookie: sessionid=abcdef123456", "Cookie: <secret>"),
        ("Set-Cookie: sid=9f8e7d6c5b4a; Path=/", "Set-Cookie: <secret>"),
        (
            "cannot import /opt/venv/lib/python3.11/site-packages/torch/nn/functional.py",
            "cannot import site-packages/torch/nn/functional.py",
        ),  # fmt: skip
        ("host build-agent-42.int.corp.com down", "host <host> down"),
        ("call +1 (415) 555-2671", "call <phone>"),
        ("ssn 123-45-6789", "ssn <ssn>"),
        ("iban DE89 3704 0044 0532 0130 00", "iban <iban>"),
        ("epoch 1700000000", "epoch <number>"),  # 9+ digits: an id or a phone as often as not
        ("commit 0123456789abcdef0123456789abcdef01234567", "commit <hex>"),
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
        "basic training",
        "the token budget was exceeded",
        "root cause",
        "the session was long",
        "12:30:45.123",
        "tensor shape 1:3:224:224",
        "0.4111111111111111",  # a float's digits are no card
        "2.48003782611709e+20",
        "4097903733940887.0",
        "site-packages/PIL/Image2Module/TiffImagePlugin.py",  # already module-relative
        "I/O error",
        "2024-01-15",
        "converted in 12.5 ms",
    ],
)
def test_plain_values_pass_unchanged(text: str) -> None:
    assert scrub_text(text) == text


def test_local_user_and_host_names_are_replaced() -> None:
    values.set_local_identity("zelda", "zelda-laptop.corp")
    try:
        assert scrub_text("run by zelda on zelda-laptop.corp") == "run by <user> on <host>"
        assert scrub_text("zelda-laptop") == "<host>"
        assert scrub_text("zelda2024 and 2024zelda") == "<user>2024 and 2024<user>"  # glued
        assert scrub_text("zeldarian") == "zeldarian"  # letters may not touch the name
    finally:
        values.set_local_identity()  # back to this machine's names


def test_luhn_and_iban_checksums() -> None:
    assert values.luhn("4111111111111111")
    assert not values.luhn("4111111111111112")
    assert values.iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not values.iban_ok("GB82 WEST 1234 5698 7654 33")


@pytest.mark.parametrize(
    "key",
    [
        "user.email", "enduser.id", "db.password", "x-api-key", "auth_header", "session.id",
        "host.name", "process.command_line", "net.peer.name", "network.peer.address",
        # the families the first list missed, in every spelling
        "username", "userName", "USER_NAME", "hostname", "HostName", "passphrase", "access_key",
        "accessKey", "db_pass", "DB_PASS", "PGPASSWORD", "mysql.pwd", "phone", "homePhone",
        "phone_number", "client_ip", "server.address", "email", "e_mail_address", "owner",
        "login", "firstName", "last_name", "dob", "iban", "creditCard", "ssn", "auth.token",
        "refresh_token", "github_token", "deviceId", "machine_name", "home_dir", "latitude",
        "process.runtime.description", "http.request.header.authorization",
    ],
)  # fmt: skip
def test_identity_and_secret_keys_are_dropped_even_when_declared(key: str) -> None:
    assert denied(key)
    a = Anonymizer([key])
    assert not a.allowed(key)


@pytest.mark.parametrize(
    "key",
    ["framework", "model.size_mb", "max_tokens", "num_tokens", "tokenizer", "batch_size",
     "pin_memory", "passed", "compass", "exception.type", "code.lineno", "service.name",
     "optel.version", "user_count", "cache.key", "keyframe", "input_path"],
)  # fmt: skip
def test_ordinary_keys_are_not_denied(key: str) -> None:
    assert not denied(key)


def test_the_optel_prefix_is_reserved_for_optels_registered_keys() -> None:
    a = Anonymizer(["optel.db_password", "optel.custom"])  # a tool cannot claim them
    out = a.scrub(
        {"signal": "event", "name": "e",
         "attributes": {"optel.db_password": "x", "optel.custom": "y", "optel.version": "0.1.0"}}
    )  # fmt: skip
    assert out["attributes"] == {"optel.version": "0.1.0"}
    assert out["dropped_attributes"] == 2


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


def test_unknown_record_fields_are_dropped_not_passed_through() -> None:
    a = Anonymizer(["framework"])
    rec = {
        "signal": "event",
        "name": "run by bob@corp.com",
        "unit": "/home/bob",
        "note": "from 10.1.2.3",  # a field a future record kind might add
        "extra": {"framework": "onnx", "owner": "bob"},
        "report": {"type": "x", "message": "/home/bob/x", "frames": [{"file": "<user-code>"}]},
        "status": {"code": "ERROR", "message": "mac aa:bb:cc:dd:ee:ff"},
        "scope": {"name": "optel.tool", "version": "~bob/v1"},
    }
    out = a.scrub(rec)
    assert "note" not in out and "extra" not in out
    assert out["name"] == "run by ?" and out["unit"] == ""
    assert "message" not in out["report"]  # free text: off by default
    assert out["status"] == {"code": "ERROR", "message": ""}
    assert out["scope"] == {"name": "optel.tool", "version": None}
    assert "bob" not in json.dumps(out)


def test_values_of_unknown_types_are_scrubbed_as_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "owner bob@corp.com"

    assert values.scrub_value(Odd()) == "owner <email>"
    assert values.scrub_value((1, "a@b.co", None)) == [1, "<email>", None]
    assert values.scrub_value(2.5) == 2.5 and values.scrub_value(True) is True


def test_failure_report_is_type_and_frames_without_message_or_locals() -> None:
    secret_local = "/home/alice/secret.txt"  # noqa: F841 - must not appear

    try:
        json.loads("{bad json from /home/alice}")
    except ValueError as exc:
        rep = exceptions.report(exc)
        with_message = exceptions.report(exc, message=True)
    assert rep["type"] == "json.decoder.JSONDecodeError"
    assert "message" not in rep
    files = [f["file"] for f in rep["frames"]]
    assert files[0] == "<user-code>"  # this test file is the user's code
    assert any(f.startswith("<stdlib>/json/") for f in files)
    text = json.dumps(rep)
    assert "alice" not in text and "secret.txt" not in text
    assert all(isinstance(f["line"], int) and f["function"] for f in rep["frames"])
    assert with_message["message"].startswith("Expecting property name")  # opted in: text


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


def test_sdk_traceback_text_keeps_frames_and_types_only() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        f'  File "{json.__file__}", line 346, in loads\n'
        "    return _default_decoder.decode(s)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/home/alice/tool.py", line 3, in main\n'
        "    token = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "ValueError: bad /home/alice/x\n"
        "a second line of the message: Maria Gonzalez\n"
        "note added by add_note(): customer acme-88123\n"
    )
    out = exceptions.scrub_stacktrace(tb)
    assert out == (
        "Traceback (most recent call last):\n"
        "  <stdlib>/json/__init__.py:346 in loads\n"
        "  <user-code>:3 in main\n"
        "ValueError"
    )
    opted_in = exceptions.scrub_stacktrace(tb, free_text=True)
    assert opted_in.endswith("ValueError: bad <path@home>")


def test_chained_and_group_tracebacks_keep_their_structure() -> None:
    chained = (
        "Traceback (most recent call last):\n"
        '  File "/home/alice/a.py", line 2, in <module>\n'
        "    open(path)\n"
        "FileNotFoundError: [Errno 2] No such file: '/home/alice/x'\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/home/alice/a.py", line 4, in <module>\n'
        "    raise RuntimeError(path) from e\n"
        "RuntimeError: /home/alice/x\n"
    )
    assert exceptions.scrub_stacktrace(chained).splitlines() == [
        "Traceback (most recent call last):",
        "  <user-code>:2 in <module>",
        "FileNotFoundError",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        "  <user-code>:4 in <module>",
        "RuntimeError",
    ]
    group = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/home/alice/g.py", line 9, in <module>\n'
        '  |     raise ExceptionGroup("jsmith@acme.org", errors)\n'
        "  | ExceptionGroup: jsmith@acme.org (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | Traceback (most recent call last):\n"
        '    |   File "/srv/users/jsmith/h.py", line 3, in handler\n'
        "    |     check(secret='hunter2')\n"
        "    | ValueError: hunter2\n"
        "    +---------------- 2 ----------------\n"
        "    | TypeError: 4111 1111 1111 1111\n"
        "    +------------------------------------\n"
    )
    out = exceptions.scrub_stacktrace(group)
    assert "jsmith" not in out and "hunter2" not in out and "4111" not in out
    assert "  |   <user-code>:9 in <module>" in out
    assert "    |   <user-code>:3 in handler" in out
    assert "  | ExceptionGroup" in out and "    | ValueError" in out and "    | TypeError" in out


def test_pytest_failure_text_keeps_locations_and_types_only() -> None:
    text = (
        "    def test_login():\n"
        ">       assert login('maria@example.com', 'hunter2')\n"
        "E       AssertionError: assert False\n"
        "tests/test_login.py:12: AssertionError\n"
    )
    assert exceptions.scrub_stacktrace(text) == "<user-code>:12: AssertionError"


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


def test_numbers_long_enough_for_a_card_are_held_back_as_labels_and_numbers() -> None:
    # ints of 12 digits at most skip the card check: 13 and more still get it
    a = Anonymizer(["label"])
    a.declare({"number": Number})
    rec = {"signal": "event", "name": "e", "app": "t", "attributes": {}}
    for v, kept in [
        (999_999_999_999, True),
        (-999_999_999_999, True),
        (4111111111111111, False),  # a Luhn-valid card number
        (-4111111111111111, False),
        (2.5, True),
    ]:
        out = a.scrub({**rec, "attributes": {"label": v, "number": v}})
        assert (out["attributes"] == {"label": v, "number": v}) is kept, (v, out)
    assert a.take_mismatches() == {"t": 4}


def test_scopes_and_statuses_shaped_once_still_count_and_follow_the_local_names() -> None:
    a = Anonymizer(["framework"])
    rec = {"signal": "span", "name": "s", "app": "t", "status": {"code": "BOGUS", "message": "m"}}
    bad = {**rec, "scope": {"name": "lib", "version": "~bob/v1"}}
    outs = [a.scrub(bad) for _ in range(3)]
    assert [o["scope"] for o in outs] == [{"name": "lib", "version": None}] * 3
    assert [o["status"] for o in outs] == [{"code": "UNSET", "message": ""}] * 3
    assert a.take_mismatches() == {"t": 3}  # each record's bad version is counted
    values.set_local_identity("zelda", "zelda-laptop.corp")
    try:
        out = a.scrub({**rec, "scope": {"name": "zelda", "version": None}})
        assert out["scope"]["name"] != "zelda"
    finally:
        values.set_local_identity()
    out = a.scrub({**rec, "scope": {"name": "zelda", "version": None}})
    assert out["scope"]["name"] == "zelda"  # the memo follows the names looked for


def test_a_bracketed_file_name_is_kept_only_when_the_interpreter_makes_it() -> None:
    """compile(src, "<anything>", ...) names a frame's file as the program likes: a
    bracketed name was kept whatever it held (an address, a path, a user name)."""
    for own in ("<string>", "<stdin>", "<frozen importlib._bootstrap>", "<frozen runpy>"):
        assert exceptions.location(own) == own
    for chosen in ("<alice.smith@example.com>", "</home/alice/notes>", "<alice>", "<ghp_x1>"):
        assert exceptions.location(chosen) == "<user-code>", chosen
    try:
        exec(compile("raise ValueError()", "<alice.smith@example.com>", "exec"))
    except ValueError as exc:
        report = exceptions.report(exc)
    assert "alice" not in json.dumps(report)
    # optel's compact frames in a stack trace someone else formatted: the same rule
    trace = "<alice>:3 in run\n<string>:1 in <module>\nValueError"
    assert exceptions.scrub_stacktrace(trace) == "<string>:1 in <module>\nValueError"
