"""The leak corpus, driven through the public API in real processes.

Every case of the generated corpus (tests/leaks/corpus.py: classes x
variants) goes through every path into optel (tests/leaks/emit.py). Three
runs capture everything that could leave:

- local: every file under OPTEL_HOME (the SQLite spool and its WAL, state
  files) and ``optel show`` (JSON and text);
- wires: the bodies a GA4 and an OTLP receiver get on loopback, both at
  once, and the files left afterwards;
- debug: ``OPTEL_DEBUG=1`` output, with the SDK's attribute length limit at
  40 characters, so values arrive cut short.

No fragment of any case may survive in any capture; detect-secrets, which
knows none of optel's rules, must find nothing in any of them; and the
useful facts (labels, versions, numbers, exception types, library frames,
names such as convert, GET, SELECT) must all arrive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from optel import env
from tests.conftest import ROOT, _scrubbed_environ, run_cli
from tests.fakes.ga4_server import FakeGA4
from tests.fakes.otlp_server import OtlpServer
from tests.leaks import oracle
from tests.leaks.corpus import (
    CASES,
    LOCAL_USER,
    RESOURCE_KEYS,
    USEFUL,
    fragments,
    resource_needles,
)
from tests.leaks.emit import PATHS

SAFE_RESOURCE = ("service.", "telemetry.sdk.", "os.type", "process.runtime.", "optel.")


@dataclass
class Capture:
    """What one run let out, by where it was captured."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stats: dict[str, object] = field(default_factory=dict)

    def needles(self) -> list[str]:
        return sorted(set(fragments()) | set(self.resource.values()))

    def survivors(self) -> dict[str, list[str]]:
        out = {}
        for where, blob in self.blobs.items():
            found = [n for n in self.needles() if n.encode() in blob]
            if found:
                out[where] = found
        return out


def _files(home: Path, pattern: str = "*") -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob(pattern)) if p.is_file())


