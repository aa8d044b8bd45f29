"""Several named repositories on one server, driven by real clients (issue: repositories).

hosted `dev` and `release`, a proxy `pypi` of the loopback upstream, group `all` =
release + pypi and group `dev-all` = dev + release + pypi. twine publishes a pre-release
to dev; pip through dev-all installs it while all does not see it; the final release is
promoted from dev to release and installed through all by pip, uv and poetry; a name held
in release shadows the upstream's in both groups; the same filename in dev and release is
served from each with its own bytes.
"""

from __future__ import annotations

import hashlib

import pytest
import requests
from upstream_server import UpstreamIndex, UpstreamServer

import distfactory
from clients import installed, start_server, tool, venv

pytestmark = pytest.mark.e2e

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    index = UpstreamIndex(tmp_path_factory.mktemp("rp-upstream"))
    index.add("rp-lib", "1.0")
    index.add("rp-shadow", "9.0")  # a public look-alike of a name release holds
    server = UpstreamServer(index).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    directory = tmp_path_factory.mktemp("rp-server")
    srv = start_server(directory, **{
        "repositories": "dev release pypi all dev-all",
        "repository.dev.kind": "hosted",
        "repository.release.kind": "hosted",
        "repository.pypi.kind": "proxy",
        "repository.pypi.mode": "cache",
        "repository.pypi.url": upstream.simple_url,
        "repository.pypi.cache_update": "everyone",
        "repository.pypi.upstream_retries": "0",
        "repository.pypi.upstream_spool_dir": str(directory / "spool"),
        "repository.all.kind": "group",
        "repository.all.members": "release pypi",
        "repository.dev-all.kind": "group",
        "repository.dev-all.members": "dev release pypi",
        "repository.dev-all.upload_to": "dev",
        "pypirepo.default_repository": "all",
    })
    srv.dists = directory / "dists"
    yield srv
    srv.stop()


def twine_upload(sandbox, srv, repo: str, *paths):
    user, password = srv.auth
    sandbox.run([tool("twine"), "upload", "--non-interactive", "--disable-progress-bar",
                 "--repository-url", f"{srv.url}/r/{repo}/legacy/", "-u", user, "-p",
                 password, *paths], timeout=120)


def files_of(srv, repo: str, project: str) -> dict[str, str]:
    res = requests.get(f"{srv.url}/r/{repo}/simple/{project}/", headers=JSON, timeout=10)
    if res.status_code == 404:
        return {}
    res.raise_for_status()
    return {f["filename"]: f["url"] for f in res.json()["files"]}


def pip_install(sandbox, python, index_url, *args):
    return sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                        "--no-cache-dir", "--index-url", index_url, *args], timeout=180)


def test_repositories_are_listed(server):
    res = requests.get(f"{server.url}/api/repositories", timeout=10)
    assert res.status_code == 200
    repos = {r["name"]: r for r in res.json()["repositories"]}
    assert {n: r["kind"] for n, r in repos.items()} == {
        "dev": "hosted", "release": "hosted", "pypi": "proxy", "all": "group",
        "dev-all": "group"}
    assert repos["all"]["members"] == ["release", "pypi"]
    assert repos["dev"]["simple_url"] == f"{server.url}/r/dev/simple/"
    assert repos["dev"]["upload_url"] == f"{server.url}/r/dev/legacy/"
    assert "upload_url" not in repos["pypi"]
    assert repos["all"]["default"] is True


