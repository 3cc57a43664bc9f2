"""The data path under load, as ratios against the stock OpenTelemetry SDK in the same run.

Stock SDK: ``TracerProvider`` + ``BatchSpanProcessor`` (its defaults) +
``OTLPSpanExporter`` (http/protobuf), as the OpenTelemetry docs set it up.
Receiver: the fast loopback OTLP/HTTP receiver of the tests
(``tests/fakes/otlp_server.py``, in this process: it decodes every request and
notes when it arrived), the same for every contender. Every figure is the
median of ``--repeats`` runs (default 5) of fresh processes, contenders
alternated so machine load hits them alike. optel runs with consent, caps
raised, its default 300 ms exit budget.

Rows (``ratio`` = optel / stock):

1. a burst of 10,000 records (optel ``event()`` and spans; stock spans) then
   exit: the exit phase (from the end of the tool's code to the end of its
   process; goal: within the budget + 50 ms), records delivered during the
   run, what became of every record (delivered, waiting for the next run,
   dropped), peak RSS (goal: within 10 MB);
2. CPU per record, the worker and the send included: the same burst followed
   by a flush that sends everything, minus the same program with no records
   (goal: no more than stock). Stock's default queue (2,048) drops part of the
   burst, and a dropped span costs it no export, so its figure moves with what
   it drops; a reference row gives stock with a queue that holds it all,
   another optel with its spool taken out (``NO_SPOOL``: what the durable
   spool costs, and what is left when it is gone);
3. the anonymize + spool path on its own (records/s; goal >= 20,000/s),
   against the stock exporter's own per-record path (encode + serialize);
4. start-up with consent and an OTLP endpoint, against the stock SDK set up
   with an OTLP exporter (goal: within 20 ms);
5. exit with a healthy collector over the same program with nowhere to send
   (goal: under 50 ms), against stock's same difference;
6. openvino-telemetry as a reference (when installed: ``pip install
   openvino-telemetry``; ``make bench`` does): per-event cost on the caller's
   thread, peak RSS for 10,000 events, start-up, exit. Its sends go to
   google-analytics.com over HTTPS, so here they go through an HTTPS proxy on
   loopback that refuses every connection: nothing leaves the machine.

Run: ``.venv/bin/python bench/datapath.py [--repeats N]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes: the loopback receiver
sys.path.insert(0, str(ROOT / "src"))  # this tree's optel reads the spools (not an installed one)

from bench._peakrss import peak_of  # noqa: E402
from tests.fakes.otlp_server import OtlpServer  # noqa: E402

N = 10_000
BUDGET_MS = 300

OPTEL = """
import json, sys, time
n, kind, flush = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "flush"
import optel
t = optel.init(app="bench", allowed_attributes=["framework", "i"],
               max_events_per_minute=10**7, max_events_per_run=10**7)
assert t.enabled, t
start = time.time()
if kind == "event":
    for i in range(n):
        t.event("used", framework="onnx", i=i)
else:
    tracer = t.tracer
    for i in range(n):
        with tracer.start_as_current_span("convert", attributes={"framework": "onnx", "i": i}):
            pass
if flush:
    t.flush(120)
print(json.dumps({"start": start, "end": time.time()}), flush=True)
"""

STOCK = """
import json, os, sys, time
n, kind, flush = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "flush"
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
provider = TracerProvider()
endpoint = os.environ.get("BENCH_ENDPOINT")
if endpoint:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    # "keep": a queue that holds the whole burst (the default 2,048 drops part of it)
    queue = {"max_queue_size": max(n, 2048)} if kind == "keep" else {}
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces"), **queue)
    )
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("bench")
start = time.time()
for i in range(n):
    with tracer.start_as_current_span("convert", attributes={"framework": "onnx", "i": i}):
        pass
if flush:
    provider.force_flush(120_000)
print(json.dumps({"start": start, "end": time.time()}), flush=True)
"""

OPENVINO = """
import json, sys, time
n = int(sys.argv[1])
import openvino_telemetry as tm
t = tm.Telemetry(app_name="bench", app_version="1.0", tid="G-BENCH0000", backend="ga4",
                 enable_opt_in_dialog=False)
start = time.time()
for i in range(n):
    t.send_event("bench", "used", f"onnx-{i}")