def _start(
    home: Path, offset: int, extra_env: dict[str, str]
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    assert run_cli("opt-in", home=home).returncode == 0
    resource = resource_needles(offset)
    environ = _scrubbed_environ()
    environ.update(
        {
            env.OPTEL_HOME: str(home),
            "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in resource.items()),
            # the SDK's identity detectors add host.name, process.owner, command args, ...
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel,host,process,os",
            "LOGNAME": LOCAL_USER,  # getpass.getuser() reads these first
            "USER": LOCAL_USER,
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
            **extra_env,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.leaks.emit"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, resource


def _finish(proc: subprocess.Popen[str], resource: dict[str, str]) -> Capture:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert f"emitted {len(CASES)} cases" in stdout
    return Capture(resource=resource, stdout=stdout, blobs={"stderr": stderr.encode()})


def _otlp_json(messages: list[Any]) -> bytes:
    """OTLP requests as JSON, attributes as {key: value}; trace and span ids
    (random bytes from the SDK, which in base64 would spell any short
    fragment by chance) left out."""
    from google.protobuf import json_format

    def flat(obj: Any) -> Any:
        if isinstance(obj, list):
            if obj and all(isinstance(o, dict) and set(o) == {"key", "value"} for o in obj):
                return {o["key"]: flat(o["value"]) for o in obj}
            return [flat(o) for o in obj]
        if isinstance(obj, dict):
            if len(obj) == 1 and next(iter(obj)).endswith("Value"):
                return flat(next(iter(obj.values())))
            return {
                k: flat(v) for k, v in obj.items() if k not in ("traceId", "spanId", "parentSpanId")
            }
        return obj

    return "\n".join(
        json.dumps(flat(json_format.MessageToDict(m)), indent=1, ensure_ascii=False)
        for m in messages
    ).encode()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Capture]:
    """The three runs, at once (each is a process of its own)."""
    homes = {name: tmp_path_factory.mktemp(f"leaks-{name}") for name in ("local", "wire", "debug")}
    with FakeGA4() as ga4, OtlpServer() as otlp:
        started = {
            "local": _start(homes["local"], 0, {}),
            "wire": _start(
                homes["wire"],
                1,
                {
                    "OPTEL_DESTINATIONS": "ga4,otlp",
                    "OPTEL_GA4_MEASUREMENT_ID": "G-LEAKS",
                    "OPTEL_GA4_API_SECRET": "leak-test-secret",
                    "OPTEL_GA4_ENDPOINT": ga4.url,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
                    "OPTEL_EXIT_BUDGET_MS": "60000",  # the most allowed: send everything at exit
                },
            ),
            # values cut by the SDK's length limit on the way in
            "debug": _start(
                homes["debug"], 2, {"OPTEL_DEBUG": "1", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40"}
            ),
        }
        caps = {name: _finish(*p) for name, p in started.items()}
        wire = caps["wire"]
        wire.blobs["ga4 wire"] = b"".join(h.raw for h in ga4.collected())
        accepted = otlp.accepted()
        wire.blobs["otlp wire"] = b"".join(r.raw for r in accepted)  # protobuf, decompressed
        wire.blobs["otlp wire as json"] = _otlp_json([r.message for r in accepted])
        wire.stats = {
            "ga4 events": {e["name"] for e in ga4.events()},
            "otlp spans": len(otlp.spans()),
            "otlp logs": len(otlp.log_records()),
            "otlp metrics": len(otlp.metrics()),
        }
    local = caps["local"]
    local.blobs["disk"] = _files(homes["local"])
    local.blobs["spool"] = _files(homes["local"], "spool*")
    show = ("show", "--limit", "100000")
    local.blobs["show --json"] = run_cli(*show, "--json", home=homes["local"]).stdout.encode()
    local.blobs["show"] = run_cli(*show, home=homes["local"]).stdout.encode()
    wire.blobs["disk after sending"] = _files(homes["wire"])
    debug = caps["debug"]
    debug.blobs["debug output"] = debug.blobs.pop("stderr")
    debug.blobs["disk"] = _files(homes["debug"])
    return caps


ORACLE_CAPTURES = {
    "local": ("spool", "show --json", "show"),
    # the OTLP wire in its JSON form: the same strings, without protobuf's binary framing
    "wire": ("ga4 wire", "otlp wire as json"),
    "debug": ("debug output",),
}


@pytest.fixture(scope="module")
def findings(runs: dict[str, Capture]) -> dict[str, list[tuple[str, str, str]]]:
    """detect-secrets' findings in each capture of each run (one scan of them all)."""
    captures = {
        f"{run} {where}": runs[run].blobs[where]
        for run, wheres in ORACLE_CAPTURES.items()
        for where in wheres
    }
    return oracle.scan_captures(captures)


@pytest.fixture(scope="module")
def local_run(runs: dict[str, Capture]) -> Capture:
    return runs["local"]


@pytest.fixture(scope="module")
def wire_run(runs: dict[str, Capture]) -> Capture:
    return runs["wire"]


@pytest.fixture(scope="module")
def debug_run(runs: dict[str, Capture]) -> Capture:
    return runs["debug"]


def test_the_corpus_is_generated_wide() -> None:
    classes = {cls.split(".")[0] for cls, _, _ in CASES}
    # every class of the outside audit (issue 12)
    assert {
        "email", "home", "local_user", "file_name", "dataset", "repo", "fqdn", "sql_literal",
        "phone", "ssn", "nino", "iban", "iban_spaced", "card", "mac", "ipv4", "ipv6",
        "password", "token", "url",
    } <= classes  # fmt: skip
    variants = {cls for cls, _, _ in CASES}
    assert len(CASES) >= 300 and len(variants) >= 50 and PATHS >= 20
    assert len({text for _, _, text in CASES}) == len(CASES)


def test_the_oracle_is_not_blind() -> None:
    # the same detect-secrets, over the corpus as it goes in
    findings = oracle.scan([text.encode() for _, _, text in CASES])
    assert len(findings) >= 20 and len({f[0] for f in findings}) >= 6, findings


def test_nothing_leaks_to_disk_or_show(local_run: Capture, findings: dict[str, Any]) -> None:
    assert local_run.survivors() == {}
    items = json.loads(local_run.blobs["show --json"])
    assert {i["signal"] for i in items} == {"span", "event", "metric", "log"}
    assert len(items) > 4 * len(CASES)  # everything recorded, just shaped
    resource_keys = {k for i in items for k in i["payload"].get("resource", {})}
    assert resource_keys and all(k.startswith(SAFE_RESOURCE) for k in resource_keys), resource_keys
    assert set(RESOURCE_KEYS) - resource_keys  # the identity keys were dropped
    assert b"SQLite format 3" in local_run.blobs["spool"]  # the spool itself was read
    assert {k: v for k, v in findings.items() if k.startswith("local")} == {
        "local spool": [], "local show --json": [], "local show": []
    }  # fmt: skip


def test_nothing_leaks_on_either_wire(wire_run: Capture, findings: dict[str, Any]) -> None:
    stats = wire_run.stats
    assert {"leak_event", "exception", "convert"} <= stats["ga4 events"]  # type: ignore[operator]
    assert stats["otlp spans"] >= 3 * len(CASES) and stats["otlp logs"] and stats["otlp metrics"]
    assert wire_run.survivors() == {}
    assert findings["wire ga4 wire"] == [] and findings["wire otlp wire as json"] == []


def test_nothing_leaks_in_debug_output_even_cut_short(
    debug_run: Capture, findings: dict[str, Any]
) -> None:
    out = debug_run.blobs["debug output"]
    assert out.count(b"optel debug [local]") > 4 * len(CASES)
    assert debug_run.survivors() == {}
    assert (
        b"SQLite" not in debug_run.blobs["disk"] or b'"leak_event"' not in debug_run.blobs["disk"]
    )
    assert findings["debug debug output"] == []


@pytest.mark.parametrize("fact, variants", USEFUL, ids=[f for f, _ in USEFUL])
def test_useful_facts_still_arrive(
    fact: str, variants: dict[str, str], local_run: Capture, wire_run: Capture, debug_run: Capture
) -> None:
    for where, blob in [
        ("show", local_run.blobs["show --json"]),
        ("otlp", wire_run.blobs["otlp wire as json"]),
        ("ga4", wire_run.blobs["ga4 wire"]),
        ("debug", debug_run.blobs["debug output"]),
    ]:
        expected = variants.get(where, fact)
        assert expected.encode() in blob, (where, expected)
