"""A state folder optel can trust, or refuses: links never followed, FIFOs never
opened blocking, sizes and depths bounded, folders others can write refused
(as ssh refuses them), wrongly typed settings ignored with one warning, a salt
that is not optel's replaced. Nothing here raises into the host or hangs.

The same attacks on real processes are in tests/integration/test_consent_trust.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

import optel
from optel import _fs, consent
from optel.anonymize import hashing
from optel.config import SETTINGS, paths, resolve

NESTED = "[" * 20_000 + "]" * 20_000  # about 40 KB; json.loads alone raises RecursionError


@pytest.fixture
def folder(home: Path) -> Path:
    home.mkdir(mode=0o700)
    return home


# -- reading ---------------------------------------------------------------------------


def test_a_link_is_never_followed_for_reading(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"global": {"decision": "granted"}}))
    (folder / "consent.json").symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        _fs.read_json(str(folder / "consent.json"))
    d = consent.decide("mytool", p=paths())
    assert not d.enabled and d.broken  # fail closed, never granted through a link


def test_a_fifo_is_refused_at_once(folder: Path) -> None:
    os.mkfifo(folder / "consent.json")
    start = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        _fs.read_json(str(folder / "consent.json"))
    assert time.monotonic() - start < 1
    assert not optel.init(app="mytool", policy="opt-out").enabled


def test_size_and_depth_are_bounded_without_recursion_errors(folder: Path) -> None:
    big = folder / "big.json"
    big.write_text('"' + "x" * (_fs.MAX_BYTES + 10) + '"')
    with pytest.raises(ValueError, match="larger"):
        _fs.read_json(str(big))
    deep = folder / "deep.json"
    for text in (NESTED, "[" * 40 + "]" * 40, '{"a":' * 40 + "1" + "}" * 40):
        deep.write_text(text)
        with pytest.raises(ValueError, match="nested too deeply"):
            _fs.read_json(str(deep))
    deep.write_text("[" * 10 + "]" * 10)
    assert _fs.read_json(str(deep)) is not None  # shallow nesting is fine


@pytest.mark.parametrize("name", ["consent.json", "settings.json", "salt.json", "identity.json"])
def test_nested_state_files_never_raise_into_the_host(
    folder: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / name).write_text(NESTED)
    consent.record(consent.GRANTED, p=paths()) if name != "consent.json" else None
    t = optel.init(app="mytool")
    assert resolve()["exit_budget_ms"] == 300
    assert optel.hashed("alice").startswith(("h:", "<hashed>"))
    t.shutdown()
    assert "RecursionError" not in capsys.readouterr().err


def test_the_lock_is_never_taken_through_a_dangling_link(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "created-through-the-link"
    (folder / ".lock").symlink_to(target)
    with pytest.raises(OSError):
        consent.record(consent.GRANTED, p=paths())
    assert not target.exists()


def test_a_lock_held_forever_gives_up_instead_of_hanging(folder: Path) -> None:
    lock = str(folder / ".lock")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        import fcntl

        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.set()
        release.wait(30)
        os.close(fd)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        held.wait(10)
        start = time.monotonic()
        with pytest.raises(OSError), _fs.file_lock(lock, wait_s=0.3):
            pass
        assert time.monotonic() - start < 3
    finally:
        release.set()
        thread.join()


def test_a_write_replaces_a_planted_link_and_never_writes_through_it(
    folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "victim.json"
    target.write_text("victim")
    (folder / "consent.json").symlink_to(target)
    consent.record(consent.GRANTED, p=paths())
    assert target.read_text() == "victim"
    assert not (folder / "consent.json").is_symlink()


# -- whose folder ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o1777])
def test_a_folder_others_can_write_is_refused_with_one_warning(
    folder: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    consent.record(consent.GRANTED, p=paths())
    (folder / "settings.json").write_text(json.dumps({"otlp_endpoint": "http://evil.example"}))
    os.chmod(folder, mode)
    t = optel.init(app="mytool")
    assert not t.enabled and "written by others" in t.reason
    assert resolve()["otlp_endpoint"] is None  # the planted redirection is not used
    with pytest.raises(OSError):
        consent.record(consent.GRANTED, p=paths())
    err = capsys.readouterr().err
    assert err.count("optel: telemetry is off") == 1 and "chmod go-w" in err


def test_a_folder_another_user_owns_is_refused(folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    consent.record(consent.GRANTED, p=paths())
    os.chown(folder, 65534, 65534)  # nobody
    t = optel.init(app="mytool")
    assert not t.enabled and "belongs to another user" in t.reason


# -- settings typing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [("destinations", None), ("destinations", 5), ("destinations", True),
     ("destinations", {"a": 1}), ("destinations", [1, 2]), ("exit_budget_ms", True),
     ("exit_budget_ms", None), ("exit_budget_ms", [1]), ("debug", 1), ("ga4_api_secret", {"a": 1}),
     ("ga4_measurement_id", 5), ("otlp_endpoint", ["http://x"]), ("prompt_timeout_s", {})],
)  # fmt: skip
def test_wrongly_typed_settings_are_one_warning_and_ignored(
    folder: Path, key: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "settings.json").write_text(json.dumps({key: value}))
    cfg = resolve()
    assert cfg[key] == SETTINGS[key].default and cfg.sources[key] == "default"
    resolve()
    err = capsys.readouterr().err
    assert err.count(f"ignoring setting {key}") == 1 and "expected" in err
    assert optel.init(app="mytool") is not None  # no TypeError into the host


def test_settings_command_survives_a_wrongly_typed_file(folder: Path) -> None:
    from tests.conftest import run_cli

    (folder / "settings.json").write_text(json.dumps({"destinations": None, "debug": "yes"}))
    r = run_cli("settings", home=folder)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in r.stdout.splitlines() if line}
    assert rows["debug"] == ["true", "settings"] and rows["destinations"] == ["-", "default"]


def test_correctly_typed_values_still_count(folder: Path) -> None:
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "destinations": ["otlp"],
                "exit_budget_ms": "200",
                "debug": False,
                "prompt_timeout_s": 2.5,
            }
        )  # fmt: skip
    )
    cfg = resolve()
    assert (cfg["destinations"], cfg["exit_budget_ms"], cfg["prompt_timeout_s"]) == (
        ("otlp",), 200, 2.5,
    )  # fmt: skip


# -- the salt -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "planted",
    [NESTED, '{"salt": "zz"}', '{"salt": "00"}', '{"salt": ' + json.dumps("A" * 64) + "}",
     '{"salt": ["x"]}', "[]", "\x00"],
)  # fmt: skip
def test_a_salt_optel_did_not_write_is_replaced_never_raised(folder: Path, planted: str) -> None:
    (folder / "salt.json").write_text(planted)
    first = hashing.hashed("alice")
    assert first.startswith("h:")
    stored = json.loads((folder / "salt.json").read_text())["salt"]
    assert len(stored) == 64 and stored != "A" * 64


def test_opt_out_rotates_the_salt_even_for_a_running_process(folder: Path) -> None:
    before = hashing.hashed("alice")
    assert before == hashing.hashed("alice")  # stable on this install
    consent.record(consent.DENIED, p=paths())
    consent.take_effect(consent.DENIED, None, paths())
    assert not (folder / "salt.json").exists()
    assert hashing.hashed("alice") != before  # a new salt: nothing links old and new values
