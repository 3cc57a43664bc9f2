"""End to end: tools instrumented with optel send through the real gateway
(the collector built from collector-config/, gateway.yaml: allowlist and
scrubbing on), and ``optel report`` answers from the files it wrote."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest

from tests.conftest import grant, run_cli, run_python
from tests.integration.collector import CONFIG_SETS, Collector, build, config_args, free_port

pytest.importorskip("duckdb", reason="optel report needs DuckDB: pip install 'optel[report]'")

TOOL = """
import optel
t = optel.init(app="e2etool", version={version!r})
with t.track("convert"):
    pass
try:
    with t.track("convert"):
        if {fail}:
            raise ValueError("bad input")
except ValueError:
    pass
for _ in range(2 if {fail} else 0):
    try:
        with t.track("export"):
            raise KeyError("missing")
    except KeyError:
        pass
t.shutdown()
"""

# (install, version, failing run?)
RUNS = (("a", "1.0.0", False), ("a", "1.1.0", True), ("b", "1.1.0", True))


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


def test_report_from_the_gateways_files(binary: Path, tmp_path: Path) -> None:
    out = tmp_path / "gw" / "otelcol"
    out.parent.mkdir()
    gw = Collector(binary, out)
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": gw.http_url, "OPTEL_EXIT_BUDGET_MS": "10000"}
        for install, version, fail in RUNS:
            home = tmp_path / install
            grant(home, "e2etool")
            r = run_python(TOOL.format(version=version, fail=fail), home, env)
            assert r.returncode == 0, r.stderr
            if json.loads(run_cli("status", "--json", home=home).stdout)["pending"]:
                assert run_cli("flush", home=home, extra_env=env).returncode == 0
            assert json.loads(run_cli("status", "--json", home=home).stdout)["pending"] == 0
    finally:
        gw.stop()
    page = tmp_path / "report.html"
    r = run_cli(
        "report", str(out.parent), "--app", "e2etool", "--json", "--no-store", "--out",
        str(page), home=tmp_path / "author",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    s = rep["summary"]
    assert s["without_install"] == 0  # the install id passed the gateway's allowlist
    assert (s["active_installs"], s["new_installs"], s["runs"]) == (2, 2, 3)
    assert (s["commands"], s["commands_ok"]) == (10, 4)
    # per failing run: ValueError once, KeyError twice (reported once, repeated once)
    assert (s["failures"], s["installs_failing"], s["crashes"]) == (6, 2, 0)
    assert [(c["command"], c["calls"], c["ok"], c["installs"]) for c in rep["commands"]] == [
        ("convert", 6, 4, 2),
        ("export", 4, 0, 2),
    ]
    convert = rep["commands"][0]
    assert 0 < convert["p50_ms"] <= convert["p95_ms"] < 10_000
    failures = {(f["exc_type"], f["occurrences"], f["installs"]) for f in rep["failures"]}
    assert failures == {("KeyError", 4, 2), ("ValueError", 2, 2)}
    assert all(f["location"].startswith("<string>:") for f in rep["failures"])
    assert [(v["version"], v["installs"]) for v in rep["versions"]["period"]] == [
        ("1.0.0", 1),
        ("1.1.0", 2),
    ]
    mix = rep["mix"]
    python = ".".join(platform.python_version_tuple()[:2])
    assert mix["installs_with_facts"] == 2
    assert mix["python"] == [{"value": python, "installs": 2, "share": 1.0}]
    assert [i["value"] for i in mix["os"]] == [platform.system().lower()]
    assert page.read_text().count('<figure class="chart"') == 10


def test_the_clickhouse_overlay_is_checked_by_the_built_collector(binary: Path) -> None:
    # validate runs the exporter's own config checks (no server needed): a
    # good config passes, a bad endpoint is refused with the exporter's words
    args = [str(binary), "validate", *config_args(CONFIG_SETS["gateway-clickhouse.yaml"])]
    ok = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPTEL_GW_CLICKHOUSE": "tcp://clickhouse:notaport"},
    )
    assert bad.returncode != 0 and "exporters::clickhouse" in bad.stderr
    found = subprocess.run([str(binary), "components"], capture_output=True, text=True, timeout=60)
    assert "clickhouseexporter v0.161.0" in found.stdout


def test_without_a_reachable_clickhouse_the_gateway_does_not_start(binary: Path) -> None:
    # the exporter creates its tables at start: a wrong address shows at once
    env = {
        **os.environ,
        "OPTEL_GW_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OPTEL_GW_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OPTEL_GW_CLICKHOUSE": f"tcp://127.0.0.1:{free_port()}",
    }
    r = subprocess.run(
        [str(binary), *config_args(CONFIG_SETS["gateway-clickhouse.yaml"])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode != 0
    assert 'failed to start "clickhouse" exporter' in r.stderr