hot = time.time() - start
t.force_shutdown(1.0)  # as OpenVINO tools do at their end
print(json.dumps({"start": start, "end": time.time(), "hot": hot}), flush=True)
"""

# the anonymize + spool path alone: records queued with the worker stopped, then one drain
SPOOL_PATH = """
import json, sys, time
n, kind = int(sys.argv[1]), sys.argv[2]
import optel, optel.pipeline, optel.testing
optel.pipeline.HELP_AT = (10**9, 10**9)  # all of it queued, then one drain: the path alone
t = optel.init(app="bench", allowed_attributes=["framework", "i"],
               max_events_per_minute=10**7, max_events_per_run=10**7)
p = optel.testing.pipeline(t)
p.stop_worker()
p.drain()  # opens the spool: not part of the path
if kind == "event":
    for i in range(n):
        t.event("used", framework="onnx", i=i)
else:
    for i in range(n):
        with t.tracer.start_as_current_span("convert", attributes={"framework": "onnx", "i": i}):
            pass
assert p.queued == n, p.queued
t0 = time.perf_counter()
p.drain()
took = time.perf_counter() - t0
assert optel.testing.stats() == {}, optel.testing.stats()
print(json.dumps({"per_s": n / took}), flush=True)
"""

STOCK_ENCODE = """
import json, sys, time
n = int(sys.argv[1])
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
spans = []
class Keep(SpanExporter):
    def export(self, batch):
        spans.extend(batch)
        return SpanExportResult.SUCCESS
p = TracerProvider()
p.add_span_processor(SimpleSpanProcessor(Keep()))
tracer = p.get_tracer("bench")
for i in range(n):
    with tracer.start_as_current_span("convert", attributes={"framework": "onnx", "i": i}):
        pass
t0 = time.perf_counter()
for k in range(0, n, 512):  # the batch processor's batches
    encode_spans(spans[k:k + 512]).SerializePartialToString()
took = time.perf_counter() - t0
print(json.dumps({"per_s": n / took}), flush=True)
"""

# A reference for the CPU rows, not a contender: optel with its spool taken out.
# Records go from memory straight to the destination, every one of them held
# until it is sent: nothing is written to disk, nothing logged as sent, and
# memory grows with the burst. What stays between this and stock is not the
# spool's doing; what lies between this and optel is.
NO_SPOOL = """
from collections import deque
import optel.pipeline as _pipeline
from optel import delivery as _delivery, exporters as _exporters
_pipeline.KNOWN_MAX = 10**9  # every record kept: none is parsed back
def _add(self, new, *args, **kw):
    self.__dict__.setdefault("_held", deque()).extend(new)
def _deliver(self, deadline, **kw):
    held, known = self.__dict__.setdefault("_held", deque()), self._spooled.records
    with self._using_destinations():
        while held:
            batch = []
            try:
                while len(batch) < 512:
                    batch.append(held.popleft())
            except IndexError:
                pass
            items = [_exporters.Payload(i, r.signal, None, r.created, record=known[r.body])
                     for i, r in enumerate(batch)]
            for name in self.names:
                dest = self.destinations.get(name)
                if dest is not None and dest.remote:
                    _exporters.send(dest, items, 5.0)
    return _delivery.Report()
