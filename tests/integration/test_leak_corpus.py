"""The leak corpus, driven through the public API in real processes: no needle
survives into any file under OPTEL_HOME (spool, WAL, state), ``optel show``,
or the bytes a GA4 or OTLP receiver gets on the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, run_python
from tests.fakes.ga4_server import FakeGA4
from tests.leaks.corpus import DENIED_KEYS, LEAKS, LOCAL_USER, RESOURCE

EMIT = """
import logging, sys
sys.path.insert(0, {root!r})
import optel
from opentelemetry.trace import Status, StatusCode
from tests.leaks.corpus import LEAKS, DENIED_KEYS

t = optel.init(app="leaktool", allowed_attributes=["detail"] + [k for k, _ in DENIED_KEYS],
               max_events_per_minute=100_000, max_events_per_run=100_000)
assert t.enabled, t
tracer = t.tracer
log = logging.getLogger("leaktool")
log.addHandler(t.log_handler())
log.propagate = False
seen = t.meter.create_counter("leaks_seen")
for text, _ in LEAKS:
    with tracer.start_as_current_span("step " + text, attributes={{"detail": text}}) as span:
        span.add_event("event " + text, {{"detail": text}})
        span.set_status(Status(StatusCode.ERROR, text))
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


def _emit(home: Path, extra_env: dict[str, str]) -> None:
    assert run_cli("opt-in", home=home).returncode == 0
    environ = {
        "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in RESOURCE.items()),
        "LOGNAME": LOCAL_USER,  # getpass.getuser() reads these first
        "USER": LOCAL_USER,
        **extra_env,
    }
    r = run_python(EMIT.format(root=str(ROOT)), home, environ, timeout=180)
    assert r.returncode == 0, r.stderr
    assert f"emitted {len(LEAKS)}" in r.stdout


def _survivors(blob: bytes | str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [n for n in _needles() if n.encode() in data]


def _files(home: Path) -> bytes:
    """Raw bytes of every file optel left: the SQLite spool, its WAL, state files."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_corpus_has_at_least_100_distinct_leaks() -> None:
    assert len(set(_needles())) >= 100


SAFE_RESOURCE = ("service.", "telemetry.sdk.", "os.type", "process.runtime.", "optel.")


def test_no_leak_reaches_the_spool_or_show(home: Path) -> None:
    # the SDK's identity detectors add host.name, host.arch, process.pid,
    # process.command_args, process.executable.path, process.owner, ...
    _emit(home, {"OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel,host,process,os,service_instance"})
    shown = run_cli("show", "--json", "--limit", "100000", home=home).stdout
    items = json.loads(shown)
    resource_keys = {k for i in items for k in i["payload"].get("resource", {})}
    assert resource_keys and all(k.startswith(SAFE_RESOURCE) for k in resource_keys), resource_keys
    signals = {i["signal"] for i in items}
    assert signals == {"span", "event", "metric", "log"}, signals
    assert len(items) > 4 * len(LEAKS)  # everything recorded, just scrubbed

    on_disk = _files(home)
    assert b"SQLite format 3" in on_disk  # the spool itself was read
    assert _survivors(shown) == []
    assert _survivors(on_disk) == []

    # the meaning stays: typed placeholders where the data was
    for placeholder in ("<email>", "<home>", "<ip>", "<mac>", "<secret>", "<card>", "<user>"):
        assert placeholder in shown, placeholder


def test_no_leak_reaches_the_ga4_wire(home: Path) -> None:
    with FakeGA4() as ga4:
        _emit(
            home,
            {
                "OPTEL_DESTINATIONS": "ga4",
                "OPTEL_GA4_MEASUREMENT_ID": "G-LEAKS",
                "OPTEL_GA4_API_SECRET": "leak-test-secret",
                "OPTEL_GA4_ENDPOINT": ga4.url,
                "OPTEL_EXIT_BUDGET_MS": "30000",  # send everything before exit
            },
        )
        wire = b"".join(h.raw for h in ga4.collected())
        names = {e["name"] for e in ga4.events()}
    assert {"leak_event", "exception"} <= names, names  # the corpus did go out
    assert _survivors(wire) == []
    assert _survivors(_files(home)) == []


def test_no_leak_reaches_the_otlp_wire(home: Path) -> None:
    otlp = pytest.importorskip("tests.fakes.otlp_server", reason="no OTLP fake receiver yet")
    with otlp.OtlpServer() as server:
        _emit(
            home,
            {
                "OPTEL_DESTINATIONS": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
                "OPTEL_EXIT_BUDGET_MS": "30000",
            },
        )
        wire = b"".join(r.raw for r in server.accepted())  # protobuf, decompressed
        spans, logs, metrics = server.spans(), server.log_records(), server.metrics()
    assert len(spans) >= 2 * len(LEAKS) and logs and metrics  # the corpus did go out
    assert _survivors(wire) == []
    assert _survivors(_files(home)) == []
