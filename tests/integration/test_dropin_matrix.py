"""The drop-in with real instrumentations, into the real collector.

Unmodified scripts that use requests, urllib3, sqlite3, logging and click,
and pytest with pytest-opentelemetry, each run three ways by
``opentelemetry-instrument``:

- **optel**: ``OTEL_PYTHON_CONFIGURATOR=optel``, a service name and an OTLP
  endpoint, nothing else (zero configuration), into the generated gateway;
- **plain**: plain OpenTelemetry (the SDK's configurator) into the same
  collector with its scrubbing processors left out: what OpenTelemetry sends;
- **plain via gateway**: the same plain run into the gateway: what the
  gateway makes of a sender that is not optel.

The tests read the collector's file output. The useful attributes arrive
through optel with their kinds; the identifying ones (tokens, user and host
names, addresses, ports, user agents, query text literals, command lines,
message arguments) arrive from plain OpenTelemetry and never through optel
or the gateway. ``python -m tests.integration.test_dropin_matrix`` prints
the comparison table.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, _scrubbed_environ
from tests.integration.collector import (
    Collector,
    attrs,
    build,
    data_points,
    log_records,
    metrics,
    spans,
)

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")

TOKEN = "ghp_" + "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz1Xc3Vb5"
EMAIL = "alice.smith@example.com"

SERVER = """
import http.server, threading

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 404 if "missing" in self.path else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
"""

SCRIPTS: dict[str, tuple[str, list[str]]] = {
    # name: (script, arguments)
    "requests": (
        SERVER
        + f"""
import requests
requests.get(f"http://127.0.0.1:{{port}}/users/alice/repos?token={TOKEN}",
             headers={{"User-Agent": "alice-laptop/1.0"}})
requests.get(f"http://127.0.0.1:{{port}}/missing/{EMAIL}")
""",
        [],
    ),
    "urllib3": (
        SERVER
        + f"""
import urllib3
http = urllib3.PoolManager()
http.request("GET", f"http://127.0.0.1:{{port}}/users/alice/repos?token={TOKEN}")
http.request("GET", f"http://127.0.0.1:{{port}}/missing/{EMAIL}")
""",
        [],
    ),
    "sqlite3": (
        f"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
cur = con.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER, name TEXT, email TEXT)")
cur.execute("INSERT INTO users VALUES (7, 'Alice Smith', '{EMAIL}')")
cur.execute("SELECT name FROM users WHERE email = '{EMAIL}' AND id = 4242")
cur.execute("SELECT name FROM users WHERE email = ?", ("{EMAIL}",))
con.commit()
""",
        ["{tmp}/alice/app.db"],
    ),
    "logging": (
        f"""
import logging
log = logging.getLogger("tool.convert")
log.warning("cannot open %s", "/home/alice/models/resnet50.onnx")
log.error(f"cannot mail {EMAIL}")
try:
    open("/home/alice/private/notes.txt")
except OSError:
    log.exception("failed for %s", "{EMAIL}")
""",
        [],
    ),
    "click": (
        """
import click

@click.command()
@click.argument("path")
@click.option("--token")
def convert(path, token):
    click.echo("converted")

convert()
""",
        ["/home/alice/models/resnet50.onnx", "--token", TOKEN],
    ),
    "pytest": (
        f"""
def test_converts():
    assert 1 + 1 == 2

def test_mails_alice():
    user = "{EMAIL}"
    assert user == "bob@example.com", f"wrong user {{user}}"
""",
        [],
    ),
}

IDENTIFYING = {
    # what the scripts put in their data that says who or where: never through optel
    "requests": (TOKEN, "alice", EMAIL, "alice-laptop", "127.0.0.1"),
    "urllib3": (TOKEN, "alice", EMAIL, "127.0.0.1"),
    "sqlite3": ("Alice Smith", EMAIL, "4242"),
    "logging": ("/home/alice", EMAIL, "notes.txt"),
    "click": (TOKEN, "/home/alice", "resnet50.onnx"),
    "pytest": (EMAIL, "bob@example.com", "wrong user"),
}

EXPECTED = {
    # what arrives through optel with zero configuration: (key, value) on spans,
    # logs or data points (None: any value)
    "requests": {
        ("http.method", "GET"),
        ("http.status_code", "200"),
        ("http.status_code", "404"),
        ("http.url", "http://<host>/users/{}/repos"),
        ("http.url", "http://<host>/missing/{}"),
        ("http.scheme", "http"),
    },
    "urllib3": {
        ("http.method", "GET"),
        ("http.status_code", "200"),
        ("http.url", "http://<host>/users/{}/repos"),
    },
    "sqlite3": {
        ("db.system", "sqlite"),
        ("db.statement", "INSERT INTO users VALUES (?)"),
        ("db.statement", "SELECT name FROM users WHERE email = ? AND id = ?"),
    },
    "logging": {("code.function", "<module>"), ("exception.type", "FileNotFoundError")},
    "click": {("process.exit.code", "0")},
    "pytest": {
        ("pytest.nodeid", "test_tool.py::test_converts"),
        ("pytest.nodeid", "test_tool.py::test_mails_alice"),
        ("pytest.span_type", "test"),
        ("code.function", "test_converts"),
        ("code.filepath", "<user-code>"),
    },
}


