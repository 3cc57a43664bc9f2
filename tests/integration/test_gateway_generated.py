"""The generated gateway (optel gateway-config) in the real collector.

- the shipped collector-config/gateway.yaml is the generator's output;
- what optel sends passes it unchanged (every key it allows, in every place a
  key can be), and the reductions give what Python gives;
- a raw OTLP request with personal data in span names, status messages, log
  bodies, stack traces and attributes, from a sender that is not optel:
  nothing of it reaches the collector's output.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import optel
from optel import gateway
from optel.anonymize.exceptions import scrub_stacktrace
from optel.anonymize.fit import fit
from optel.kinds import Declarations, semconv_keys
from tests.conftest import run_cli
from tests.integration.collector import (
    CONFIGS,
    Collector,
    attrs,
    build,
    data_points,
    kv,
    log_records,
    metrics,
    spans,
)

DEMO = "optel._demo_tool:ATTRIBUTES"
EVERY_KIND = Declarations(
    {
        "k.label": optel.Label,
        "k.number": optel.Number,
        "k.bool": optel.Bool,
        "k.version": optel.Version,
        "k.path": optel.PathKind,
        "k.hashed": optel.Hashed,
        "k.text": optel.Text,
        "k.set": ("onnx", "tensorflow"),
    }
)


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


def test_shipped_gateway_is_the_generators_output(home: Path) -> None:
    r = run_cli("gateway-config", "--declarations", DEMO, home=home)
    assert r.returncode == 0, r.stderr
    shipped = (CONFIGS / "gateway.yaml").read_text()
    if r.stdout != shipped:
        diff = "".join(
            list(
                difflib.unified_diff(
                    shipped.splitlines(True), r.stdout.splitlines(True), "shipped", "generated"
                )
            )[:40]
        )
        pytest.fail(
            f"collector-config/gateway.yaml is not the generator's output: run make gateway\n{diff}"
        )


def _config(tmp_path: Path, declarations: Declarations, free_text: bool = False) -> str:
    path = tmp_path / ("gateway-free.yaml" if free_text else "gateway-every.yaml")
    path.write_text(gateway.render(declarations, free_text))
    return str(path)


@pytest.mark.parametrize("free_text", [False, True])
def test_generated_configs_validate(binary: Path, tmp_path: Path, free_text: bool) -> None:
    r = subprocess.run(
        [str(binary), "validate", "--config", _config(tmp_path, EVERY_KIND, free_text)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _resource(values: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": kv(values)}


def test_what_optel_sends_passes_unchanged(binary: Path, tmp_path: Path) -> None:
    """Every key the gateway allows, with a value as optel sends it (its kind's
    example), in spans, span events, log records and data points (and the
    resource keys in resources): out as it went in."""
    decl = EVERY_KIND.copy()
    decl.add(gateway.load(DEMO))
    kinds = gateway.allowed(decl)
    sent = {k: kind.example for k, kind in kinds.items() if kind.example not in ("", None)}
    resource = {k: v for k, v in sent.items() if k.startswith(gateway._RESOURCE_KEYS)}
    gw = Collector(binary, tmp_path / "out", configs=(_config(tmp_path, decl),))
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "convert",
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": kv(sent),
        "events": [{"name": "exception", "timeUnixNano": "1", "attributes": kv(sent)}],
    }
    log = {"timeUnixNano": "1", "body": {"stringValue": "cannot open %s"}, "attributes": kv(sent)}
    point = {"asInt": "2", "timeUnixNano": "1", "attributes": kv(sent)}
    try:
        assert gw.post(
            "traces",
            {
                "resourceSpans": [
                    {"resource": _resource(resource), "scopeSpans": [{"spans": [span]}]}
                ]
            },
        ).ok
        assert gw.post(
            "logs",
            {
                "resourceLogs": [
                    {"resource": _resource(resource), "scopeLogs": [{"logRecords": [log]}]}
                ]
            },
        ).ok
        metric = {"name": "converted", "sum": {"aggregationTemporality": 1, "dataPoints": [point]}}
        assert gw.post(
            "metrics",
            {
                "resourceMetrics": [
                    {"resource": _resource(resource), "scopeMetrics": [{"metrics": [metric]}]}
                ]
            },
        ).ok
    finally:
        gw.stop()
    lines = gw.lines()
    # OTLP JSON carries 64-bit integers as strings
    expected = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in sent.items()
    }
    ((res, got),) = spans(lines)
    assert attrs(got) == expected
    assert attrs(got["events"][0]) == expected
    assert attrs(res) == {k: expected[k] for k in resource}
    ((_, rec),) = log_records(lines)
    assert attrs(rec) == expected
    assert rec["body"]["stringValue"] == "cannot open %s"  # a template stays
    ((_, m),) = metrics(lines)
    assert [attrs(p) for p in data_points(m)] == [expected]


REDUCED = {
    "url.full": [
        "https://bob:s3cret@api.corp.example.com:8443/v1/orders/12345/items/a3f9e2c?x=1#frag",
        "http://127.0.0.1:44449/users/alice/repos?token=ghp_abcdefghijklmnopqrstuvwxyz0123",
        "https://huggingface.co/meta-llama/Llama-3-8B/resolve/main/config.json",
        "https://pypi.org/simple/numpy/",
        "C:/Users/alice/x",
    ],
    "http.target": ["/users/alice/repos?x=1", "/api/v2/users/42", "/home/alice/notes"],
    "db.statement": [
        "SELECT name FROM users WHERE email = 'alice@example.com' AND id = 42",
        "INSERT INTO users VALUES (7, 'Alice Smith', 'alice@example.com'), (8, 'Bob', 'b@x.io')",
        "SELECT * FROM t WHERE a IN (1, 2, 3) -- by alice",
    ],
    "code.filepath": [
        "/home/alice/tool/x.py",
        "/opt/venv/lib/python3.11/site-packages/requests/api.py",
        "/usr/lib/python3.11/json/decoder.py",
    ],
}


def test_the_gateway_reduces_as_optel_does(binary: Path, tmp_path: Path) -> None:
    """Raw values from another sender come out as optel would have sent them."""
    gw = Collector(binary, tmp_path / "red")
    items = [(key, raw) for key, raws in REDUCED.items() for raw in raws]
    span_list = [
        {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": f"{i:016x}",
            "name": "x",
            "kind": 1,
            "startTimeUnixNano": "1",
            "endTimeUnixNano": "2",
            "attributes": kv({key: raw}),
        }
        for i, (key, raw) in enumerate(items, 1)
    ]
    try:
        assert gw.post("traces", {"resourceSpans": [{"scopeSpans": [{"spans": span_list}]}]}).ok
    finally:
        gw.stop()
    got = {int(s["spanId"], 16): attrs(s) for _, s in spans(gw.lines())}
    for i, (key, raw) in enumerate(items, 1):
        python, _ = fit(semconv_keys()[key], raw)
        assert got[i] == {key: python}, (key, raw)


# Personal data a sender that is not optel might put anywhere.
EMAIL, EMAIL2 = "kwame.osei@example.org", "maria.garcia@corp-mail.com"
IP, USER = "203.0.113.77", "mallory"
TOKEN = "ghp_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"
AWS = "AKIA" + "Q2W3E4R5T6Y7U8I9"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
PERSON = "Maria Garcia"
SECRET_PATH = f"/home/{USER}/taxes/2024-return.pdf"
PERSONAL = (EMAIL, EMAIL2, IP, USER, TOKEN, AWS, PHONE, CARD, PERSON, "Garcia", "7946",
            "taxes", "2024-return", "s3cr3t-pw")  # fmt: skip

TRACEBACK = f"""Traceback (most recent call last):
  File "/home/{USER}/tool/convert.py", line 12, in main
    send(user="{EMAIL}", card="{CARD}")
  <{USER}>:3 in helper
  <{TOKEN}>:4 in helper
  File "/usr/lib/python3.11/smtplib.py", line 887, in sendmail
    raise SMTPRecipientsRefused(senderrs)