_pipeline.Pipeline._add = _add
_pipeline.Pipeline._deliver = _deliver
"""

OPTEL_STARTUP = "import optel; optel.init(app='bench', version='1')"
STOCK_STARTUP = (
    "import os; from opentelemetry import trace; from opentelemetry.sdk.trace import TracerProvider;"
    " from opentelemetry.sdk.trace.export import BatchSpanProcessor;"
    " from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter;"
    " p = TracerProvider(); p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter("
    "endpoint=os.environ['BENCH_ENDPOINT'] + '/v1/traces'))); trace.set_tracer_provider(p)"
)
OPENVINO_STARTUP = (
    "import openvino_telemetry as tm; tm.Telemetry(app_name='bench', app_version='1.0',"
    " tid='G-BENCH0000', backend='ga4', enable_opt_in_dialog=False).force_shutdown(0)"
)


# -- running contenders ----------------------------------------------------------------------


def _env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPTEL_", "OTEL_")) and k not in ("CI", "DO_NOT_TRACK")
    }
    environ.update(OPTEL_HOME=home, PYTHONPATH=str(ROOT / "src"), HOME=home)
    environ.update(extra or {})
    return environ


@contextmanager
def _home(consent: bool = True) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as home:
        if consent:
            subprocess.run(
                [sys.executable, "-m", "optel", "opt-in", "--app", "bench"],
                env=_env(home),
                capture_output=True,
                check=True,
            )
            os.makedirs(os.path.join(home, "intel"), exist_ok=True)  # openvino-telemetry's
            with open(os.path.join(home, "intel", "openvino_telemetry"), "w") as f:
                f.write("1")
        yield home


class Run(dict):  # type: ignore[type-arg]
    """One process: its output (the JSON it printed), exit time, CPU and peak RSS."""


def _run(code: str, args: list[str], environ: dict[str, str]) -> Run:
    with peak_of(environ) as (env, peak_mib):
        p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None and p.stderr is not None
        out = p.stdout.read()
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        exited = time.time()
        rss = peak_mib()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"bench run failed:\n{err[-3000:]}")
    run = Run(json.loads(out.strip().splitlines()[-1]))
    run.update(
        exited=exited,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=rss,  # its own (wait4's ru_maxrss holds this bench's: see bench/_peakrss.py)
        stderr=err,
    )
    return run


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _records(server: OtlpServer, before: float | None = None) -> int:
    n = 0
    for r in server.accepted():
        if before is not None and r.at >= before:
            continue
        msg = r.message
        for group in getattr(msg, "resource_spans", []):
            n += sum(len(s.spans) for s in group.scope_spans)
        for group in getattr(msg, "resource_logs", []):
            n += sum(
                sum(1 for rec in s.log_records if rec.event_name == "used")
                for s in group.scope_logs
            )
    return n


def _optel_stats(home: str) -> tuple[int, dict[str, int]]:
    import optel.testing

    stats = optel.testing.stats(home)
    waiting = len(optel.testing.pending(home, limit=10**6))
    return waiting, {k: v for k, v in stats.items() if k.startswith("dropped")}


# -- rows ----------------------------------------------------------------------------------------


def burst(repeats: int) -> list[str]:
    contenders: dict[str, tuple[str, list[str]]] = {
        "optel event()": (OPTEL, [str(N), "event", "no"]),
        "optel spans": (OPTEL, [str(N), "span", "no"]),
        "stock spans": (STOCK, [str(N), "span", "no"]),
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, (code, args) in contenders.items():
            with _home() as home, OtlpServer() as server:
                env = _env(home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
                                  "BENCH_ENDPOINT": server.url})  # fmt: skip
                r = _run(code, args, env)
                time.sleep(0.2)  # answers still in flight when the process ended
                during, total = _records(server, r["end"]), _records(server)
                waiting, dropped = _optel_stats(home) if name.startswith("optel") else (0, {})
                runs[name].append(
                    {
                        "exit_ms": (r["exited"] - r["end"]) * 1000,
                        "during": during,
                        "delivered": total,
                        "waiting": waiting,
                        "dropped": N - total - waiting,  # counted by optel (dropped_*)
                        "rss": r["rss_mb"],
                        "warn": r["stderr"].strip()[-200:],
                    }
                )
    stock = {
        k: _med([r[k] for r in runs["stock spans"]]) for k in runs["stock spans"][0] if k != "warn"
    }
    lines = [f"burst of {N:,} records then exit (median of {repeats}; budget {BUDGET_MS} ms)"]
    for name in contenders:
        m = {k: _med([r[k] for r in runs[name]]) for k in runs[name][0] if k != "warn"}
        goal = BUDGET_MS + 50
        lines.append(
            f"  {name:14} exit phase {m['exit_ms']:7.0f} ms  ratio {m['exit_ms'] / stock['exit_ms']:5.2f}x"
            + (
                f"  {'OK' if m['exit_ms'] <= goal else 'OVER'} (goal <= {goal} ms)"
                if name != "stock spans"
                else ""
            )
        )
        lines.append(
            f"  {'':14} delivered during the run {m['during']:7.0f}  ratio"
            f" {m['during'] / max(stock['during'], 1):5.2f}x;  delivered {m['delivered']:.0f},"
            f" waiting for the next run {m['waiting']:.0f}, dropped {m['dropped']:.0f}"
        )
        lines.append(
            f"  {'':14} peak RSS {m['rss']:6.1f} MB  ratio {m['rss'] / stock['rss']:5.2f}x"
            f"  ({m['rss'] - stock['rss']:+.1f} MB"
            + (
                f"; goal <= +10 MB {'OK' if m['rss'] - stock['rss'] <= 10 else 'OVER'})"
                if name != "stock spans"
                else ")"
            )
        )
        warnings = {r["warn"] for r in runs[name] if r["warn"]}
        if warnings:
            lines.append(f"  {'':14} stderr: {sorted(warnings)[0]!r}")
    return lines


def cpu(repeats: int) -> list[str]:
    contenders = {
        "optel event()": (OPTEL, "event"),
        "optel spans": (OPTEL, "span"),
        "stock spans": (STOCK, "span"),
        "stock, no drop": (STOCK, "keep"),  # a reference: the stock SDK sending every span
        "optel, no spool": (NO_SPOOL + OPTEL, "span"),  # a reference: see NO_SPOOL
    }
    per: dict[str, list[float]] = {k: [] for k in contenders}
    sent: dict[str, list[int]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, (code, kind) in contenders.items():
            with _home() as home, OtlpServer() as server:
                env = _env(home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
                                  "BENCH_ENDPOINT": server.url})  # fmt: skip
                base = _run(code, ["0", kind, "flush"], env)
                full = _run(code, [str(N), kind, "flush"], env)
                per[name].append((full["cpu"] - base["cpu"]) / N * 1e6)
                sent[name].append(_records(server))
    stock = _med(per["stock spans"])
    lines = [
        f"CPU per record, worker and send included ({N:,} records, flushed; median of {repeats})"
    ]
    notes = {
        "stock spans": "",
        "stock, no drop": "  (reference: its queue holds the whole burst)",
        "optel, no spool": "  (reference: spans sent from memory, nothing on disk: see NO_SPOOL)",
    }
    for name in contenders:
        m = _med(per[name])
        verdict = notes.get(name, f"  {'OK' if m <= stock else 'OVER'} (goal <= stock)")
        lines.append(
            f"  {name:15} {m:7.1f} us  ratio {m / stock:5.2f}x  (delivered {_med(sent[name]):.0f}){verdict}"
        )
    return lines


def spool_path(repeats: int) -> list[str]:
    per: dict[str, list[float]] = {"event": [], "span": [], "stock": []}
    for _ in range(repeats):
        with _home() as home:
            env = _env(home)
            per["event"].append(_run(SPOOL_PATH, [str(N), "event"], env)["per_s"])
        with _home() as home:
            per["span"].append(_run(SPOOL_PATH, [str(N), "span"], _env(home))["per_s"])
            per["stock"].append(_run(STOCK_ENCODE, [str(N)], _env(home))["per_s"])
    stock = _med(per["stock"])
    lines = [f"anonymize + spool path alone ({N:,} records queued, one drain; median of {repeats})"]
    for kind in ("event", "span"):
        m = _med(per[kind])
        lines.append(
            f"  optel {kind + 's':6} {m:9,.0f} records/s  ratio {m / stock:5.2f}x of the stock"
            f" exporter's encode path ({stock:,.0f}/s)  {'OK' if m >= 20_000 else 'UNDER'}"
            " (goal >= 20,000/s)"
        )
    return lines


def _wall(code: str, environ: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=environ, check=True, capture_output=True)
    return time.perf_counter() - t0


def startup(repeats: int) -> list[str]:
    samples: dict[str, list[float]] = {"optel": [], "stock": []}
    with _home() as home, OtlpServer() as server:
        env = _env(home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "BENCH_ENDPOINT": server.url})
        for _ in range(2):  # the OS file cache
            _wall(OPTEL_STARTUP, env)
            _wall(STOCK_STARTUP, env)
        for _ in range(max(repeats * 3, 9)):
            samples["optel"].append(_wall(OPTEL_STARTUP, env))
            samples["stock"].append(_wall(STOCK_STARTUP, env))
    o, s = _med(samples["optel"]) * 1e3, _med(samples["stock"]) * 1e3
    return [
        f"start-up with consent and an OTLP endpoint (import + init, process wall, median of"
        f" {len(samples['optel'])}): optel {o:.0f} ms  stock SDK + OTLP exporter {s:.0f} ms"
        f"  ratio {o / s:5.2f}x  ({o - s:+.0f} ms; goal <= +20 ms {'OK' if o - s <= 20 else 'OVER'})"
    ]


FIVE_OPTEL = """
import optel
t = optel.init(app="bench")
for i in range(5):
    with t.tracer.start_as_current_span(f"work-{i}"):
        pass
