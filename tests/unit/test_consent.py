"""The consent package (optel.consent): the rule's switches, scopes and
policies, the record, its cache and migration, the opt-out notice, the prompt
and failing closed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import optel
from optel import _fs, consent, env
from optel.config import Paths, paths

TRUE_VALUES = ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", " 1 "]
FALSE_VALUES = ["", "0", "false", "no", "off"]


def write(home: Path, doc: Any) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "consent.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))


# -- kill switches and CI ------------------------------------------------------------


@pytest.mark.parametrize("name", [env.OPTEL_DISABLED, env.DO_NOT_TRACK])
@pytest.mark.parametrize("value", TRUE_VALUES)
def test_kill_switches_win_over_a_grant_in_any_case(home: Path, name: str, value: str) -> None:
    consent.record(consent.GRANTED, "mytool", p=paths())
    d = consent.decide("mytool", "opt-out", environ={name: value}, p=paths())
    assert (d.enabled, d.consent, d.reason) == (False, "granted", f"off: {name} is set")


@pytest.mark.parametrize("name", [env.OPTEL_DISABLED, env.DO_NOT_TRACK])
@pytest.mark.parametrize("value", FALSE_VALUES)
def test_false_kill_switch_values_do_nothing(home: Path, name: str, value: str) -> None:
    consent.record(consent.GRANTED, p=paths())
    assert consent.decide("mytool", environ={name: value}, p=paths()).enabled


@pytest.mark.parametrize("value, off", [("true", True), ("TRUE", True), ("1", False), ("", False)])
def test_otel_sdk_disabled_means_true_only(home: Path, value: str, off: bool) -> None:
    consent.record(consent.GRANTED, p=paths())
    d = consent.decide("mytool", environ={env.OTEL_SDK_DISABLED: value}, p=paths())
    assert d.enabled is not off


@pytest.mark.parametrize("name", env.CI_VARIABLES)
def test_every_ci_variable_turns_sending_off_unless_allowed(home: Path, name: str) -> None:
    consent.record(consent.GRANTED, p=paths())
    d = consent.decide("mytool", environ={name: "true"}, p=paths())
    assert not d.enabled and name in d.reason and "OPTEL_ALLOW_CI=1" in d.reason
    for allow in ("1", "true", "YES"):
        assert consent.decide(
            "mytool", environ={name: "true", env.OPTEL_ALLOW_CI: allow}, p=paths()
        ).enabled
    assert not consent.decide(
        "mytool", environ={name: "true", env.OPTEL_ALLOW_CI: "0"}, p=paths()
    ).enabled


def test_ci_false_is_not_ci(home: Path) -> None:
    consent.record(consent.GRANTED, p=paths())
    assert consent.decide("mytool", environ={"CI": "false"}, p=paths()).enabled


def test_kill_switches_are_read_on_every_call(home: Path) -> None:
    consent.record(consent.GRANTED, p=paths())
    environ: dict[str, str] = {}
    assert consent.decide("mytool", environ=environ, p=paths()).enabled
    environ[env.DO_NOT_TRACK] = "1"
    assert not consent.decide("mytool", environ=environ, p=paths()).enabled
    del environ[env.DO_NOT_TRACK]
    assert consent.decide("mytool", environ=environ, p=paths()).enabled


# -- scopes and policies ---------------------------------------------------------------


@pytest.mark.parametrize(
    "global_, app, policy, enabled, scope",
    [
        (None, None, "opt-in", False, ""),
        (None, None, "opt-out", False, ""),  # off until its notice reached a person
        ("notice", None, "opt-out", True, ""),
        ("granted", None, "opt-in", True, "global"),
        ("denied", None, "opt-out", False, "global"),
        ("granted", "denied", "opt-in", False, "app"),
        ("denied", "granted", "opt-in", True, "app"),
        (None, "denied", "opt-out", False, "app"),
        (None, "granted", "opt-in", True, "app"),
    ],
)
def test_the_tools_own_decision_wins_over_the_global_one(
    home: Path, global_: str | None, app: str | None, policy: str, enabled: bool, scope: str
) -> None:
    p = paths()
    if global_ == "notice":
        consent.note_notice("mytool", 1, p)
        global_ = None
    if global_:
        consent.record(global_, p=p)
    if app:
        consent.record(app, "mytool", p=p)
    d = consent.decide("mytool", policy, p=p)
    assert (d.enabled, d.scope) == (enabled, scope)
    assert d.reason.startswith("on:" if enabled else "off:")
    other = consent.decide("othertool", policy, p=p)  # untouched by mytool's decision
    assert other.scope == ("global" if global_ else "")


def test_a_global_refusal_withdraws_every_per_tool_grant_and_keeps_refusals(home: Path) -> None:
    p = paths()
    consent.record(consent.GRANTED, "alpha", p=p)
    consent.record(consent.DENIED, "beta", p=p)
    assert consent.record(consent.DENIED, p=p) == ["alpha"]  # what the message names
    assert not consent.decide("alpha", p=p).enabled  # "every tool" is true
    assert consent.decide("beta", p=p).scope == "app"  # its own refusal stands
    consent.record(consent.GRANTED, "alpha", p=p)  # a per-tool grant after it: that tool only
    assert consent.decide("alpha", p=p).enabled and not consent.decide("gamma", p=p).enabled
    consent.record(consent.GRANTED, p=p)  # a global grant leaves per-tool refusals standing
    assert consent.decide("gamma", p=p).enabled and not consent.decide("beta", p=p).enabled


def test_an_older_per_tool_grant_yields_to_a_newer_global_refusal(home: Path) -> None:
    """A record written by an older optel (the grant was never withdrawn)."""
    write(home, {"schema": 2, "global": {"decision": "denied", "time": 200},
                 "apps": {"t": {"decision": "granted", "time": 100}}})  # fmt: skip
    d = consent.decide("t", p=paths())
    assert (d.enabled, d.scope) == (False, "global")
    write(home, {"schema": 2, "global": {"decision": "denied", "time": 100},
                 "apps": {"t": {"decision": "granted", "time": 200}}})  # fmt: skip
    assert consent.decide("t", p=paths()).enabled


def test_app_names_compare_case_insensitively(home: Path) -> None:
    p = paths()
    consent.record(consent.GRANTED, "MyTool", p=p)
    assert consent.decide("mytool", p=p).enabled and consent.decide("MYTOOL", p=p).enabled
    consent.record(consent.DENIED, "mytool", p=p)
    assert not consent.decide("MyTool", p=p).enabled
    assert list(json.loads(Path(p.consent).read_text())["apps"]) == ["mytool"]
    # two spellings in a hand-edited file: the newer decision applies
    write(home, {"apps": {"T": {"decision": "granted", "time": 1},
                          "t": {"decision": "denied", "time": 2}}})  # fmt: skip
    assert consent.decide("t", p=paths()).consent == "denied"


# -- the record ----------------------------------------------------------------------------


def test_record_holds_schema_decision_time_source_and_notice_version(home: Path) -> None:
    p = paths()
    consent.record(consent.DENIED, source="cli", p=p)
    consent.record(consent.GRANTED, "mytool", source="prompt", p=p, notice_version=3)
    doc = json.loads(Path(p.consent).read_text())
    assert doc["schema"] == consent.SCHEMA
    entry = doc["apps"]["mytool"]
    assert entry["decision"] == "granted" and entry["source"] == "prompt"
    assert entry["notice_version"] == 3 and isinstance(entry["time"], int)
    assert doc["global"]["decision"] == "denied" and doc["global"]["source"] == "cli"
    assert stat.S_IMODE(os.stat(p.consent).st_mode) == 0o600
    d = consent.decide("mytool", p=p)
    assert (d.source, d.notice_version, d.time) == ("prompt", 3, entry["time"])


def test_record_rejects_unknown_decisions_and_sources(home: Path) -> None:
    with pytest.raises(ValueError):
        consent.record("maybe", p=paths())
    with pytest.raises(ValueError):
        consent.record(consent.GRANTED, source="guess", p=paths())


@pytest.mark.parametrize(
    "doc, app_decision, global_decision",
    [
        ({"schema": 1, "global": {"decision": "granted", "time": 1, "source": "cli"}, "apps": {}},
         None, "granted"),
        ({"global": True, "apps": {"mytool": False}}, "denied", "granted"),
        ({"global": "opt-in", "apps": {"mytool": "opt-out"}}, "denied", "granted"),
        ({"apps": {"mytool": {"consent": "yes"}}}, "granted", None),
        ({"schema": 99, "global": {"decision": "denied", "future": 1}, "apps": {}, "extra": [1]},
         None, "denied"),
    ],
)  # fmt: skip
def test_older_and_unknown_schemas_migrate_keeping_the_users_values(
    home: Path, doc: dict[str, Any], app_decision: str | None, global_decision: str | None
) -> None:
    write(home, doc)
    p = paths()
    d = consent.decide("mytool", p=p)
    assert d.consent == (app_decision or global_decision or "unset")
    consent.record(consent.GRANTED, "othertool", p=p)  # a write keeps everything else
    after = json.loads(Path(p.consent).read_text())
    assert after["schema"] == consent.SCHEMA
    assert (after["apps"].get("mytool") or {}).get("decision") == app_decision
    assert (after["global"] or {}).get("decision") == global_decision
    for key in set(doc) - {"schema", "global", "apps"}:
        assert after[key] == doc[key]  # unknown keys from a newer optel are kept
    assert not p.kept_aside()


def test_decide_parses_the_record_once_until_it_changes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = paths()
    consent.record(consent.GRANTED, "mytool", p=p)
    reads = []
    real = _fs.read_json
    monkeypatch.setattr(_fs, "read_json", lambda path: reads.append(path) or real(path))
    for _ in range(100):
        assert consent.decide("mytool", p=p).enabled
    assert len(reads) <= 1
    # another process writes (temp file + rename): seen on the next call
    doc = json.loads(Path(p.consent).read_text())
    doc["apps"]["mytool"]["decision"] = "denied"
    tmp = Path(p.config_dir) / "other.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, p.consent)
    assert not consent.decide("mytool", p=p).enabled
    assert len(reads) == 2


# -- failing closed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"apps": []}', '{"global": {"decision": "perhaps"}}', "\x00"]
)
def test_an_unusable_record_means_off_with_one_warning(
    home: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    write(home, text)
    p = paths()
    for policy in ("opt-in", "opt-out", "opt-out"):
        d = consent.decide("mytool", policy, p=p)
        assert not d.enabled and d.broken
        assert p.consent in d.reason and "optel opt-in" in d.reason
    err = capsys.readouterr().err
    assert err.count("optel:") == 1 and p.consent in err and "Traceback" not in err
    # a kill switch is the reason then, the broken file still counts
    d = consent.decide("mytool", "opt-out", environ={env.DO_NOT_TRACK: "1"}, p=p)
    assert d.reason == "off: DO_NOT_TRACK is set" and d.broken


def test_a_new_decision_keeps_the_corrupt_record_aside(home: Path) -> None:
    write(home, "{corrupt")
    p = paths()
    consent.record(consent.GRANTED, "mytool", p=p)
    aside = p.kept_aside()
    assert len(aside) == 1 and Path(aside[0]).read_text() == "{corrupt"
    assert consent.decide("mytool", p=p).enabled


def test_init_never_raises_for_a_corrupt_record(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(home, "{corrupt")
    t = optel.init(app="mytool", policy="opt-out")
    assert not t.enabled and "consent.json" in t.reason
    assert "Traceback" not in capsys.readouterr().err


def unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A state folder that cannot be created (works as root, unlike chmod)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(env.OPTEL_HOME, str(blocker / "optel"))
    return paths()


def test_unwritable_state_records_raise_oserror_and_init_stays_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    p = unwritable(tmp_path, monkeypatch)
    with pytest.raises(OSError):
        consent.record(consent.GRANTED, p=p)
    assert not consent.decide("mytool", "opt-in", p=p).enabled
    # opt-out policy, a person at the terminal: the notice cannot be recorded,
    # so nothing is sent
    err = FakeErr()
    monkeypatch.setattr("sys.stderr", err)
    t = optel.init(app="mytool", policy="opt-out")
    assert not t.enabled and "writable" in t.reason
    assert err.text.count("\n") == 1 and "Traceback" not in err.text


# -- the opt-out notice -------------------------------------------------------------------


def test_opt_out_notice_is_shown_once_and_again_for_a_newer_version(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = FakeErr()  # a terminal: a person reads it
    monkeypatch.setattr("sys.stderr", err)
    t = optel.init(app="mytool", policy="opt-out")
    assert t.enabled
    assert "optel opt-out --app mytool" in err.text and "DO_NOT_TRACK=1" in err.text
    t.shutdown()
    optel._active.clear()
    err.text = ""
    assert optel.init(app="mytool", policy="opt-out").enabled
    assert err.text == ""
    optel._active.clear()
    assert optel.init(app="mytool", policy="opt-out", notice_version=2).enabled
    assert "optel opt-out --app mytool" in err.text
    doc = json.loads(Path(paths().consent).read_text())
    assert doc["notices"]["mytool"]["notice_version"] == 2
    assert doc["notices"]["mytool"]["source"] == "notice"
    assert doc["apps"] == {} and doc["global"] is None  # a notice is not a decision


def test_a_notice_nobody_can_see_is_not_shown_and_nothing_is_sent(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = optel.init(app="mytool", policy="opt-out")  # pytest's stderr: not a terminal
    assert not t.enabled and "could not reach a person" in t.reason
    assert capsys.readouterr().err == "" and not home.exists()  # not printed, not recorded


def test_a_tool_words_its_notice_and_adds_a_link(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = FakeErr()
    monkeypatch.setattr("sys.stderr", err)
    text = "mytool counts which converters you use.\nNothing else."
    t = optel.init(app="mytool", policy="opt-out", notice_text=text,
                   notice_url="https://example.org/telemetry")  # fmt: skip
    assert t.enabled
    lines = err.text.splitlines()
    assert lines[:3] == ["optel: mytool counts which converters you use.", "optel: Nothing else.",
                         "optel: Details: https://example.org/telemetry"]  # fmt: skip
    assert "optel opt-out --app mytool" in lines[3]  # how to turn it off: always there


@pytest.mark.parametrize(
    "bad",
    [{"notice_text": 5}, {"notice_text": "x" * 1001},
     {"notice_text": "\n".join("x" * 11)}, {"notice_text": "red \x1b[31m alert"},
     {"notice_url": "ftp://example.org"}, {"notice_url": "https://a b"},
     {"notice_url": "https://" + "a" * 300}, {"notice_url": 1}],
)  # fmt: skip
def test_init_checks_the_notice_text_and_link(home: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        optel.init(app="mytool", policy="opt-out", **bad)


def test_no_notice_when_a_kill_switch_or_a_decision_applies(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env.DO_NOT_TRACK, "1")
    assert not optel.init(app="mytool", policy="opt-out").enabled
    assert capsys.readouterr().err == "" and not home.exists()
    monkeypatch.delenv(env.DO_NOT_TRACK)
    consent.record(consent.DENIED, "mytool", p=paths())
    assert not optel.init(app="mytool", policy="opt-out").enabled
    assert capsys.readouterr().err == ""


def test_init_checks_prompt_and_notice_version(home: Path) -> None:
    for bad in ({"prompt": "yes"}, {"notice_version": 0}, {"notice_version": True}):
        with pytest.raises(ValueError):
            optel.init(app="mytool", **bad)  # type: ignore[arg-type]


# -- the prompt -------------------------------------------------------------------------------


class FakeTerminal:
    """A terminal-looking stdin fed through a pipe (select() works on it)."""

    def __init__(self, typed: str | None):
        r, w = os.pipe()
        if typed is not None:
            os.write(w, typed.encode())
        self._w = w
        self._r = os.fdopen(r, "r")

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._r.fileno()

    def readline(self) -> str:
        return self._r.readline()

    def close(self) -> None:
        os.close(self._w)
        self._r.close()


class FakeErr:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make this process look like the terminal's foreground job."""
    monkeypatch.setattr(os, "tcgetpgrp", lambda fd: os.getpgrp(), raising=False)
    monkeypatch.delenv(consent.PARENT_ENV, raising=False)

    def make(typed: str | None) -> tuple[FakeTerminal, FakeErr]:
        stdin = FakeTerminal(typed)
        monkeypatch.setattr("sys.stdin", stdin)
        err = FakeErr()
        monkeypatch.setattr("sys.stderr", err)
        return stdin, err

    return make