smtplib.SMTPRecipientsRefused: {{'{EMAIL2}': (550, 'no such user {PERSON}')}}

During handling of the above exception, another exception occurred:

RuntimeError: could not mail {PERSON} at {PHONE} from {IP} with token {TOKEN}
"""


def test_a_raw_request_with_personal_data_leaves_nothing_of_it(
    binary: Path, tmp_path: Path
) -> None:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": f"mail '{PERSON}' <{EMAIL}> {SECRET_PATH} from {IP} token {TOKEN} tel={PHONE}",
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "status": {"code": 2, "message": f"token {TOKEN} refused for {EMAIL} ({PERSON}, {PHONE})"},
        "attributes": kv(
            {
                "http.request.method": "POST",
                "url.full": f"https://{USER}:s3cr3t-pw@mail.corp.example.com/send?to={EMAIL}",
                "db.statement": f"UPDATE users SET card = '{CARD}' WHERE name = '{PERSON}'",
                "error.type": f"{PERSON} {EMAIL}",
                "exception.message": f"no such user {PERSON} <{EMAIL}>",
                "code.filepath": SECRET_PATH,
                "user.name": USER,
                "client.address": IP,
            }
        ),
        "events": [
            {
                "name": f"exception for {EMAIL}",
                "timeUnixNano": "1700000000050000000",
                "attributes": kv(
                    {
                        "exception.type": "smtplib.SMTPRecipientsRefused",
                        "exception.message": f"{EMAIL2}: no such user {PERSON}",
                        "exception.stacktrace": TRACEBACK,
                    }
                ),
            }
        ],
    }
    logs = [
        # formatted text, not a template: dropped whole
        {"timeUnixNano": "1", "body": {"stringValue": f"mailed {PERSON} at {EMAIL}, {PHONE}"}},
        # a template with data written into it: patterns scrub what they know
        {
            "timeUnixNano": "2",
            "body": {"stringValue": f"retry %s for {EMAIL} from {IP} with {TOKEN} / {AWS}"},
            "attributes": kv({"exception.stacktrace": TRACEBACK, "code.filepath": SECRET_PATH}),
        },
        # a structured body
        {"timeUnixNano": "3", "body": {"kvlistValue": {"values": kv({"user": PERSON})}}},
    ]
    resource = _resource(
        {"service.name": "rawtool", "host.name": f"{USER}-laptop", "user.email": EMAIL}
    )
    gw = Collector(binary, tmp_path / "raw")
    try:
        assert gw.post(
            "traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
        ).ok
        assert gw.post(
            "logs",
            {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": logs}]}]},
        ).ok
    finally:
        gw.stop()
    lines = gw.lines()
    dump = json.dumps(lines)
    for datum in PERSONAL:
        assert datum not in dump, datum
    ((res, got),) = spans(lines)
    # what is left says what happened, not who
    assert got["name"] == "mail ? ? <path> from ? token ? tel=? ? ? ?"
    assert got["status"].get("message", "") == ""
    assert got["status"]["code"] == 2  # ERROR: the status itself stays
    kept = attrs(got)
    kept.pop("redaction.redacted.count")
    assert kept == {
        "http.request.method": "POST",
        "url.full": "https://<host>/send",
        "db.statement": "UPDATE users SET card = ? WHERE name = ?",
        "error.type": "<not-label>",
        "code.filepath": "<user-code>",
    }
    event = attrs(got["events"][0])
    event.pop("redaction.redacted.count")
    # frames, sentences and types, as optel's own scrubbing leaves them
    assert event["exception.stacktrace"] == scrub_stacktrace(TRACEBACK)
    assert event["exception.stacktrace"].splitlines() == [
        "Traceback (most recent call last):",
        "  <user-code>:12 in main",
        "  <stdlib>/smtplib.py:887 in sendmail",
        "smtplib.SMTPRecipientsRefused",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "RuntimeError",
    ]
    assert attrs(res) == {"service.name": "rawtool"}
    bodies = [r.get("body", {}).get("stringValue", "") for _, r in log_records(lines)]
    assert bodies == ["", "retry %s for <email> from <ip> with <secret> / <secret>", ""]
