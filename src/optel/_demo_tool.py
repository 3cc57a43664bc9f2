"""A sample model-converter tool instrumented with optel (run by ``optel demo``)."""

from __future__ import annotations

import sys
import time
from typing import Any

import optel

DEMO_PATH = "/home/alice/models/resnet50.onnx"
DEMO_BROKEN = "/home/alice/models/broken.onnx"
DEMO_CRASH = "/home/alice/models/corrupt.onnx"


# What may leave, each key with its kind (and what it is, for the page): anything
# else is dropped. One place for every side: optel.init reads it (through SETUP),
# the gateway's allowlist is generated from it (optel gateway-config --declarations
# optel._demo_tool:ATTRIBUTES), and so is the tool's page (optel describe
# optel._demo_tool:SETUP).
ATTRIBUTES = {
    "framework": optel.OneOf("onnx", "tensorflow", "pytorch", doc="the source framework"),
    "input_path": optel.PathKind("the model file: only what it is and where"),  # never the path
    "model.size_mb": optel.Number("the model's size in MB", example=97.8),
    "optimize": optel.Label("the optimization applied", example="fp16"),
    "duration_ms": optel.Number("how long the conversion took", example=31.4),
}


def convert(telemetry: optel.NullTelemetry, framework: str, path: str) -> None:
    tracer = telemetry.tracer
    converted = telemetry.meter.create_counter("models_converted", unit="1")
    duration = telemetry.meter.create_histogram("convert_duration", unit="ms")
    start = time.perf_counter()
    # input_path is a path in the user's home: only its kind comes out
    # (file:.onnx@home); user.email is not declared and names a person: dropped
    with tracer.start_as_current_span(
        "convert",
        attributes={"framework": framework, "input_path": path, "user.email": "alice@example.com"},
    ):
        with tracer.start_as_current_span("load_model", attributes={"model.size_mb": 97.8}):
            time.sleep(0.01)
        with tracer.start_as_current_span("optimize", attributes={"optimize": "fp16"}):
            time.sleep(0.01)
    elapsed_ms = (time.perf_counter() - start) * 1000
    converted.add(1, {"framework": framework})
    duration.record(elapsed_ms, {"framework": framework})
    telemetry.event("model_converted", framework=framework, duration_ms=round(elapsed_ms, 1))


SETUP: dict[str, Any] = dict(
    app="democonvert",
    version="1.0.0",
    telemetry_command="democonvert telemetry",
    attributes=ATTRIBUTES,
    # the names it records, so its "what we collect" page lists them (optel describe)
    events={
        "convert_command": "the convert command, tracked: its duration and outcome",
        "model_converted": "a model was converted",
    },
    spans={
        "convert": "one conversion",
        "load_model": "reading the model",
        "optimize": "optimizing it",
        "library_work": "a library's own span, recorded through OpenTelemetry",
    },
    metrics={
        "models_converted": "models converted (counter)",
        "convert_duration": "conversion time in ms (histogram)",
    },
)
"""What ``optel.init`` gets: also what ``optel describe optel._demo_tool:SETUP`` reads."""


def main() -> None:
    telemetry = optel.init(**SETUP)
    print(f"democonvert: telemetry {'on' if telemetry.enabled else 'off'}")
    # usage: one event with duration and outcome; its first use records
    # run_start (anonymous system facts, a coarse run count) and run_end
    with telemetry.track("convert_command", framework="onnx"):
        convert(telemetry, "onnx", DEMO_PATH)
    print("democonvert: converted resnet50.onnx")
    try:
        open(DEMO_BROKEN, "rb")  # noqa: SIM115 - the caught failure
    except OSError as exc:
        telemetry.error(exc)
        print("democonvert: broken.onnx failed (reported: type and frames, no message)")
    # a library that only knows the OpenTelemetry API is traced through optel too
    from opentelemetry import trace

    with trace.get_tracer("some.library").start_as_current_span("library_work"):
        pass
    telemetry.shutdown()


def crash() -> None:
    """``--crash``: a bug the tool did not catch; optel must not change what the user sees."""
    optel.init(app="democonvert", version="1.0.0", capture_crashes=True)
    print("democonvert: converting corrupt.onnx", flush=True)
    raise RuntimeError(f"unsupported opset 99 in {DEMO_CRASH}")


if __name__ == "__main__":
    crash() if "--crash" in sys.argv[1:] else main()
