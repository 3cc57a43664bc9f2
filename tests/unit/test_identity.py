"""Anonymous identity: a random uuid4 client id, rotated on opt-out; a session id per process."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from optel import cli, identity
from optel.config import paths
from tests.conftest import run_python


def test_no_id_until_asked_then_one_stable_uuid4(home: Path) -> None:
    p = paths()
    assert identity.client_id(p, create=False) is None
    assert not home.exists()
    first = identity.client_id(p)
    assert first is not None and uuid.UUID(first).version == 4
    assert identity.client_id(p) == first == identity.client_id(p, create=False)
    assert stat.S_IMODE(os.stat(p.identity).st_mode) == 0o600


def test_the_id_is_random_not_derived_from_the_machine(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = paths()
    ids = set()
    for _ in range(5):
        ids.add(identity.client_id(p))
        identity.forget(p)
    assert len(ids) == 5
    node = f"{uuid.getnode():012x}"
    assert all(node not in i.replace("-", "") for i in ids if i)


@pytest.mark.parametrize(
    "stored",
    [
        '{"client_id": "' + str(uuid.uuid1()) + '"}',
        '{"client_id": "aa:bb:cc:dd:ee:ff"}',
        "{bad",
        "[]",
    ],
)
def test_a_stored_id_that_is_not_a_uuid4_is_replaced(home: Path, stored: str) -> None:
    home.mkdir()
    p = paths()
    Path(p.identity).write_text(stored)
    new = identity.client_id(p)
    assert new is not None and uuid.UUID(new).version == 4
    assert json.loads(Path(p.identity).read_text())["client_id"] == new


def test_opt_out_deletes_the_id_and_a_later_opt_in_gets_a_new_one(home: Path) -> None:
    p = paths()
    assert cli.main(["opt-in"]) == 0
    first = identity.client_id(p, create=False)
    assert first is not None
    assert cli.main(["opt-out"]) == 0
    assert identity.client_id(p, create=False) is None and not Path(p.identity).exists()
    assert cli.main(["opt-in", "--app", "mytool"]) == 0
    second = identity.client_id(p, create=False)
    assert second is not None and second != first and uuid.UUID(second).version == 4


def test_forget_without_an_id_is_fine(home: Path) -> None:
    identity.forget(paths())
    assert not home.exists()


FORKED_SESSION = """
import os
from optel import identity
parent = identity.session_id()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, identity.session_id().encode())
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
print(parent, os.read(r, 100).decode())
"""


def test_session_id_is_per_process_and_number_like(home: Path) -> None:
    a = identity.session_id()
    assert a == identity.session_id() and a.isdigit()
    # forked in an interpreter of its own: this one runs optel's threads from
    # other tests, and Python 3.12+ warns about forking a threaded process
    r = run_python(FORKED_SESSION, home)
    assert r.returncode == 0, r.stderr
    parent, child = r.stdout.split()
    assert parent.isdigit() and child.isdigit() and child != parent