@pytest.mark.parametrize("typed, expected", [("y\n", "granted"), ("YES\n", "granted"),
                                             ("n\n", "denied"), ("\n", "denied"),
                                             ("what\n", None), ("what\ny\n", "granted"),
                                             ("yes please\nno\n", "denied")])  # fmt: skip
def test_prompt_records_a_clear_answer_only(
    home: Path, terminal: Any, typed: str, expected: str | None
) -> None:
    stdin, err = terminal(typed)
    try:
        assert consent.ask("mytool", paths(), 1, timeout_s=2) == expected
    finally:
        stdin.close()
    d = consent.decide("mytool")
    assert d.consent == (expected or "unset")
    if expected:
        assert (d.scope, d.source, d.notice_version) == ("app", "prompt", 1)
    assert "mytool" in err.text and "[y/N]" in err.text  # Enter: the shown default, No
    assert (consent.AGAIN in err.text) == typed.startswith(("what", "yes please"))


def test_prompt_times_out_without_an_answer(home: Path, terminal: Any) -> None:
    import time

    stdin, err = terminal(None)
    start = time.monotonic()
    try:
        assert consent.ask("mytool", paths(), 1, timeout_s=0.3) is None
    finally:
        stdin.close()
    assert 0.25 < time.monotonic() - start < 2
    d = consent.decide("mytool")
    assert d.consent == "unset"  # no decision recorded
    assert "not asked again for 7 days" in err.text
    assert not consent.should_ask(d, 1, paths())  # but not asked again for 7 days
    doc = json.loads(Path(paths().consent).read_text())
    doc["asked"]["mytool"]["time"] -= consent.ASK_AGAIN_S + 1
    Path(paths().consent).write_text(json.dumps(doc))
    assert consent.should_ask(consent.decide("mytool"), 1, paths())  # a week later: again


