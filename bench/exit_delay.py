"""Exit delay with a black-holed collector: optel against the stock OTel OTLP exporter.

A black hole accepts TCP connections and never answers: the worst network
for an exporter, as a firewall that drops packets or a hung collector. Each
tool records 5 spans and exits. The exit delay is the tool's wall time minus
the wall time of the same tool with nowhere to send (optel: consent given,
no destination; stock: the same TracerProvider without an exporter), medians
of runs alternated so machine load hits both alike.

- optel: ``optel.init`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` at the black hole
  (exit budget ``OPTEL_EXIT_BUDGET_MS``, default 300 ms);
- stock: ``TracerProvider`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter``
  (http/protobuf), as the OpenTelemetry docs set it up; its exit waits for
  the exporter's timeout.

Run: ``.venv/bin/python bench/exit_delay.py`` (``make bench`` runs it too);
it then prints the whole fault matrix (every network fault: exit delay,
delivered after healing, duplicates); ``--no-faults`` skips that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes: the loopback fault servers

from tests.fakes import faults  # noqa: E402

OPTEL = """
import optel
t = optel.init(app="benchtool")
for i in range(5):
    with t.tracer.start_as_current_span(f"work-{i}"):
        pass
"""

STOCK = """
import os
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
provider = TracerProvider()
endpoint = os.environ.get("BENCH_ENDPOINT")
if endpoint:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("benchtool")
for i in range(5):
    with tracer.start_as_current_span(f"work-{i}"):
        pass
"""


def _env(home: str, extra: dict[str, str]) -> dict[str, str]:
    environ = faults._env(home, None)
    environ.update(extra)
    return environ


def _time(code: str, environ: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120
    )
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench run failed:\n{r.stderr[-2000:]}")
    return took


def black_hole(optel_runs: int = 5, stock_runs: int = 2) -> list[str]:
    samples: dict[str, list[float]] = {
        k: [] for k in ("optel", "optel_base", "stock", "stock_base")
    }
    with tempfile.TemporaryDirectory() as home, faults.black_hole() as hole:
        subprocess.run(
            [sys.executable, "-m", "optel", "opt-in", "--app", "benchtool"],
            env=_env(home, {}),
            capture_output=True,
            check=True,
        )
        plain = _env(home, {})
        aimed = _env(home, {"OTEL_EXPORTER_OTLP_ENDPOINT": hole, "BENCH_ENDPOINT": hole})
        _time(OPTEL, plain)  # warm the OS file cache
        _time(STOCK, plain)
        deltas: dict[str, list[float]] = {"optel": [], "stock": []}
        for i in range(max(optel_runs, stock_runs)):
            # each run paired with a run with nowhere to send, right before it
            for name, code, runs in (("optel", OPTEL, optel_runs), ("stock", STOCK, stock_runs)):
                if i < runs:
                    base, took = _time(code, plain), _time(code, aimed)
                    samples[name + "_base"].append(base)
                    samples[name].append(took)
                    deltas[name].append(took - base)
        budget = int(os.environ.get("OPTEL_EXIT_BUDGET_MS", "300"))
    med = {k: statistics.median(v) for k, v in samples.items()}
    optel_delay = statistics.median(deltas["optel"])
    stock_delay = statistics.median(deltas["stock"])
    # optel's measured delay can be within the noise of a busy machine, which
    # inflates a ratio: the budget, optel's worst case by design, gives a floor
    return [
        f"exit delay, black-holed collector: optel {optel_delay * 1000:6.0f} ms"
        f" ({optel_runs} runs, budget {budget} ms)  stock OTel OTLP exporter"
        f" {stock_delay * 1000:6.0f} ms ({stock_runs} runs)",
        f"  ratio stock/optel {stock_delay / max(optel_delay, 0.001):6.1f}x measured;"
        f" {stock_delay / max(budget / 1000, 0.001):5.1f}x against optel's whole budget",
        f"  medians: optel {med['optel'] * 1000:.0f} ms vs no destination"
        f" {med['optel_base'] * 1000:.0f} ms; stock {med['stock'] * 1000:.0f} ms vs no exporter"
        f" {med['stock_base'] * 1000:.0f} ms; delays are medians of paired differences",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", action="store_true", help=argparse.SUPPRESS)  # the default
    parser.add_argument(
        "--no-faults", dest="faults", action="store_false", help="skip the fault matrix"
    )
    parser.add_argument("--repeats", type=int, default=2, help="fault matrix runs per fault")
    parser.set_defaults(faults=True)
    args = parser.parse_args()
    for line in black_hole():
        print(line, flush=True)
    if args.faults:
        base, rows = faults.run_matrix(repeats=args.repeats)
        print(faults.table(base, rows))


if __name__ == "__main__":
    main()
