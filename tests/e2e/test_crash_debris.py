"""A server killed with SIGKILL while it stores a large upload leaves a temporary file in
storage; a later start clears it once it is certainly dead (unlocked, and older than
pypirepo.metadata.rebuild.DEBRIS_AGE, since storage may be shared by several servers),
and leaves alone what is alive or not debris at all."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time

import pytest
import requests
from distfactory import make_wheel, upload_fields

from pypirepo.metadata.rebuild import DEBRIS_AGE

pytestmark = pytest.mark.e2e


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def kill_while_storing(server, wheel, project: str) -> None:
    """Post the wheel and SIGKILL the server the moment its distribution is being
    written into storage (its temporary file appears beside the target)."""
    folder = server.storage_dir / "packages" / project
    fields, data = upload_fields(wheel, project, "1.0"), wheel.read_bytes()
    answer: list = []

    def post():
        try:
            answer.append(requests.post(server.url + "/legacy/", auth=server.auth, data=fields,
                                        files={"content": (wheel.name, data)}, timeout=120))
        except requests.ConnectionError as exc:
            answer.append(exc)

    poster = threading.Thread(target=post)
    poster.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if any(n.startswith(".tmp-") for n in os.listdir(folder)):
                break
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    else:
        pytest.fail("the upload never reached storage")
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    poster.join()
    assert isinstance(answer[0], requests.ConnectionError), answer


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_start_clears_what_a_killed_upload_left(server, tmp_path):
    # fsync: the temporary file lives for as long as the disk takes, so the kill lands.
    server.app["storage.fsync"] = "true"
    server.start()
    wheel = make_wheel(tmp_path / "dists", "big", "1.0", payload_size=150 * 1024 * 1024)
    kill_while_storing(server, wheel, "big")
    root = server.storage_dir
    folder = root / "packages" / "big"
    debris = files_under(root)
    assert debris and all(name.startswith("packages/big/.tmp-") for name in debris), debris

    # Beside it: another server's write in progress (locked), an upstream .metadata
    # sidecar kept on its own, and a distribution whose upload died before its record.
    live = folder / ".tmp-another-server-writing"
    live.write_bytes(b"x")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    (root / "packages" / "up").mkdir()
    sidecar = root / "packages/up/up-1.0-py3-none-any.whl.metadata"
    sidecar.write_bytes(b"Name: up\n")
    orphan = root / "packages/gone/gone-1.0-py3-none-any.whl"
    orphan.parent.mkdir()
    orphan.write_bytes(b"cut short")
    orphan.with_name(orphan.name + ".metadata").write_bytes(b"Name: gone\n")
    try:
        # Seconds old, as after an immediate restart: nothing is certain yet.
        server.start()
        time.sleep(1)
        assert set(debris) <= set(files_under(root))
        assert "big" not in requests.get(server.url + "/simple/").text
        server.stop()

        old = time.time() - DEBRIS_AGE - 60
        for path in [root / d for d in debris] + [live, sidecar, orphan,
                                                  orphan.with_name(orphan.name + ".metadata")]:
            os.utime(path, (old, old))
        server.start()
        wait_for(lambda: files_under(root) == ["packages/big/.tmp-another-server-writing",
                                               "packages/up/up-1.0-py3-none-any.whl.metadata"])
        assert "removed" in server.log
    finally:
        os.close(holder)

    # The client's retry after the crash is an ordinary upload.
    server.upload(wheel, "big", "1.0")
    assert requests.get(f"{server.url}/packages/big/{wheel.name}").content == \
        wheel.read_bytes()
    assert "Traceback" not in server.log