def test_ctrl_c_at_the_prompt_exits_quietly_with_nothing_recorded(
    home: Path, terminal: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optel.consent import prompt

    def interrupted(self: Any, timeout_s: float) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(prompt._Lines, "read", interrupted)
    stdin, err = terminal(None)
    try:
        with pytest.raises(SystemExit) as exc:
            optel.init(app="mytool", prompt=True)
    finally:
        stdin.close()
    assert exc.value.code == 130 and "no decision recorded" in err.text
    d = consent.decide("mytool")
    assert d.consent == "unset" and not consent.should_ask(d, 1, paths())


def test_a_grant_at_the_init_prompt_enables_this_run(home: Path, terminal: Any) -> None:
    stdin, _ = terminal("y\n")
    try:
        t = optel.init(app="mytool", prompt=True)
    finally:
        stdin.close()
    assert t.enabled


def test_telemetry_ask_returns_an_enabled_telemetry_after_yes(home: Path, terminal: Any) -> None:
    t = optel.init(app="mytool", version="1.0")
    assert not t.enabled
    stdin, _ = terminal("yes\n")
    try:
        t2 = t.ask(timeout_s=2)
    finally:
        stdin.close()
    assert t2.enabled and t2.version == "1.0"


@pytest.mark.parametrize(
    "environ, modules",
    [
        ({"CI": "true", env.OPTEL_ALLOW_CI: "1"}, ()),
        ({}, ("ipykernel",)),
        ({"OPTEL_PARENT_PID": "1"}, ()),
    ],
)
def test_no_prompt_in_ci_notebooks_or_children(
    home: Path, terminal: Any, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str],
    modules: tuple[str, ...],
) -> None:  # fmt: skip
    import sys
    import types

    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, types.ModuleType(m))
    stdin, err = terminal("y\n")
    try:
        assert consent.why_not() is not None
        assert consent.ask("mytool", paths(), 1, timeout_s=2) is None
    finally:
        stdin.close()
    assert err.text == "" and not home.exists()