def _needs() -> None:
    if not INSTRUMENT.exists():
        pytest.skip("opentelemetry-instrument is not installed (pip install -e '.[dev]')")
    for module in ("pytest_opentelemetry", "opentelemetry.instrumentation.click"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


def _run(
    name: str, mode: str, endpoint: str, home: Path, work: Path
) -> subprocess.CompletedProcess[str]:
    script, args = SCRIPTS[name]
    folder = work / f"{name}-{mode}"
    (folder / "alice").mkdir(parents=True, exist_ok=True)
    path = folder / ("test_tool.py" if name == "pytest" else "tool.py")
    path.write_text(textwrap.dedent(script))
    environ = _scrubbed_environ()
    environ.update(
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        OPTEL_HOME=str(home),
        OTEL_SERVICE_NAME=f"{name}-{mode}",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_PYTHON_CONFIGURATOR="optel" if mode == "optel" else "configurator",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
    )
    if name == "logging":
        environ["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    if mode == "optel":
        environ["OPTEL_EXIT_BUDGET_MS"] = "3000"  # the matrix reads what arrived
    argv = [str(INSTRUMENT), sys.executable]
    if name == "pytest":
        argv += ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
    else:
        argv += [str(path), *(a.format(tmp=folder) for a in args)]
    r = subprocess.run(argv, cwd=folder, env=environ, capture_output=True, text=True, timeout=180)
    if mode == "optel":  # whatever the exit budget left goes out now
        flush = subprocess.run(
            [sys.executable, "-m", "optel", "flush", "--timeout", "20"],
            env=environ | {"PYTHONPATH": str(ROOT / "src"), "OTEL_PYTHON_CONFIGURATOR": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert flush.returncode == 0, flush.stderr
    return r


Found = dict[str, Any]


def _collect(lines: list[dict[str, Any]]) -> dict[str, Found]:
    """Per service name: span names, attribute pairs, resources, log bodies, metric names."""
    out: dict[str, Found] = {}

    def slot(resource: dict[str, Any]) -> Found:
        service = str(attrs(resource).get("service.name"))
        return out.setdefault(
            service,
            {"spans": [], "pairs": set(), "resource": set(), "bodies": [], "metrics": set()},
        )

    def add(found: Found, obj: dict[str, Any]) -> None:
        for k, v in attrs(obj).items():
            found["pairs"].add((k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)))

    for resource, span in spans(lines):
        found = slot(resource)
        found["spans"].append((span["name"], span.get("status", {})))
        add(found, span)
        for event in span.get("events", []):
            add(found, event)
        found["resource"] |= set(attrs(resource))
    for resource, rec in log_records(lines):
        found = slot(resource)
        found["bodies"].append(
            (rec.get("severityText"), rec.get("body", {}).get("stringValue", ""))
        )
        add(found, rec)
    for resource, metric in metrics(lines):
        found = slot(resource)
        found["metrics"].add(metric["name"])
        for point in data_points(metric):
            add(found, point)
    return out


def run_matrix(work: Path) -> dict[str, dict[str, Found]]:
    """Every script, every mode; the collectors' output per script and mode."""
    binary = build()
    home = work / "optel-home"
    env = _scrubbed_environ() | {"OPTEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "optel", "opt-in"], env=env, check=True, timeout=60)
    overlay = work / "no-scrub.yaml"
    overlay.write_text(
        "service:\n  pipelines:\n"
        + "".join(
            f"    {s}: {{processors: [memory_limiter, batch]}}\n"
            for s in ("traces", "metrics", "logs")
        )
    )
    gw = Collector(binary, work / "gateway")
    raw = Collector(binary, work / "plain", configs=("gateway.yaml", str(overlay)))
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for name in SCRIPTS:
            runs[f"{name}-optel"] = _run(name, "optel", gw.http_url, home, work)
            runs[f"{name}-plain"] = _run(name, "plain", raw.http_url, home, work)
            runs[f"{name}-gateway"] = _run(name, "gateway", gw.http_url, home, work)
    finally:
        gw.stop()
        raw.stop()
    found = _collect(gw.lines()) | _collect(raw.lines())
    result: dict[str, dict[str, Found]] = {}
    for service, run in runs.items():
        name, mode = service.rsplit("-", 1)
        result.setdefault(name, {})[mode] = found.get(service, {}) | {"run": run}
    return result


@pytest.fixture(scope="module")
def matrix() -> Iterator[dict[str, dict[str, Found]]]:
    _needs()
    with tempfile.TemporaryDirectory(prefix="optel-matrix-") as work:
        yield run_matrix(Path(work))


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_the_script_runs_as_without_optel(matrix: dict[str, dict[str, Found]], name: str) -> None:
    optel_run, plain_run = matrix[name]["optel"]["run"], matrix[name]["plain"]["run"]
    assert optel_run.returncode == plain_run.returncode, optel_run.stderr
    assert optel_run.stdout == plain_run.stdout or name == "pytest", optel_run.stdout
    if name == "pytest":
        assert "1 failed, 1 passed" in optel_run.stdout, optel_run.stdout + optel_run.stderr


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_zero_configuration_sends_what_kind_of_work(
    matrix: dict[str, dict[str, Found]], name: str
) -> None:
    got = matrix[name]["optel"]
    missing = EXPECTED[name] - got.get("pairs", set())
    assert not missing, (missing, sorted(got.get("pairs", set())))


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_identifying_data_arrives_from_plain_otel_never_through_optel(
    matrix: dict[str, dict[str, Found]], name: str
) -> None:
    def text(found: Found) -> str:
        return json.dumps({k: sorted(map(str, v)) for k, v in found.items() if k != "run"})

    plain = text(matrix[name]["plain"])
    for datum in IDENTIFYING[name]:
        assert datum in plain, f"control: plain OpenTelemetry should have sent {datum!r}"
        assert datum not in text(matrix[name]["optel"]), f"{datum!r} went through optel"
        assert datum not in text(matrix[name]["gateway"]), f"{datum!r} went through the gateway"


def test_logs_go_through_optel_as_templates(matrix: dict[str, dict[str, Found]]) -> None:
    bodies = matrix["logging"]["optel"]["bodies"]
    assert ("WARNING", "cannot open %s") in bodies
    assert ("ERROR", "failed for %s") in bodies
    assert ("ERROR", "") in bodies  # an f-string: free text, its body is not sent
    plain = matrix["logging"]["plain"]["bodies"]
    assert ("WARN", "cannot open /home/alice/models/resnet50.onnx") in plain  # the arguments


def test_pytest_statuses_arrive_without_the_assertion_message(
    matrix: dict[str, dict[str, Found]],
) -> None:
    statuses = {n: s for n, s in matrix["pytest"]["optel"]["spans"]}
    failed = statuses["test_tool.py::test_mails_alice"]
    assert failed.get("code") == 2 and not failed.get("message")  # ERROR, no text
    assert statuses["test_tool.py::test_converts"].get("code") == 1  # OK
    # the failure's location and type, not pytest's report of the values compared
    traces = {v for k, v in matrix["pytest"]["optel"]["pairs"] if k == "exception.stacktrace"}
    assert [t.strip() for t in traces] == ["<user-code>:7: AssertionError"]


def test_metrics_of_http_instrumentations_keep_method_and_status(
    matrix: dict[str, dict[str, Found]],
) -> None:
    got = matrix["requests"]["optel"]
    assert "http.client.duration" in got["metrics"]
    assert ("http.method", "GET") in got["pairs"]
    assert not any(k in ("net.peer.name", "net.peer.port", "http.host") for k, _ in got["pairs"])


# -- the comparison table (python -m tests.integration.test_dropin_matrix) ------------------


def _keys(found: Found) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for k, v in found.get("pairs", set()):
        if not k.startswith("redaction."):
            out.setdefault(k, set()).add(v)
    return out


def _cell(values: set[str]) -> str:
    shown = sorted(v.replace("\n", "\\n") for v in values)
    text = ", ".join(f"`{v[:60]}`" for v in shown[:3])
    return (text + (" ..." if len(shown) > 3 else "")) if shown else "-"


def table(result: dict[str, dict[str, Found]]) -> str:
    lines = []
    for name, modes in result.items():
        optel, plain, via = (_keys(modes[m]) for m in ("optel", "plain", "gateway"))
        lines.append(f"\n### {name}\n")
        lines.append(
            "| key | plain OpenTelemetry sends | through optel (zero config) | plain, via the gateway |"
        )
        lines.append("|---|---|---|---|")
        for key in sorted(set(plain) | set(optel) | set(via)):
            cells = [_cell(d.get(key, set())) for d in (plain, optel, via)]
            lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
        spans_o = sorted({n for n, _ in modes["optel"].get("spans", [])})
        spans_p = sorted({n for n, _ in modes["plain"].get("spans", [])})
        lines.append(f"\nspan names: plain {spans_p[:6]}; optel {spans_o[:6]}")
        if modes["optel"].get("bodies") or modes["plain"].get("bodies"):
            lines.append(
                f"log bodies: plain {modes['plain'].get('bodies')}; optel {modes['optel'].get('bodies')}"
            )
        lines.append(
            f"resource keys: plain {sorted(modes['plain'].get('resource', []))}; optel {sorted(modes['optel'].get('resource', []))}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="optel-matrix-") as work_dir:
        print(table(run_matrix(Path(work_dir))))
