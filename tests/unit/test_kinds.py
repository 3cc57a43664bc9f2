"""Declared kinds: each value leaves in the shape its key declared, or as a counted placeholder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import optel
from optel import kinds, system, testing, usage
from optel.anonymize import Anonymizer, fit, values
from optel.anonymize.shapes import label_ok, name, path_kind
from tests.conftest import Granted, grant, run_cli, run_python


def _fit(kind: kinds.Kind, value: Any) -> tuple[Any, bool]:
    return fit.fit(kind, value)


@pytest.mark.parametrize(
    "kind, value, sent",
    [
        (optel.Label, "resnet50", "resnet50"),
        (optel.Label, "torch.nn.functional", "torch.nn.functional"),
        (optel.Label, "2.1.0+cu121", "2.1.0+cu121"),
        (optel.Label, 32, 32),  # numbers and bools are labels as they are
        (optel.Label, 97.8, 97.8),
        (optel.Label, True, True),
        (optel.Number, 12, 12),
        (optel.Number, "12.5", 12.5),  # a numeric string is parsed
        (optel.Bool, "true", True),
        (optel.Bool, 0, False),
        (optel.Version, "1.2.3", "1.2.3"),
        (optel.Version, "v1.0.0-rc.1", "v1.0.0-rc.1"),
        (optel.Version, "0.1.dev42+g3f2a9c1.d20240115", "0.1.dev42+g3f2a9c1.d20240115"),
        (optel.Version, 17, 17),
        (optel.OneOf("onnx", "tf"), "onnx", "onnx"),
        (optel.PathKind, "/home/alice/models/resnet50.onnx", "file:.onnx@home"),
        (optel.Hashed, "h:0123456789abcdef", "h:0123456789abcdef"),  # hashed by the tool already
    ],
)
def test_values_that_fit_are_sent(kind: kinds.Kind, value: Any, sent: Any) -> None:
    assert _fit(kind, value) == (sent, False)


@pytest.mark.parametrize(
    "kind, value, placeholder",
    [
        (optel.Label, "alice@example.com", "<not-label>"),
        (optel.Label, "kwame.osei＠acme.org", "<not-label>"),  # full-width @
        (optel.Label, "jürgen", "<not-label>"),  # non-ASCII: homoglyphs and names
        (optel.Label, "John Smith", "<not-label>"),  # a space: words, not a token
        (optel.Label, "/tmp/x.csv", "<not-label>"),
        (optel.Label, "C:\\Users\\bob", "<not-label>"),
        (optel.Label, "4155552671", "<not-label>"),  # a long digit run
        (optel.Label, "+1-415-555-2671", "<not-label>"),  # split digits
        (optel.Label, "123-45-6789", "<not-label>"),
        (optel.Label, "10.1.2.3", "<not-label>"),
        (optel.Label, "00:1a:2b:3c:4d:5e", "<not-label>"),
        (optel.Label, "001a.2b3c.4d5e", "<not-label>"),
        (optel.Label, "001A2B3C4D5E", "<not-label>"),
        (optel.Label, "fe80::1ff:fe23:4567:890a", "<not-label>"),
        (optel.Label, "build-agent-42.int.acme.com", "<not-label>"),
        (optel.Label, "0123456789abcdef0123456789abcdef01234567", "<not-label>"),  # 40 hex
        (optel.Label, "glpat-AbCdEfGhIjKlMnOpQrSt", "<not-label>"),
        (optel.Label, "Zx8Qp3LmN7vB2cR9", "<not-label>"),  # random-looking
        (optel.Label, 4111111111111111, "<not-label>"),  # a card number as an int
        (optel.Label, {"a": 1}, "<not-label>"),
        (optel.Number, "12 apples", "<not-number>"),
        (optel.Bool, "maybe", "<not-bool>"),
        (optel.Version, "1.0 by alice@example.com", "<not-version>"),
        (optel.OneOf("onnx", "tf"), "pytorch", "<other>"),
        (optel.OneOf(1, 2), "1", "<other>"),  # a closed set compares types too
        (optel.PathKind, 12, "<not-path>"),
    ],
)
def test_values_that_do_not_fit_are_replaced_and_counted(
    kind: kinds.Kind, value: Any, placeholder: str
) -> None:
    assert _fit(kind, value) == (placeholder, True)


def test_local_user_and_host_names_are_never_labels() -> None:
    values.set_local_identity("jsmith", "build-box-7.corp")
    try:
        assert not label_ok("jsmith") and not label_ok("jsmith2024")
        assert not label_ok("build-box-7")
        assert _fit(optel.Version, "1.0+jsmith") == ("<not-version>", True)
        assert label_ok("jsmithers") is True  # letters may not touch the name
    finally:
        values.set_local_identity()


@pytest.mark.parametrize(
    "path, kind",
    [
        ("/home/alice/models/resnet50.onnx", "file:.onnx@home"),
        ("/Users/Carol/Downloads/dataset.tar.gz", "file:.tar.gz@home"),
        ("/mnt/c/Users/jdoe/x.pt", "file:.pt@home"),
        ("/nfs/home/jdoe/run", "path@home"),
        ("/srv/users/jdoe/", "dir@home"),
        ("~/data", "path@home"),
        ("/tmp/john_smith_resume.pdf", "file:.pdf@temp"),
        ("C:\\Users\\bob\\AppData\\Local\\Temp\\m.onnx", "file:.onnx@temp"),
        ("/opt/venv/lib/python3.11/site-packages/torch/x.py", "file:.py@site-packages"),
        ("\\\\server\\home$\\jdoe\\x.txt", "file:.txt@network"),
        ("models/x.onnx", "file:.onnx@relative"),
        ("/Volumes/JohnBackup/x", "path@other"),
        ("https://github.com/acme/private-repo", "url:https"),
        ("file:///home/alice/x.csv", "file:.csv@home"),
        ("/data/customers/acme.jsmith", "file:.jsmith@other"),
    ],
)
def test_a_path_sends_its_kind_never_the_path(path: str, kind: str) -> None:
    assert path_kind(path) == kind


def test_a_path_extension_that_names_someone_is_dropped() -> None:
    values.set_local_identity("jsmith", "box")
    try:
        assert path_kind("/data/customers/acme.jsmith") == "path@other"
    finally:
        values.set_local_identity()


@pytest.mark.parametrize(
    "raw, reduced",
    [
        ("convert", "convert"),
        ("GET", "GET"),
        ("SELECT", "SELECT"),
        ("SELECT * FROM users WHERE name = 'Maria Gonzalez'", "SELECT * FROM users WHERE name = ?"),
        ("SELECT name FROM t WHERE id=42", "SELECT name FROM t WHERE id=?"),
        ("GET /api/users/88123", "GET <path>"),
        ("test_token::call", "test_token::call"),  # no longer mistaken for a secret
        ("tests/test_a.py::TestA::setup", "<path>::TestA::setup"),
        ("notify kwame.osei@acme.org", "notify ?"),
        ("fetch https://intra.acme.com/x", "fetch <url>"),
        ("host build-agent-42.int.acme.com", "host ?"),
    ],
)
def test_names_are_reduced_to_identifiers(raw: str, reduced: str) -> None:
    assert name(raw) == reduced


def test_declarations_are_readable_with_kinds_descriptions_and_examples() -> None:
    d = kinds.Declarations(
        {
            "framework": ("onnx", "tensorflow", "pytorch"),
            "batch": int,
            "input": optel.PathKind(doc="the model file"),
        },
        ["model"],
    )
    assert list(d) == ["framework", "batch", "input", "model"]
    assert d["model"] is optel.Label and d["batch"] is optel.Number
    rows = {e.key: e.as_dict() for e in d.entries()}
    assert rows["input"] == {
        "key": "input",
        "kind": "path",
        "values": None,
        "description": "the model file",
        "example": "file:.onnx@home",
        "source": "tool",
    }
    assert rows["framework"]["values"] == ["onnx", "pytorch", "tensorflow"]
    assert rows["optel.version"]["source"] == "optel" and rows["os.type"]["source"] == "builtin"
    assert [e.key for e in d.entries(builtin=False)] == list(d)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attributes": {"a b": optel.Label}}, "identifier"),
        ({"attributes": {"kwame.osei@acme.org": int}}, "identifier"),
        ({"attributes": {"optel.mine": int}}, "reserved"),
        ({"attributes": {"x": dict}}, "kind"),
        ({"attributes": {"x": ()}}, "closed set"),
        ({"attributes": ["x"]}, "mapping"),
        ({"allowed_attributes": ["ok", "not ok"]}, "identifier"),
        ({"allowed_attributes": "framework"}, "not one string"),
        ({"free_text": "yes"}, "free_text"),
    ],
)
def test_declaration_mistakes_raise_at_init(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        optel.init(app="mytool", **kwargs)


def test_declarations_are_readable_without_consent(home: Path) -> None:
    t = optel.init(app="mytool", attributes={"framework": ("onnx", "tf")})
    assert not t.enabled
    assert t.declarations["framework"] == optel.OneOf("onnx", "tf")


def _payloads(t: optel.Telemetry) -> list[dict[str, Any]]:
    t.flush(0)
    return [json.loads(r.payload) for r in testing.pending()]


def test_mismatches_are_replaced_counted_and_shown_by_status(granted: Granted, home: Path) -> None:
    t = granted(
        attributes={"framework": ("onnx", "tf"), "batch": int, "input": optel.PathKind},
        allowed_attributes=["model"],
    )
    t.event(
        "convert",
        framework="pytorch",  # not in the closed set
        batch="thirty-two",  # not a number
        input="/home/alice/x.onnx",
        model="alice@example.com",  # not a label
        size_mb=97.8,  # keys passed to event() are declared as labels
        **{"kwame.osei@acme.org": 3},  # not even a key: dropped and counted
    )
    (event,) = [p for p in _payloads(t) if p.get("name") == "convert"]
    assert event["attributes"] == {
        "framework": "<other>",
        "batch": "<not-number>",
        "input": "file:.onnx@home",
        "model": "<not-label>",
        "size_mb": 97.8,
    }
    assert "kwame" not in json.dumps(event)
    assert testing.stats()["kind_mismatch:mytool"] == 4
    status = json.loads(run_cli("status", "--app", "mytool", "--json", home=home).stdout)
    assert status["kind_mismatch"] == 4
    assert "kind mismatch: 4" in run_cli("status", "--app", "mytool", home=home).stdout


def test_event_keys_keep_a_kind_declared_at_init(granted: Granted) -> None:
    t = granted(attributes={"batch": int})
    t.event("train", batch=32)
    assert t.declarations["batch"] is optel.Number  # event() does not demote it to a label


def test_free_text_is_off_by_default_and_scrubbed_when_opted_in(granted: Granted) -> None:
    from opentelemetry.trace import Status, StatusCode

    t = granted(attributes={"note": optel.Text})
    with t.tracer.start_as_current_span("step") as span:
        span.set_status(Status(StatusCode.ERROR, "cannot open /home/alice/x.onnx"))
        span.set_attribute("note", "sent by alice@example.com from /home/alice")
        try:
            raise ValueError("bad /home/alice/x.onnx")
        except ValueError as exc:
            t.error(exc)
    recs = _payloads(t)
    span_rec = next(p for p in recs if p.get("signal") == "span")
    assert span_rec["status"] == {"code": "ERROR", "message": ""}
    assert span_rec["attributes"]["note"] == "sent by <email> from <path@home>"  # text kind
    report = next(p for p in recs if p.get("name") == "exception")
    assert "exception.message" not in report["attributes"]
    assert "alice" not in json.dumps(recs)


def test_free_text_opt_in(granted: Granted) -> None:
    from opentelemetry.trace import Status, StatusCode

    t = granted(free_text=True)
    with t.tracer.start_as_current_span("step") as span:
        span.set_status(Status(StatusCode.ERROR, "cannot open /home/alice/x.onnx"))
        try:
            raise ValueError("bad /home/alice/x.onnx")
        except ValueError as exc:
            t.error(exc)
    recs = _payloads(t)
    span_rec = next(p for p in recs if p.get("signal") == "span")
    assert span_rec["status"]["message"] == "cannot open <file:.onnx@home>"
    report = next(p for p in recs if p.get("name") == "exception")
    assert report["attributes"]["exception.message"] == "bad <file:.onnx@home>"


def test_a_value_cut_by_the_sdk_length_limit_loses_its_tail(home: Path) -> None:
    grant(home, "mytool")
    code = """
        import json, optel
        from optel import testing
        t = optel.init(app="mytool", attributes={"note": optel.Text})
        with t.tracer.start_as_current_span("s", attributes={"note": "contact jurgen.muller@example.de"}):
            pass
        t.flush(0)
        span = [json.loads(r.payload) for r in testing.pending() if r.signal == "span"][0]
        print(span["attributes"]["note"])
        """
    r = run_python(code, home, {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "24"})
    assert r.returncode == 0, r.stderr
    # cut to "contact jurgen.muller@ex": no pattern sees an address any more
    assert r.stdout.strip() == "…"  # within CUT_MARGIN of the cut: all dropped


def test_resource_values_from_the_environment_have_kinds(home: Path) -> None:
    grant(home, "mytool")
    code = """
        import json, optel
        from optel import testing
        t = optel.init(app="mytool")
        t.event("e")
        t.flush(0)
        print(json.dumps(json.loads(testing.pending()[0].payload)["resource"]))
        """
    resource_env = (
        "telemetry.sdk.name=jsmith,service.namespace=kwame.osei,"
        "process.runtime.description=CPython on jsmith-laptop,os.type=linux"
    )
    # the environment shapes the resource of the drop-in (OTEL_PYTHON_CONFIGURATOR=optel);
    # a tool that calls init() describes itself and does not read it (issue 14)
    r = run_python(
        code,
        home,
        {"OTEL_RESOURCE_ATTRIBUTES": resource_env, "OTEL_PYTHON_CONFIGURATOR": "optel"},
    )
    assert r.returncode == 0, r.stderr
    resource = json.loads(r.stdout)
    assert resource["telemetry.sdk.name"] == "<other>"  # a safe key is not a safe value
    assert "service.namespace" not in resource  # not a key optel sends
    assert "process.runtime.description" not in resource
    assert resource["os.type"] == "linux"


def test_optels_own_facts_fit_the_kinds_optel_registered() -> None:
    a = Anonymizer()
    facts = system.facts("1.2.3")
    facts["optel.runs"] = usage.bucket(5)
    rec = {"signal": "event", "app": "t", "name": "run_start", "attributes": facts}
    out = a.scrub(rec)
    assert out["attributes"] == facts
    assert a.take_mismatches() == {}
    for bucket in ("first", "<=10", "<=100", "<=1000", ">1000"):
        assert fit.fit(kinds.OPTEL_KEYS["optel.runs"], bucket) == (bucket, False)
    for gb in (1, 3, 5, 9, 20, 40, 100, 200, 300):
        memory = system.memory_bucket(gb * 2**30)
        assert fit.fit(kinds.OPTEL_KEYS["optel.memory"], memory) == (memory, False)


def test_every_optel_key_in_the_code_is_registered() -> None:
    import re

    src = Path(optel.__file__).parent
    used = set()
    for path in src.rglob("*.py"):
        used |= set(re.findall(r'"(optel\.[a-z_.]+)"', path.read_text()))
    # module names and instrument names are not attribute keys
    used -= {"optel._demo_tool", "optel.command.duration"}
    assert used <= set(kinds.OPTEL_KEYS), used - set(kinds.OPTEL_KEYS)


def test_metric_attributes_of_optels_own_keys_survive_the_view(granted: Granted) -> None:
    t = granted()
    with t.track("convert"):
        pass
    recs = _payloads(t)
    hist = next(p for p in recs if p.get("name") == "optel.command.duration")
    assert hist["points"][0]["attributes"] == {"optel.command": "convert", "optel.success": True}


def test_environ_declared_keys_are_labels() -> None:
    a = Anonymizer(["framework", "not a key"])  # OPTEL_ALLOWED_ATTRIBUTES: never raises
    assert a.kind("framework") is optel.Label and a.kind("not a key") is None
    assert os.environ.get("OPTEL_ALLOWED_ATTRIBUTES") is None