def test_no_prompt_without_a_terminal(home: Path) -> None:
    import time

    start = time.monotonic()
    t = optel.init(app="mytool", prompt=True)  # pytest's stdin is not a terminal
    assert not t.enabled and time.monotonic() - start < 1
    assert not home.exists()


def test_deciding_loads_only_the_rule_and_the_store(home: Path) -> None:
    """The prompt, the notice and the effect on disk load on first use: an
    ``init`` that only decides costs no more imports than it must."""
    from tests.conftest import run_python

    code = """
        import json, sys
        import optel
        t = optel.init(app="mytool")
        before = sorted(m for m in sys.modules if m.startswith("optel.consent"))
        from optel import consent
        assert consent.take_effect and consent.show_notice and consent.ask  # still public
        after = sorted(m for m in sys.modules if m.startswith("optel.consent"))
        print(json.dumps([t.enabled, before, after]))
        """
    r = run_python(code, home)
    assert r.returncode == 0, r.stderr
    enabled, before, after = json.loads(r.stdout)
    assert not enabled
    assert before == ["optel.consent", "optel.consent.rule", "optel.consent.store"]
    assert set(after) - set(before) == {
        "optel.consent.effect",
        "optel.consent.notice",
        "optel.consent.prompt",
    }


@pytest.mark.parametrize("command", ["opt-in", "opt-out"])
def test_cli_decision_in_an_unwritable_folder_is_one_line_and_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    from optel import cli

    unwritable(tmp_path, monkeypatch)
    assert cli.main([command, "--app", "mytool"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "cannot record the decision" in captured.err and "OPTEL_HOME" in captured.err
