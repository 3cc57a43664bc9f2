"""The leak corpus, driven through the public API in a real process:
no needle survives into the spool's bytes or `optel show`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT, run_cli, run_python
from tests.leaks.corpus import DENIED_KEYS, LEAKS, RESOURCE

EMIT = """
import logging, sys
sys.path.insert(0, {root!r})
import optel
from tests.leaks.corpus import LEAKS, DENIED_KEYS

t = optel.init(app="leaktool", allowed_attributes=["detail"] + [k for k, _ in DENIED_KEYS])
assert t.enabled, t
tracer = t.tracer
log = logging.getLogger("leaktool")
log.addHandler(t.log_handler())
log.propagate = False
seen = t.meter.create_counter("leaks_seen")
for text, _ in LEAKS:
    with tracer.start_as_current_span("step " + text, attributes={{"detail": text}}) as span:
        span.add_event("event " + text, {{"detail": text}})
        try:
            raise RuntimeError(text)
        except RuntimeError as exc:
            span.record_exception(exc)
            t.error(exc)
    try:
        with tracer.start_as_current_span("auto"):
            raise KeyError(text)  # recorded by the SDK on the way out, traceback and all
    except KeyError:
        pass
    seen.add(1, {{"detail": text}})
    t.event("leak_event", detail=text)
    log.warning("problem: %s", text)
    try:
        raise ValueError(text)
    except ValueError:
        log.exception("failed with %s", text)
for key, value in DENIED_KEYS:
    with tracer.start_as_current_span("denied", attributes={{key: value}}):
        pass
    t.event("denied_event", **{{key: value}})
t.shutdown()
print("emitted", len(LEAKS))
"""


def _needles() -> list[str]:
    needles = [n for _, ns in LEAKS for n in ns]
    needles += [v for _, v in DENIED_KEYS]
    needles += list(RESOURCE.values())
    return needles


def test_corpus_has_at_least_100_distinct_leaks() -> None:
    assert len(set(_needles())) >= 100


def test_no_leak_reaches_the_spool_or_show(home: Path) -> None:
    assert run_cli("opt-in", home=home).returncode == 0
    resource = ",".join(f"{k}={v}" for k, v in RESOURCE.items())
    r = run_python(
        EMIT.format(root=str(ROOT)), home, {"OTEL_RESOURCE_ATTRIBUTES": resource}, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert f"emitted {len(LEAKS)}" in r.stdout

    shown = run_cli("show", "--json", "--limit", "100000", home=home).stdout
    items = json.loads(shown)
    signals = {i["signal"] for i in items}
    assert signals == {"span", "event", "metric", "log"}, signals
    assert len(items) > 2 * len(LEAKS)  # recorded (rate limits cap events), just scrubbed

    on_disk = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    survivors = [n for n in _needles() if n in shown or n.encode() in on_disk]
    assert survivors == []

    # the meaning stays: typed placeholders where the data was
    for placeholder in ("<email>", "<home>", "<ip>", "<mac>", "<secret>", "<card>"):
        assert placeholder in shown, placeholder
