"""pip, uv and poetry installing through a real pypirepo process in every fallback mode,
against a real upstream index on loopback (tests/upstream_server.py).

Also: an outage after a warm cache still installs; a file whose bytes disagree with the
upstream's advertised hash fails the install loudly and is never stored; ten parallel
first downloads make one upstream fetch; a large wheel passes with flat memory; a client
that goes away mid-download leaves no partial file in storage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import tomllib
from pathlib import Path

import pytest
import requests
from upstream_server import UpstreamIndex, UpstreamServer

import distfactory
from clients import installed, start_server, tool, venv

pytestmark = pytest.mark.e2e

# Size of the large-file test's wheel; set PYPIREPO_TEST_LARGE_MB=3000 for a multi-GB run.
LARGE_MB = int(os.environ.get("PYPIREPO_TEST_LARGE_MB", "1100"))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("fb-upstream"))
    index.add("fb-app", "1.0", requires_dist=["fb-lib>=1.0"])
    index.add("fb-lib", "1.0")
    index.add("fb-lib", "1.1")
    index.add("fb-private", "50.0")  # the public look-alike of our private project
    index.add("fb-bad", "1.0", sdist=False)
    index.add("fb-par", "1.0", sdist=False, payload_size=4 * 1024 * 1024)
    server = UpstreamServer(index).start()
    yield server
    server.stop()


def _server(directory: Path, upstream, mode: str, **extra):
    settings = {
        "pypi.fallback": mode,
        "pypi.fallback_url": upstream.simple_url,
        "pypi.cache_update": "everyone",
        "pypi.upstream_connect_timeout": "1",
        "pypi.upstream_read_timeout": "5",
        "pypi.upstream_retries": "0",
        "pypi.upstream_spool_dir": str(directory / "spool"),
    }
    settings.update(extra)
    srv = start_server(directory, **settings)
    try:
        private = distfactory.make_wheel(directory / "dists", "fb-private", "1.0")
        srv.upload(private, "fb-private", "1.0", timeout=30)
    except BaseException:
        srv.stop()  # no fixture owns it yet
        raise
    return srv


@pytest.fixture(scope="module")
def servers(tmp_path_factory, upstream):
    started = {}

    def get(mode):
        if mode not in started:
            started[mode] = _server(tmp_path_factory.mktemp(f"fb-{mode}"), upstream, mode)
        return started[mode]

    yield get
    for srv in started.values():
        srv.stop()


def stored_upstream_files(srv) -> dict[str, str]:
    """filename -> origin of every record in the server's storage."""
    out = {}
    for path in srv.storage_dir.glob("packages/*/*.json"):
        record = json.loads(path.read_text())
        out[record["filename"]] = record["origin"]
    return out


def pip_install(sandbox, python, srv, *args, check=True):
    return sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                        "--no-cache-dir", "--index-url", f"{srv.url}/simple/", *args],
                       timeout=180, check=check)


def uv_install(sandbox, python, srv, *args, check=True):
    return sandbox.run([tool("uv"), "pip", "install", "--no-cache", "--python", python,
                        "--index-url", f"{srv.url}/simple/", *args], timeout=180, check=check)


WANT = {"fb-app": "1.0", "fb-lib": "1.1", "fb-private": "1.0"}


def check_mode(srv, mode, result, sandbox, python):
    if mode == "none":
        assert result.returncode != 0
        assert "fb-app" in result.stdout
        return
    assert result.returncode == 0, result.stdout
    # Our fb-private 1.0, never the upstream's 50.0 (private wins).
    assert installed(sandbox, python) == WANT
    if mode == "cache":
        _settle(srv)  # files are stored once the client's install is over
    origins = stored_upstream_files(srv)
    assert origins["fb_private-1.0-py3-none-any.whl"] == "private"
    if mode == "cache":
        assert origins["fb_app-1.0-py3-none-any.whl"] == "upstream"
        assert origins["fb_lib-1.1-py3-none-any.whl"] == "upstream"
    else:
        assert set(origins) == {"fb_private-1.0-py3-none-any.whl"}
    assert "fb_private-50.0-py3-none-any.whl" not in origins