"""
FIVE_STOCK = STOCK.replace("n, kind, flush = int(sys.argv[1]), sys.argv[2], sys.argv[3] == \"flush\"",
                           "n, kind, flush = 5, 'span', False").replace(
    'print(json.dumps({"start": start, "end": time.time()}), flush=True)', "")  # fmt: skip


def healthy_exit(repeats: int) -> list[str]:
    deltas: dict[str, list[float]] = {"optel": [], "stock": []}
    with _home() as home, OtlpServer() as server:
        plain = _env(home)
        aimed = _env(
            home, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.url, "BENCH_ENDPOINT": server.url}
        )
        _wall(FIVE_OPTEL, plain)
        _wall(FIVE_STOCK, plain)
        for _ in range(max(repeats * 2, 7)):
            for name, code in (("optel", FIVE_OPTEL), ("stock", FIVE_STOCK)):
                base = _wall(code, plain)
                deltas[name].append(_wall(code, aimed) - base)
        got = len(server.spans())
    o, s = _med(deltas["optel"]) * 1e3, _med(deltas["stock"]) * 1e3
    return [
        f"exit with a healthy collector over no destination (5 spans, median of paired runs):"
        f" optel {o:+.0f} ms  stock {s:+.0f} ms  ratio {o / s if s > 0 else float('nan'):5.2f}x"
        f"  (goal < 50 ms {'OK' if o < 50 else 'OVER'}; spans received {got})"
    ]


@contextmanager
def _refusing_proxy() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}"  # nothing listens: every connection is refused


def openvino(repeats: int) -> list[str]:
    try:
        import openvino_telemetry  # noqa: F401
    except ImportError:
        return ["openvino-telemetry: skipped (not installed; `pip install openvino-telemetry`)"]
    hot, rss, exits, starts, optel_hot = [], [], [], [], []
    with _refusing_proxy() as proxy:
        extra = {k: proxy for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
        extra.update(NO_PROXY="", no_proxy="")
        for _ in range(repeats):
            with _home() as home:
                env = _env(home, extra)
                r = _run(OPENVINO, [str(N)], env)
                hot.append(r["hot"] / N * 1e6)
                rss.append(r["rss_mb"])
                five = _run(OPENVINO, ["5"], env)
                exits.append((five["exited"] - five["end"]) * 1000)
                starts.append(_wall(OPENVINO_STARTUP, env) * 1000)
            with _home() as home:
                r = _run(OPTEL, [str(N), "event", "no"], _env(home))
                optel_hot.append((r["end"] - r["start"]) / N * 1e6)
    return [
        f"openvino-telemetry {openvino_telemetry_version()} (reference; its GA4 sends refused by a"
        " loopback proxy, nothing leaves the machine; median of"
        f" {repeats}): event on the caller's thread {_med(hot):.1f} us (optel event()"
        f" {_med(optel_hot):.1f} us); peak RSS for {N:,} events {_med(rss):.1f} MB;"
        f" start-up {_med(starts):.0f} ms; exit after 5 events (force_shutdown(1.0), as its"
        f" tools do) {_med(exits):.0f} ms",
    ]


def openvino_telemetry_version() -> str:
    try:
        from importlib.metadata import version

        return version("openvino-telemetry")
    except Exception:
        return "?"


SECTIONS: dict[str, Callable[[int], list[str]]] = {
    "burst": burst,
    "cpu": cpu,
    "spool": spool_path,
    "startup": startup,
    "exit": healthy_exit,
    "openvino": openvino,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    print(
        "data path vs the stock SDK (BatchSpanProcessor + OTLPSpanExporter, http/protobuf) to the"
        " loopback receiver of tests/fakes/otlp_server.py; ratio = optel / stock",
        flush=True,
    )
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        for line in section(args.repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()
