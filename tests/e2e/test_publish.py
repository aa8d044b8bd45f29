"""Publishing with the real clients: twine, uv, poetry, pdm and hatch.

Each client gets its own project name on one shared server, so the tests stay independent.
A re-run of the same files must never fail; different bytes under a stored filename must
never replace it.
"""

from __future__ import annotations

import pytest

import distfactory
from clients import sha256, simple_files, start_server, tool

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("publish-server"))
    yield srv
    srv.stop()


def make_dists(directory, name, version="1.0", **wheel_kw):
    return [distfactory.make_wheel(directory, name, version, **wheel_kw),
            distfactory.make_sdist(directory, name, version)]


def rebuild_wheel(directory, name, version="1.0"):
    """Same filename as before, different bytes (as a rebuild with a code change gives)."""
    return distfactory.make_wheel(directory, name, version,
                                  module_source="REBUILT = True\n")


def hashes(paths):
    return {p.name: sha256(p) for p in paths}



def project_dir(tmp_path, pyproject: str):
    """A project folder holding just this pyproject.toml."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject)
    return project

def test_twine_upload_is_idempotent_and_refuses_changed_bytes(server, sandbox, tmp_path):
    twine = tool("twine")
    user, password = server.auth
    dists = make_dists(tmp_path / "dist", "twine-pkg")
    upload = [twine, "upload", "--non-interactive", "--disable-progress-bar",
              "--repository-url", f"{server.url}/legacy/", "-u", user, "-p", password]

    for _ in range(2):
        out = sandbox.run(upload + dists, timeout=60).stdout
        assert "Uploading twine_pkg-1.0-py3-none-any.whl" in out
    assert simple_files(server, "twine-pkg") == hashes(dists)

    changed = rebuild_wheel(tmp_path / "rebuilt", "twine-pkg")
    assert changed.name == dists[0].name and sha256(changed) != sha256(dists[0])
    proc = sandbox.run(upload + [changed], timeout=60, check=False)
    assert proc.returncode != 0
    assert "File already exists" in proc.stdout
    assert simple_files(server, "twine-pkg") == hashes(dists)

    # twine refuses any redirect, so the slash-less URL must take the upload itself.
    newer = distfactory.make_wheel(tmp_path / "newer", "twine-pkg", "1.1")
    no_slash = [a if a != f"{server.url}/legacy/" else f"{server.url}/legacy" for a in upload]
    sandbox.run(no_slash + [newer], timeout=60)
    assert simple_files(server, "twine-pkg") == hashes(dists + [newer])


def test_uv_publish_check_url_skips_and_catches_a_mismatch(server, sandbox, tmp_path):
    uv = tool("uv")
    user, password = server.auth
    dists = make_dists(tmp_path / "dist", "uv-pkg")
    publish = [uv, "publish", "--publish-url", f"{server.url}/legacy/",
               "--check-url", f"{server.url}/simple/", "-u", user, "-p", password]

    first = sandbox.run(publish + dists, timeout=60).stdout
    assert "Uploading uv_pkg-1.0-py3-none-any.whl" in first
    second = sandbox.run(publish + dists, timeout=60).stdout
    for path in dists:
        assert f"File {path.name} already exists, skipping" in second
    assert "Uploading" not in second
    assert simple_files(server, "uv-pkg") == hashes(dists)

    changed = rebuild_wheel(tmp_path / "rebuilt", "uv-pkg")
    proc = sandbox.run(publish + [changed], timeout=60, check=False)
    assert proc.returncode != 0
    assert "do not match" in proc.stdout and sha256(changed) in proc.stdout
    # The check fails before any byte is sent.
    assert "Uploading" not in proc.stdout
    assert simple_files(server, "uv-pkg") == hashes(dists)


def test_uv_publish_index_from_pyproject_skips_existing(server, sandbox, tmp_path):
    """`uv publish --index NAME` with a [[tool.uv.index]] entry in the project's pyproject:
    uploads go to its publish-url, and its url serves as the check URL."""
    uv = tool("uv")
    user, password = server.auth
    project = project_dir(tmp_path, (
        '[project]\nname = "uv-index-pkg"\nversion = "1.0"\n\n'
        '[[tool.uv.index]]\nname = "pypirepo"\n'
        f'url = "{server.url}/simple/"\npublish-url = "{server.url}/legacy/"\n'))
    dists = make_dists(project / "dist", "uv-index-pkg")
    publish = [uv, "publish", "--index", "pypirepo", "-u", user, "-p", password]
    # The sandbox sets UV_NO_CONFIG=1, under which uv ignores the project's pyproject.toml
    # ("No indexes were found"); the index has to come from there. The user config uv may
    # read now is the sandbox's own (empty) XDG_CONFIG_HOME.
    env = {"UV_NO_CONFIG": "0"}

    # No file arguments: uv takes dist/* of the project.
    first = sandbox.run(publish, cwd=project, env=env, timeout=60).stdout
    assert f"Publishing 2 files to {server.url}/legacy/" in first
    for path in dists:
        assert f"Uploading {path.name}" in first
    assert simple_files(server, "uv-index-pkg") == hashes(dists)

    # Only the check against the index url can tell uv to skip: our upload endpoint
    # answers identical bytes with a plain 200, after which uv would say "Uploading".
    second = sandbox.run(publish, cwd=project, env=env, timeout=60).stdout
    for path in dists:
        assert f"File {path.name} already exists, skipping" in second
    assert "Uploading" not in second
    assert simple_files(server, "uv-index-pkg") == hashes(dists)

    # Different bytes under the stored filename: the check URL catches it before the
    # upload, so the error is uv's hash mismatch; the server's "File already exists"
    # refusal is never reached.
    changed = rebuild_wheel(tmp_path / "rebuilt", "uv-index-pkg")
    assert changed.name == dists[0].name and sha256(changed) != sha256(dists[0])
    proc = sandbox.run(publish + [changed], cwd=project, env=env, timeout=60, check=False)
    assert proc.returncode != 0
    assert "do not match" in proc.stdout and sha256(changed) in proc.stdout
    assert "Uploading" not in proc.stdout
    assert simple_files(server, "uv-index-pkg") == hashes(dists)


def poetry_project(directory, name):
    directory.mkdir(parents=True)
    (directory / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0"\ndescription = "e2e"\n'
        'requires-python = ">=3.8"\n\n'
        '[build-system]\nrequires = ["poetry-core>=2.0"]\n'
        'build-backend = "poetry.core.masonry.api"\n'
    )
    return make_dists(directory / "dist", name)


def test_poetry_publish_skip_existing(server, sandbox, tmp_path):
    poetry = tool("poetry")
    user, password = server.auth
    project = tmp_path / "project"
    stored = hashes(poetry_project(project, "poetry-pkg"))
    sandbox.run([poetry, "config", "repositories.pypirepo", f"{server.url}/legacy/"])
    sandbox.run([poetry, "config", "http-basic.pypirepo", user, password])
    publish = [poetry, "publish", "-r", "pypirepo", "--skip-existing", "-n"]

    for _ in range(2):
        out = sandbox.run(publish, cwd=project, timeout=120).stdout
        assert "Publishing poetry-pkg (1.0) to pypirepo" in out
        assert "Error" not in out
    assert simple_files(server, "poetry-pkg") == stored

    # A conflicting file: skipped with the flag (poetry reads our 409), an error without.
    rebuild_wheel(project / "dist", "poetry-pkg")
    out = sandbox.run(publish, cwd=project, timeout=120).stdout
    assert "File exists. Skipping" in out
    proc = sandbox.run(publish[:-2] + ["-n"], cwd=project, timeout=120, check=False)
    assert proc.returncode != 0 and "File already exists" in proc.stdout
    assert simple_files(server, "poetry-pkg") == stored


def test_pdm_publish_skip_existing(server, sandbox, tmp_path):
    pdm = tool("pdm")
    user, password = server.auth
    project = project_dir(tmp_path, '[project]\nname = "pdm-pkg"\nversion = "1.0"\n')
    stored = hashes(make_dists(project / "dist", "pdm-pkg"))
    publish = [pdm, "publish", "--no-build", "-r", f"{server.url}/legacy/",
               "-u", user, "-P", password, "--skip-existing"]
    # Publishing needs no project venv; pdm would otherwise create one first.
    env = {"PDM_USE_VENV": "false"}

    for _ in range(2):
        out = sandbox.run(publish, cwd=project, env=env, timeout=120).stdout
        assert "Uploading pdm_pkg-1.0-py3-none-any.whl" in out
        assert "Skipping" not in out  # identical bytes are a plain 200
    assert simple_files(server, "pdm-pkg") == stored

    rebuild_wheel(project / "dist", "pdm-pkg")
    out = sandbox.run(publish, cwd=project, env=env, timeout=120).stdout
    assert "Skipping pdm_pkg-1.0-py3-none-any.whl because it appears to already exist" in out
    assert simple_files(server, "pdm-pkg") == stored


def test_hatch_publish_probes_plus_simple(server, sandbox, tmp_path):
    hatch = tool("hatch")
    user, password = server.auth
    project = project_dir(tmp_path, (
        '[project]\nname = "hatch-pkg"\nversion = "1.0"\n\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'))
    dists = make_dists(project / "dist", "hatch-pkg")
    publish = [hatch, "publish", "-r", f"{server.url}/legacy/", "-u", user, "-a", password,
               "-n"] + dists

    first = sandbox.run(publish, cwd=project, timeout=120).stdout
    assert f"{dists[0].name} ... success" in first
    # The second run learns from <upload-url>/+simple/hatch-pkg/ that both files are there.
    second = sandbox.run(publish, cwd=project, timeout=120).stdout
    for path in dists:
        assert f"{path.name} ... already exists" in second
    assert simple_files(server, "hatch-pkg") == hashes(dists)