@pytest.mark.parametrize("mode", ["none", "redirect", "cache"])
def test_pip(servers, up, sandbox, mode):
    srv = servers(mode)
    python = venv(sandbox, sandbox.root / "venv")
    result = pip_install(sandbox, python, srv, "fb-app", "fb-private", check=False)
    check_mode(srv, mode, result, sandbox, python)
    if mode == "none":
        pip_install(sandbox, python, srv, "fb-private")
        assert installed(sandbox, python) == {"fb-private": "1.0"}
    assert up.page_requests("fb-private") == 0


@pytest.mark.parametrize("mode", ["none", "redirect", "cache"])
def test_uv(servers, up, sandbox, mode):
    srv = servers(mode)
    python = venv(sandbox, sandbox.root / "venv")
    result = uv_install(sandbox, python, srv, "fb-app", "fb-private", check=False)
    check_mode(srv, mode, result, sandbox, python)
    assert up.page_requests("fb-private") == 0


@pytest.mark.parametrize("mode", ["none", "redirect", "cache"])
def test_poetry(servers, up, sandbox, tmp_path, mode):
    srv = servers(mode)
    poetry = tool("poetry")
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["fb-app", "fb-private"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "pypirepo"\nurl = "{srv.url}/simple/"\n'
        'priority = "primary"\n'
    )
    env = {"POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true"}
    lock = sandbox.run([poetry, "lock"], cwd=project, env=env, timeout=240, check=False)
    if mode == "none":
        assert lock.returncode != 0 and "fb-app" in lock.stdout
        return
    assert lock.returncode == 0, lock.stdout
    sandbox.run([poetry, "install"], cwd=project, env=env, timeout=240)
    python = project / ".venv" / "bin" / "python"
    assert installed(sandbox, python) == WANT
    packages = {p["name"]: p for p in tomllib.loads((project / "poetry.lock").read_text())
                ["package"]}
    assert packages["fb-private"]["version"] == "1.0"
    wheel = up.index.file("fb-lib", distfactory.wheel_name("fb-lib", "1.1"))
    hashes = {f["file"]: f["hash"] for f in packages["fb-lib"]["files"]}
    assert hashes[wheel.filename] == "sha256:" + wheel.sha256


# --- outages, mismatches, concurrency, size ----------------------------------------------------

def test_outage_after_a_warm_cache_still_installs(tmp_path, up, sandbox):
    # TTL 0: every page request revalidates, so the outage is met on the stale path.
    srv = _server(tmp_path / "srv", up, "cache", **{"pypi.upstream_ttl": "0"})
    try:
        python = venv(sandbox, sandbox.root / "warm")
        pip_install(sandbox, python, srv, "fb-app")
        _settle(srv)
        up.down()
        python = venv(sandbox, sandbox.root / "cold-client")
        pip_install(sandbox, python, srv, "fb-app")
        assert installed(sandbox, python) == {"fb-app": "1.0", "fb-lib": "1.1"}
        python = venv(sandbox, sandbox.root / "uv-client")
        uv_install(sandbox, python, srv, "fb-app")
        assert installed(sandbox, python) == {"fb-app": "1.0", "fb-lib": "1.1"}
        assert "serving the stale upstream page" in srv.log
        # A project never seen: the client is told the upstream is the problem.
        res = requests.get(f"{srv.url}/simple/fb-par/", timeout=30)
        assert res.status_code == 502 and "upstream" in res.text
    finally:
        srv.stop()


def _settle(srv, timeout=30.0):
    """Wait until no fetch is in flight (its spool file is gone)."""
    deadline = time.monotonic() + timeout
    spool = srv.directory / "spool"
    while time.monotonic() < deadline:
        if not any(spool.glob("pypirepo-fetch-*")):
            return
        time.sleep(0.05)
    raise AssertionError("a fetch never finished")