def test_stage_and_promote_with_real_clients(server, sandbox, tmp_path):
    dev1 = distfactory.make_wheel(server.dists, "rp-app", "1.0.dev1",
                                  requires_dist=["rp-lib>=1.0"])
    final = distfactory.make_wheel(server.dists, "rp-app", "1.0", requires_dist=["rp-lib>=1.0"])
    twine_upload(sandbox, server, "dev", dev1, final)

    # dev-all sees the pre-release; all does not know the project at all.
    python = venv(sandbox, sandbox.root / "pre")
    pip_install(sandbox, python, f"{server.url}/r/dev-all/simple/", "--pre", "rp-app==1.0.dev1")
    assert installed(sandbox, python) == {"rp-app": "1.0.dev1", "rp-lib": "1.0"}
    assert files_of(server, "all", "rp-app") == {}
    assert requests.get(f"{server.url}/simple/rp-app/", timeout=10).status_code == 404

    # Files in a group's page point at the group's own URLs.
    urls = files_of(server, "dev-all", "rp-app")
    assert all(u.startswith("/r/dev-all/packages/rp-app/") for u in urls.values()), urls

    res = requests.post(f"{server.url}/api/r/dev/projects/rp-app/versions/1.0/promote",
                        json={"to": "release"}, auth=server.auth, timeout=30)
    assert res.status_code == 200, res.text
    assert res.json()["files"] == [final.name]
    assert set(files_of(server, "release", "rp-app")) == {final.name}
    assert set(files_of(server, "dev", "rp-app")) == {dev1.name, final.name}  # a copy

    # The promoted file keeps its upload time and uploader; both sides record the promote.
    release_json = requests.get(f"{server.url}/r/release/pypi/rp-app/json", timeout=10).json()
    dev_json = requests.get(f"{server.url}/r/dev/pypi/rp-app/1.0/json", timeout=10).json()
    assert release_json["urls"][0]["upload_time_iso_8601"] == \
        dev_json["urls"][0]["upload_time_iso_8601"]
    for repo in ("dev", "release"):
        events = requests.get(f"{server.url}/api/r/{repo}/projects/rp-app/events",
                              timeout=10).json()["events"]
        assert any(e["action"] == "promote" and e["user"] == "admin" for e in events), events

    # pip, uv and poetry through the group `all` (also the default at /simple/).
    python = venv(sandbox, sandbox.root / "pip")
    pip_install(sandbox, python, f"{server.url}/r/all/simple/", "rp-app")
    assert installed(sandbox, python) == {"rp-app": "1.0", "rp-lib": "1.0"}

    python = venv(sandbox, sandbox.root / "uv")
    sandbox.run([tool("uv"), "pip", "install", "--no-cache", "--python", python,
                 "--index-url", f"{server.url}/r/all/simple/", "rp-app"], timeout=180)
    assert installed(sandbox, python) == {"rp-app": "1.0", "rp-lib": "1.0"}

    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["rp-app"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "pypirepo"\nurl = "{server.url}/r/all/simple/"\n'
        'priority = "primary"\n')
    env = {"POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true"}
    sandbox.run([tool("poetry"), "lock"], cwd=project, env=env, timeout=240)
    sandbox.run([tool("poetry"), "install"], cwd=project, env=env, timeout=240)
    assert installed(sandbox, project / ".venv" / "bin" / "python") == \
        {"rp-app": "1.0", "rp-lib": "1.0"}


def test_a_release_name_shadows_the_upstream_in_both_groups(server, sandbox):
    wheel = distfactory.make_wheel(server.dists, "rp-shadow", "1.0")
    twine_upload(sandbox, server, "release", wheel)
    for group in ("all", "dev-all"):
        assert set(files_of(server, group, "rp-shadow")) == {wheel.name}, group
    # The proxy alone still answers with the upstream's files.
    assert distfactory.wheel_name("rp-shadow", "9.0") in files_of(server, "pypi", "rp-shadow")
    python = venv(sandbox, sandbox.root / "shadow")
    pip_install(sandbox, python, f"{server.url}/simple/", "rp-shadow")
    assert installed(sandbox, python) == {"rp-shadow": "1.0"}


def test_the_same_filename_in_two_repositories_is_served_from_each(server, sandbox):
    # Two different builds under one name: each repository keeps and serves its own bytes.
    dev_build = distfactory.make_wheel(server.dists / "a", "rp-twin", "1.0",
                                       payload_size=1000)
    release_build = distfactory.make_wheel(server.dists / "b", "rp-twin", "1.0",
                                           payload_size=2000)
    assert dev_build.name == release_build.name
    twine_upload(sandbox, server, "dev", dev_build)
    twine_upload(sandbox, server, "release", release_build)
    for repo, build in (("dev", dev_build), ("release", release_build)):
        res = requests.get(f"{server.url}/r/{repo}/packages/rp-twin/{build.name}", timeout=10)
        assert res.status_code == 200
        assert hashlib.sha256(res.content).hexdigest() == \
            hashlib.sha256(build.read_bytes()).hexdigest()
    # dev-all answers from dev, its first member holding the project.
    res = requests.get(f"{server.url}/r/dev-all/packages/rp-twin/{dev_build.name}", timeout=10)
    assert res.content == dev_build.read_bytes()
    # Uploading to a group goes to the hosted member it names.
    other = distfactory.make_wheel(server.dists, "rp-group-upload", "1.0")
    twine_upload(sandbox, server, "dev-all", other)
    assert set(files_of(server, "dev", "rp-group-upload")) == {other.name}
    assert files_of(server, "release", "rp-group-upload") == {}
