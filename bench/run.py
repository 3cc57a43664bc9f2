"""``make bench``: optel's costs as ratios against baselines measured in the same run.

Each figure runs in fresh subprocesses (clean state, a throw-away OPTEL_HOME)
and alternates optel and baseline runs so machine noise hits both alike;
the median of the repeats is reported.

1. span cost with consent, host thread only: optel vs the bare SDK
   (TracerProvider + BatchSpanProcessor + an exporter that does nothing);
   and the same including optel's background work (anonymize + spool).
2. span cost without consent: optel's null object vs the OTel no-op tracer.
3. start-up: ``import optel; optel.init(...)`` without consent vs ``python -c pass``.
4. extra scripts in bench/ (exit delay, ...) when present.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5
SPANS = 5_000

SPAN_LOOP = """
import json, sys, time
N = {n}
def work(tracer):
    t0 = time.perf_counter()
    for i in range(N):
        with tracer.start_as_current_span("convert", attributes={{"framework": "onnx", "step": i % 10}}):
            pass
    return time.perf_counter() - t0
"""

BARE_SDK = (
    SPAN_LOOP
    + """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
class Null(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS
p = TracerProvider()
p.add_span_processor(BatchSpanProcessor(Null(), max_queue_size=N + 10))
tracer = p.get_tracer("bench")
work(tracer)  # warm-up pass, same as below
p.force_flush()
hot = work(tracer)
t0 = time.perf_counter(); p.force_flush(); flush = time.perf_counter() - t0
print(json.dumps({{"hot": hot, "total": hot + flush}}))
"""
)

OPTEL = (
    SPAN_LOOP
    + """
import optel
t = optel.init(app="bench", allowed_attributes=["framework", "step"])
assert t.enabled, t
tracer = t.tracer
work(tracer)
t.flush(0)
hot = work(tracer)
t0 = time.perf_counter(); t.flush(0); flush = time.perf_counter() - t0
print(json.dumps({{"hot": hot, "total": hot + flush}}))
"""
)

# Without consent both loops spell it the way a tool does, ``holder.tracer``
# on each call: a plain attribute for the baseline, optel's null object here.
OFF_LOOP = """
import json, time
N = {n}
def work(holder):
    t0 = time.perf_counter()
    for i in range(N):
        with holder.tracer.start_as_current_span("convert", attributes={{"framework": "onnx"}}):
            pass
    return time.perf_counter() - t0
"""

NOOP_API = (
    OFF_LOOP
    + """
from opentelemetry.trace import NoOpTracer
class Holder:
    tracer = NoOpTracer()
work(Holder())
print(json.dumps({{"hot": work(Holder())}}))
"""
)

OPTEL_OFF = (
    OFF_LOOP
    + """
import optel
t = optel.init(app="bench")
assert not t.enabled
work(t)
print(json.dumps({{"hot": work(t)}}))
"""
)


def _env(home: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPTEL_", "OTEL_")) and k not in ("CI", "DO_NOT_TRACK")
    }
    environ["OPTEL_HOME"] = home
    environ["PYTHONPATH"] = str(ROOT / "src")
    return environ


def _run(code: str, environ: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"bench step failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pair(a: str, b: str, grant: bool) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    ra, rb = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as home:
            environ = _env(home)
            if grant:
                subprocess.run(
                    [sys.executable, "-m", "optel", "opt-in", "--app", "bench"],
                    env=environ,
                    capture_output=True,
                    check=True,
                )
            ra.append(_run(a, environ))
            rb.append(_run(b, environ))
    return ra, rb


def _med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def span_costs() -> list[str]:
    n = SPANS
    opt, bare = _pair(OPTEL.format(n=n), BARE_SDK.format(n=n), grant=True)
    lines = []
    for key, label in (("hot", "host thread"), ("total", "incl. background")):
        o, b = _med(opt, key) / n * 1e6, _med(bare, key) / n * 1e6
        target = "  (target <= 1.20x)" if key == "hot" else ""
        lines.append(
            f"span, consent on, {label:17}: optel {o:7.2f} us  bare SDK {b:7.2f} us"
            f"  ratio {o / b:5.2f}x{target}"
        )
    off, noop = _pair(OPTEL_OFF.format(n=n), NOOP_API.format(n=n), grant=False)
    o, b = _med(off, "hot") / n * 1e6, _med(noop, "hot") / n * 1e6
    lines.append(
        f"span, consent off               : optel {o:7.2f} us  OTel no-op {b:7.2f} us"
        f"  ratio {o / b:5.2f}x  (target <= 1.10x)"
    )
    return lines


def startup() -> list[str]:
    samples: dict[str, list[float]] = {"pass": [], "optel": []}
    with tempfile.TemporaryDirectory() as home:
        environ = _env(home)
        commands = {
            "pass": [sys.executable, "-c", "pass"],
            "optel": [sys.executable, "-c", "import optel; optel.init(app='bench', version='1')"],
        }
        for _ in range(3):  # warm the OS file cache
            for cmd in commands.values():
                subprocess.run(cmd, env=environ, check=True)
        for _ in range(15):
            for name, cmd in commands.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, env=environ, check=True)
                samples[name].append(time.perf_counter() - t0)
        wrote = sorted(os.listdir(home))
    p, o = statistics.median(samples["pass"]) * 1e3, statistics.median(samples["optel"]) * 1e3
    return [
        f"start-up, consent off            : optel {o:6.1f} ms  python -c pass {p:6.1f} ms"
        f"  added {o - p:5.1f} ms  (target <= 15 ms); files written: {len(wrote)}"
    ]


def extra_scripts() -> list[Path]:
    """The other benches in bench/: every script but this one; a name starting
    with ``_`` is a helper module the benches import, not a bench."""
    return [
        script
        for script in sorted((ROOT / "bench").glob("*.py"))
        if script.name != Path(__file__).name and not script.name.startswith("_")
    ]


def extras() -> list[str]:
    lines = []
    for script in extra_scripts():
        out = subprocess.run(
            [sys.executable, str(script)],
            env=_env(tempfile.mkdtemp()),
            capture_output=True,
            text=True,
            check=False,
        )
        lines.append(f"-- {script.name}")
        lines.extend(out.stdout.rstrip().splitlines() or [f"(failed: {out.stderr.strip()[-300:]})"])
    return lines


def main() -> None:
    # An installed package has its bytecode compiled at install time; an
    # editable checkout (and PYTHONDONTWRITEBYTECODE) would make every run
    # compile optel from source, which no user pays.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "optel")], check=True
    )
    print(f"optel bench: python {sys.version.split()[0]}, {REPEATS} repeats, medians\n")
    for section in (span_costs, startup, extras):
        for line in section():
            print(line, flush=True)


if __name__ == "__main__":
    main()
