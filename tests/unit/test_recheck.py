"""The re-check of spooled records (optel.recheck, through delivery.payload).

Two halves, both over the leak corpus (tests/leaks/corpus.py): every record
optel's anonymizer gives passes unchanged, whatever kinds the tool declared
(the process that sends does not know them); and every datum of the corpus
planted anywhere in an otherwise good record (name, attribute key or value,
resource, events, status, scope, ...) keeps the row from being sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optel
from optel import delivery, kinds, recheck
from optel.anonymize import Anonymizer, values
from optel.kinds import Declarations
from optel.spool import Row
from tests.leaks import corpus

APP, POLICY = "mytool", "opt-in"
COMMON = {"app": APP, "policy": POLICY, "version": "1.2.3", "session_id": "1796050565958298",
          "time": 1796050565.03}  # fmt: skip
RESOURCE = {"service.name": APP, "telemetry.sdk.language": "python", "os.type": "linux",
            "process.runtime.version": "3.11.7", "optel.version": "0.1.0"}  # fmt: skip

SPAN = {
    **COMMON,
    "signal": "span",
    "name": "convert model",
    "trace_id": "115c877da3593879b8bd0ee013620596",
    "span_id": "0854744d81456e35",
    "parent_span_id": None,
    "kind": "INTERNAL",
    "start_ns": 1796050565035387773,
    "end_ns": 1796050565037629811,
    "status": {"code": "OK", "message": ""},
    "attributes": {"model": "resnet50", "n": 3},
    "events": [{"name": "loaded", "time_ns": 1796050565035496487, "attributes": {"n": 2}}],
    "links": 0,
    "resource": RESOURCE,
    "scope": {"name": "optel.mytool", "version": "1.2.3"},
}
# what a tool can declare, every kind: the sender knows none of them
DECLARED = {"l": optel.Label, "n": int, "b": bool, "v": optel.Version, "p": optel.PathKind,
            "h": optel.Hashed, "t": optel.Text, "o": ("onnx", "New York"), "nm": kinds.Name}  # fmt: skip
# keys optel knows without a declaration, of every reducing kind
KNOWN = ["url.full", "url.path", "http.route", "db.query.text", "code.file.path", "server.address",
         "exception.type", "exception.message", "exception.stacktrace"]  # fmt: skip
EXTRA = [
    'Traceback (most recent call last):\n  File "/home/ursulak/x.py", line 3, in f\n    g()\n'
    "ValueError: bad /home/ursulak/y.pt for kwame@acme.com",
    '  File "/usr/lib/python3.11/json/decoder.py", line 3, in f\n',
    "x" * 3000,
    "word " * 400,
    "see https://github.com/org/repo/issues/3?x=1 and https://build.internal.corp/x",
    "converted /home/u/a.onnx in 3 s",
    "tests/test_x.py:12: AssertionError",  # a test runner's location line
    '  + Exception Group Traceback (most recent call last):\n  |   File "/home/u/a.py", line 1,'
    " in <module>\n  | ExceptionGroup: many (2 sub-exceptions)\n  +-+---------------- 1"
    " ----------------\n    | ValueError: one /home/ursulak/x\n    +---------------- 2"
    " ----------------\n    | TypeError: two\n    +------------------------------------",
]


@pytest.fixture(autouse=True)
def local_names(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPTEL_HOME", str(tmp_path))  # hashed() makes its salt here
    values.set_local_identity(corpus.LOCAL_USER, "buildhost-7.corp")
    yield
    values.set_local_identity()  # back to this machine's names


def _row(
    record: Any, app: str = APP, policy: str = POLICY, rendered: bool = False, signal: str = ""
) -> Row:
    text = record if isinstance(record, str) else json.dumps(record)
    if not signal:
        signal = record.get("signal", "span") if isinstance(record, dict) else "span"
    return Row(1, app, policy, signal, "otlp", text, 0.0, 0, None, rendered)


def _sent(record: Any, **kw: Any) -> bool:
    """Would ``record``, read back from the spool, be sent?"""
    try:
        delivery.payload(_row(record, **kw))
    except delivery.Unreadable:
        return False
    return True


def _texts() -> list[str]:
    return [t for _, _, t in corpus.cases()] + [u for u, _ in corpus.USEFUL] + EXTRA


def _raw_records(text: str) -> list[dict[str, Any]]:
    """Records carrying ``text`` in every field and attribute a tool can reach."""
    attrs = {k: text for k in [*DECLARED, *KNOWN]}
    return [
        dict(COMMON, signal="event", name=text, time_ns=1, attributes=attrs,
             resource={**RESOURCE, **attrs}, scope={"name": text, "version": text},
             report={"type": text, "frames": [{"file": text, "function": text, "line": 3}],
                     "message": text}),
        dict(SPAN, name=text, status={"code": "ERROR", "message": text}, attributes=attrs,
             events=[{"name": text, "time_ns": 3, "attributes": attrs}]),
        dict(COMMON, signal="log", time_ns=1, body=text, message=text, severity="WARNING",
             attributes={**attrs, "code.function": text, "code.lineno": 7}, resource=RESOURCE,
             scope={"name": text, "version": None}),
        dict(COMMON, signal="metric", name=text, description=text, unit=text, type="histogram",
             monotonic=False, temporality="delta", resource=RESOURCE,
             scope={"name": "m", "version": None},
             points=[{"attributes": attrs, "start_ns": 1, "time_ns": 2, "count": 1, "sum": 2.5,
                      "min": 2.5, "max": 2.5, "bounds": [0.0, 5.0], "bucket_counts": [0, 1, 0]}]),
    ]  # fmt: skip


def test_every_record_the_anonymizer_gives_passes_unchanged_without_the_declarations() -> None:
    anonymizer = Anonymizer(Declarations(DECLARED, free_text=True))
    plain = Anonymizer(Declarations({k: optel.Label for k in DECLARED}))
    refused = []
    checked = 0
    for text in _texts():
        for raw in _raw_records(text):
            for a in (anonymizer, plain):
                record = json.loads(json.dumps(a.scrub(raw)))  # as the spool keeps it
                checked += 1
                item = None
                try:
                    item = delivery.payload(_row(record))
                except delivery.Unreadable as exc:
                    refused.append((text[:40], record["signal"], str(exc)))
                if item is not None:
                    assert item.record == record  # sent as it was written, nothing changed
    assert checked > 2000
    assert refused == [], f"{len(refused)} good record(s) refused: {refused[:5]}"


Spot = Callable[[dict[str, Any], str], None]
SPOTS: dict[str, Spot] = {
    "name": lambda r, t: r.update(name=t),
    "declared value": lambda r, t: r["attributes"].update(model=t),
    "value in a list": lambda r, t: r["attributes"].update(model=["onnx", t]),
    "attribute key": lambda r, t: r["attributes"].update({t: "x"}),
    "exception.message": lambda r, t: r["attributes"].update({"exception.message": t}),
    "url.full": lambda r, t: r["attributes"].update({"url.full": t}),
    "code.file.path": lambda r, t: r["attributes"].update({"code.file.path": t}),
    "resource value": lambda r, t: r.update(resource={**RESOURCE, "service.name": t}),
    "resource key": lambda r, t: r.update(resource={**RESOURCE, t: "x"}),
    "host.name": lambda r, t: r.update(resource={**RESOURCE, "host.name": t}),
    "event name": lambda r, t: r["events"][0].update(name=t),
    "event value": lambda r, t: r["events"][0]["attributes"].update(n=t),
    "status message": lambda r, t: r["status"].update(message=t),
    "scope name": lambda r, t: r["scope"].update(name=t),
    "scope version": lambda r, t: r["scope"].update(version=t),
    "version": lambda r, t: r.update(version=t),
    "session id": lambda r, t: r.update(session_id=t),
    "trace id": lambda r, t: r.update(trace_id=t),
    "a field of its own": lambda r, t: r.update(note=t),
}


def test_a_planted_datum_anywhere_in_a_record_keeps_it_from_being_sent() -> None:
    assert _sent(SPAN)  # the record around it is a good one
    leaked = []
    for case, fragments, text in corpus.cases():
        for spot, plant in SPOTS.items():
            record = copy.deepcopy(SPAN)
            plant(record, text)
            if _sent(record):
                body = json.dumps(record, ensure_ascii=False)
                leaked += [(case, spot, f) for f in fragments if f in body]
    assert leaked == []


@pytest.mark.parametrize("key", corpus.DENIED_KEYS)
def test_a_denied_key_is_never_sent_whatever_its_value(key: str) -> None:
    record = copy.deepcopy(SPAN)
    record["attributes"][key] = "x"
    assert not _sent(record)


@pytest.mark.parametrize(
    "value",
    ["alice@example.org", "/home/ursulak/models/best.pt", "ghp_" + "a1B2c3D4e5" * 4, "ursulak",
     "Ursulak", "buildhost-7.corp", "4111 1111 1111 1111", 4111111111111111],
)  # fmt: skip
def test_the_reported_leaks_in_each_field_are_never_sent(value: Any) -> None:
    for spot, plant in SPOTS.items():
        if spot in ("trace id", "session id") and not isinstance(value, str):
            continue
        record = copy.deepcopy(SPAN)
        plant(record, value)  # type: ignore[arg-type]
        assert not _sent(record), spot


def test_a_frame_location_carries_no_token_nor_name() -> None:
    token = "ghp_" + "a1B2c3D4e5" * 4
    event = dict(COMMON, signal="event", name="exception", time_ns=1, attributes={},
                 scope={"name": "optel", "version": None})  # fmt: skip
    for file, sent in (("<user-code>", True), ("<frozen os>", True), (f"<{token}>", False),
                       (f"<{corpus.LOCAL_USER}>", False)):  # fmt: skip
        frames = [{"file": file, "function": "f", "line": 3}]
        assert _sent(dict(event, report={"type": "ValueError", "frames": frames})) is sent, file
        trace = f"Traceback (most recent call last):\n  {file}:3 in f\nValueError"
        assert _sent(dict(SPAN, attributes={"exception.stacktrace": trace})) is sent, file


def test_a_session_id_is_optels_shape_and_began_before_the_record() -> None:
    assert _sent(dict(SPAN, session_id="1796050565"))  # an older optel's: the seconds alone
    assert not _sent(dict(SPAN, session_id="5551234567"))  # a phone number: "begins" in 2146
    assert not _sent(dict(SPAN, session_id="1"))


def test_numbers_in_clocks_and_points_are_not_card_numbers() -> None:
    assert not _sent(dict(SPAN, start_ns=4111111111111111))
    assert not _sent(dict(SPAN, links=5500000000000004))
    assert _sent(dict(SPAN, start_ns=1796050565035387773))


@pytest.mark.parametrize(
    "change",
    [
        {"app": "othertool"},  # consent is checked for the row's app: the record must be its
        {"policy": "opt-out"},
        {"signal": "event"},
        {"kind": "EVIL"},
        {"status": {"code": "OK", "message": "", "extra": 1}},
        {"attributes": {"model": {"nested": "value"}}},
        {"attributes": {"model": [["onnx"]]}},
        {"events": {"name": "x"}},
        {"resource": ["service.name"]},
        {"time": "yesterday"},
        {"links": True},
    ],
)
def test_a_record_not_of_optel_shape_is_not_sent(change: dict[str, Any]) -> None:
    assert not _sent(dict(SPAN, **change), signal="span")


def test_deeply_nested_rows_are_refused_without_recursion() -> None:
    nested: Any = "x"
    for _ in range(200):
        nested = [nested]
    assert not _sent(dict(SPAN, attributes={"model": nested}))
    deep = '{"signal":"span","attributes":{"model":' + "[" * 100_000 + "]" * 100_000 + "}}"
    with pytest.raises(recheck.Unverified, match="nested too deeply"):
        delivery.payload(_row(deep))
    with pytest.raises(recheck.Unverified, match="larger than"):
        delivery.payload(_row(json.dumps(dict(SPAN, name="x" * recheck.MAX_BODY))))


def test_what_is_not_a_record_is_unreadable_and_what_is_not_optels_is_unverified() -> None:
    for text in ("{not json", "[1, 2]", '"a string"'):
        with pytest.raises(delivery.Unreadable) as info:
            delivery.payload(_row(text))
        assert info.value.reason == "unreadable_record"
    with pytest.raises(delivery.Unreadable) as info:
        delivery.payload(_row(dict(SPAN, note="x")))
    assert info.value.reason == "unverified"


def test_a_payload_an_older_optel_rendered_is_not_sent() -> None:
    rendered = json.dumps({"events": [{"name": "old", "params": {"email": "a@b.org"}}]})
    with pytest.raises(recheck.Unverified, match="older optel"):
        delivery.payload(_row(rendered, rendered=True))


def test_records_this_process_spooled_are_sent_without_parsing_or_checking_again() -> None:
    record = dict(SPAN)
    text = json.dumps(record)
    item = delivery.payload(_row(text), known={text: record})
    assert item.record is record


def test_show_previews_what_the_re_check_lets_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dest:
        def render(self, record: dict[str, Any]) -> str:
            return json.dumps(record)

    good, bad = _row(SPAN), _row(dict(SPAN, name="mail alice@example.org"))
    assert delivery.preview(good, Dest()) == (json.dumps(SPAN), None)  # type: ignore[arg-type]
    payload, why = delivery.preview(bad, Dest())  # type: ignore[arg-type]
    assert payload is None and why is not None and why.startswith("unverified")
    assert delivery.shown(bad, Dest()) is None  # type: ignore[arg-type]


def test_what_it_remembers_follows_the_user_and_host_names_looked_for() -> None:
    record = dict(SPAN, attributes={"model": "zelda"})
    assert _sent(record)  # remembered as fine while zelda is nobody here
    values.set_local_identity("zelda", "box")
    assert not _sent(record)


def test_a_record_this_process_spooled_is_not_sent_under_another_apps_row() -> None:
    record = dict(SPAN)
    text = json.dumps(record)
    with pytest.raises(recheck.Unverified):  # (consent is checked for the row's app)
        delivery.payload(_row(text, app="othertool"), known={text: record})


def test_past_the_records_it_keeps_this_process_knows_its_own_text_and_nothing_else() -> None:
    """delivery.Spooled keeps the newest records themselves and, beyond them,
    the hash of each text it spooled: such a row is parsed back but not
    re-checked; a row whose text this process did not write is re-checked."""
    spooled = delivery.Spooled()
    mine = [dict(SPAN, name=f"convert{i}") for i in range(5)]
    texts = [json.dumps(r) for r in mine]
    spooled.records.update(zip(texts[-2:], mine[-2:]))  # the newest kept as they are
    spooled.remember(texts)
    assert delivery.payload(_row(texts[-1]), known=spooled).record is mine[-1]  # kept as is
    old = delivery.payload(_row(texts[0]), known=spooled).record
    assert old == mine[0] and old is not mine[0]  # parsed back from its text

    unchecked = dict(SPAN, name="mail alice@example.org")  # never through this anonymizer
    with pytest.raises(delivery.Unreadable) as info:
        delivery.payload(_row(json.dumps(unchecked)), known=spooled)
    assert info.value.reason == "unverified"
    with pytest.raises(recheck.Unverified):  # its own text, under another app's row
        delivery.payload(_row(texts[0], app="othertool"), known=spooled)

    small = delivery.Spooled(remember=3)  # bounded: forgotten texts are re-checked
    small.remember(texts[:3])
    small.remember(texts[3:])
    assert small.get(texts[0]) is None and small.get(texts[4]) == mine[4]
    spooled.clear()
    assert spooled.get(texts[0]) is None and spooled.get(texts[-1]) is None


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.text(max_size=12), st.integers()), max_size=4
    ),
    st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
)
def test_a_shared_resource_is_parsed_once_and_the_record_is_its_text(
    attributes: dict[str, Any], other: dict[str, Any]
) -> None:
    """The pipeline writes a record's resource, shared by its records, as the
    last field of each text (Spooled.share): such a text parses back to what
    its whole text says, holding the shared resource itself; a text ending in
    another resource, or with no resource, is parsed whole."""
    spooled = delivery.Spooled()
    shared_text = json.dumps(RESOURCE, separators=(",", ":"), ensure_ascii=False)
    spooled.share("resource", RESOURCE, shared_text)
    record = dict(SPAN, attributes=attributes)
    head = json.dumps(record, separators=(",", ":"), ensure_ascii=False)[:-1]
    texts = {
        "shared": f'{head},"resource":{shared_text}}}',
        "another": f'{head},"resource":{json.dumps(other)}}}',
        "none": f"{head}}}",
        "twice": f'{head},"resource":{{"a":1}},"resource":{shared_text}}}',  # the last one wins
    }
    spooled.remember(texts.values())
    for case, text in texts.items():
        parsed = spooled.get(text)
        assert parsed == json.loads(text), case
        assert (parsed["resource"] is RESOURCE) == (case in ("shared", "twice")), case
