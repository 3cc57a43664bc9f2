"""The logging bridge: warnings and errors as scrubbed, rate-limited log records."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pytest

import optel
from optel import logbridge, testing
from tests.conftest import Granted, grant, run_python


@pytest.fixture(autouse=True)
def _root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    before = list(root.handlers), logging.getLogRecordFactory()
    yield
    logbridge.release()
    root.handlers[:] = before[0]
    logging.setLogRecordFactory(before[1])


def _logs(t: optel.Telemetry) -> list[dict[str, Any]]:
    t.flush(0)
    return [json.loads(r.payload) for r in testing.pending() if r.signal == "log"]


def test_capture_logs_sends_templates_never_arguments(granted: Granted) -> None:
    t = granted(capture_logs=True)
    log = logging.getLogger("mytool.convert")
    log.info("converting %s", "/home/alice/a.onnx")  # below WARNING: not sent
    log.warning("disk almost full under %s (%d%%)", "/home/alice/models", 97)
    try:
        open("/home/alice/missing.onnx")  # noqa: SIM115
    except OSError:
        log.exception("failed for %s", "alice@example.com")
    logs = _logs(t)
    assert [r["severity"] for r in logs] == ["WARNING", "ERROR"]
    assert logs[0]["body"] == "disk almost full under %s (%d%%)"  # the template only
    assert "alice" not in json.dumps(logs)
    assert logs[1]["body"] == "failed for %s"
    assert logs[1]["attributes"]["exception.type"] == "FileNotFoundError"
    assert "exception.message" not in logs[1]["attributes"]  # free text: off by default
    assert logs[1]["attributes"]["exception.stacktrace"].startswith("<user-code>:")
    assert logs[1]["scope"]["name"] == "mytool.convert"
    assert "message" not in logs[0]  # the formatted text never reaches the spool


def test_a_message_without_arguments_is_free_text(granted: Granted) -> None:
    # log.error(f"...") formats data into the message: nothing tells it apart
    # from a constant, so it is free text, off by default
    t = granted(capture_logs=True)
    path = "/home/alice/models/x.onnx"
    logging.getLogger("mytool").warning(f"cannot open {path}")
    (rec,) = _logs(t)
    assert rec["body"] == "" and "alice" not in json.dumps(rec)
    assert rec["attributes"]["code.function"] == "test_a_message_without_arguments_is_free_text"


def test_free_text_opt_in_sends_the_scrubbed_message(granted: Granted) -> None:
    t = granted(capture_logs=True, free_text=True)
    logging.getLogger("mytool").warning("cannot open %s for %s", "/home/alice/x.onnx", "a@b.org")
    (rec,) = _logs(t)
    assert rec["body"] == "cannot open <file:.onnx@home> for <email>"


def test_capture_logs_level_and_single_handler(granted: Granted) -> None:
    t = granted(capture_logs="ERROR")
    optel.init(app="mytool", capture_logs="ERROR")  # a second init adds no second handler
    logging.getLogger("x").warning("not %s", "sent")
    logging.getLogger("x").error("sent %s", "once")
    assert [r["body"] for r in _logs(t)] == ["sent %s"]


def test_log_records_are_rate_limited(granted: Granted) -> None:
    t = granted(capture_logs=True, max_events_per_minute=3)
    for i in range(10):
        logging.getLogger("loop").warning("warning %d", i)
    assert len(_logs(t)) == 3
    assert t.run.limiter.dropped == 7


def test_optel_own_messages_never_loop_back(granted: Granted) -> None:
    t = granted(capture_logs=True)
    logging.getLogger("optel").warning("optel: internal error in x")
    assert _logs(t) == []


def test_capture_leaves_the_host_logging_setup_alone(granted: Granted) -> None:
    before = list(logging.getLogger().handlers)
    granted(capture_logs=True)
    assert logging.getLogger().handlers == before  # no handler added: basicConfig still works


def test_last_resort_printing_and_basic_config_are_unchanged(home: Path) -> None:
    grant(home, "mytool")
    code = """
        import logging, os, sys
        if os.environ.get("USE_OPTEL"):
            import optel
            assert optel.init(app="mytool", capture_logs=True).enabled
        logging.getLogger("tool").warning("no handler configured: printed by last resort")
        logging.basicConfig(format="configured %(levelname)s %(message)s", stream=sys.stdout)
        logging.getLogger("tool").error("after basicConfig")
        """
    plain = run_python(code, home)
    with_optel = run_python(code, home, {"USE_OPTEL": "1"})
    assert plain.stderr == "no handler configured: printed by last resort\n"
    assert plain.stdout == "configured ERROR after basicConfig\n"
    assert (with_optel.stdout, with_optel.stderr) == (plain.stdout, plain.stderr)


def test_without_consent_nothing_is_attached(home: Path) -> None:
    before = list(logging.getLogger().handlers), logging.getLogRecordFactory()
    t = optel.init(app="mytool", capture_logs=True)
    assert not t.enabled
    assert (logging.getLogger().handlers, logging.getLogRecordFactory()) == before
    assert isinstance(t.log_handler(), logging.NullHandler)