def test_hash_mismatch_fails_loudly(servers, up, sandbox):
    srv = servers("cache")
    wheel = up.index.projects["fb-bad"][0]
    up.control(corrupt=[wheel.filename])
    python = venv(sandbox, sandbox.root / "venv")
    result = pip_install(sandbox, python, srv, "fb-bad", check=False)
    assert result.returncode != 0
    assert "502" in result.stdout
    result = sandbox.run([tool("uv"), "pip", "install", "--no-cache", "--python", python,
                          "--index-url", f"{srv.url}/simple/", "fb-bad"],
                         env={"UV_HTTP_RETRIES": "0"}, timeout=120, check=False)
    assert result.returncode != 0
    assert "does not match the sha256 its index advertises" in result.stdout
    assert installed(sandbox, python) == {}
    # The clients' retries met the remembered failure, not a new fetch each.
    assert up.file_requests(wheel.filename) == 1
    _settle(srv)
    assert not list(srv.storage_dir.glob("packages/fb-bad/*.whl"))
    assert "hash mismatch for upstream file" in srv.log


def test_ten_parallel_first_downloads_fetch_once(servers, up):
    srv = servers("cache")
    wheel = up.index.projects["fb-par"][0]
    up.control(chunk_delay=0.01)  # ~0.6 s in flight: every request joins the same fetch
    url = f"{srv.url}/packages/fb-par/{wheel.filename}"
    pages = [None] * 10
    digests = [None] * 10

    def page(i):
        pages[i] = requests.get(f"{srv.url}/simple/fb-par/", timeout=60).status_code

    def download(i):
        with requests.get(url, timeout=60, stream=True) as res:
            h = hashlib.sha256()
            for chunk in res.iter_content(65536):
                h.update(chunk)
            digests[i] = (res.status_code, h.hexdigest())

    for target in (page, download):
        threads = [threading.Thread(target=target, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert pages == [200] * 10
    assert up.page_requests("fb-par") == 1
    assert digests == [(200, wheel.sha256)] * 10
    assert up.file_requests(wheel.filename) == 1
    _settle(srv)
    assert hashlib.sha256((srv.storage_dir / "packages/fb-par" / wheel.filename)
                          .read_bytes()).hexdigest() == wheel.sha256


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_file_flat_memory_and_disconnect(tmp_path, up):
    big = up.index.add("fb-big", "1.0", sdist=False, payload_size=LARGE_MB * 1024 * 1024)[0]
    # Bigger than pypi.upstream_max_file_size's default (a GiB, like an upload's limit).
    srv = _server(tmp_path / "srv", up, "cache",
                  **{"pypi.upstream_max_file_size": f"{LARGE_MB + 1}MiB"})
    try:
        url = f"{srv.url}/packages/fb-big/{big.filename}"
        requests.get(f"{srv.url}/simple/fb-big/", timeout=30).raise_for_status()
        before = _peak_rss_kib(srv.proc.pid)
        # A client that goes away early: while the fetch runs, storage has nothing of it.
        up.control(chunk_delay=0.002)
        with requests.get(url, timeout=60, stream=True) as res:
            assert res.status_code == 200
            next(res.iter_content(1 << 20))
        time.sleep(0.5)
        assert not list(srv.storage_dir.glob("packages/fb-big/*"))
        up.control(chunk_delay=0)
        _settle(srv, timeout=600)
        # The fetch finished for the next client: stored whole and verified, or not at all.
        kept = list(srv.storage_dir.glob("packages/fb-big/*.whl"))
        assert [p.stat().st_size for p in kept] in ([], [big.size])
        h = hashlib.sha256()
        with requests.get(url, timeout=600, stream=True) as res:
            for chunk in res.iter_content(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == big.sha256
        grown_mib = (_peak_rss_kib(srv.proc.pid) - before) / 1024
        assert grown_mib < 64, f"the server grew by {grown_mib:.0f} MiB for a {LARGE_MB} MiB file"
    finally:
        srv.stop()
        # pytest keeps the last runs' temporary folders: not with a GiB each in them.
        big.path.unlink()
        shutil.rmtree(srv.storage_dir / "packages" / "fb-big", ignore_errors=True)
