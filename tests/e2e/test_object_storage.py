"""twine and pip through a real pypirepo whose files live in S3, GCS or Azure Blob.

For each backend, on a local server of that kind (tests/emulators.py):

1. server A (storage.redirect = false) takes a twine upload of a wheel larger than one
   part (so the upload goes multipart / resumable / block by block) and an sdist, and
   pip installs the wheel with every byte streamed through pypirepo;
2. server B, with an empty database on the same bucket, rebuilds its index from the
   bucket at start-up, requires a login to read, and has storage.redirect = true: its
   index pages still show its own URLs, a download answers 302 to a URL signed for the
   store, and pip installs through that signed URL (our credentials stay with us).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import urlsplit

import pytest
import requests

import distfactory
from clients import sha256, start_server, tool, venv

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
BACKENDS = ["s3", "gcs", "azure"]


def pip_install(sandbox, python, index_url, *args):
    return sandbox.run([tool("pip"), "--python", python, "install", "--isolated",
                        "--no-cache-dir", "--only-binary", ":all:", "--index-url", index_url,
                        *args], timeout=180).stdout


def installed_version(sandbox, python, name):
    return sandbox.run([python, "-c", f"import importlib.metadata as m; "
                                      f"print(m.version({name!r}))"], timeout=30).stdout.strip()


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.xdist_group(k))
                                  for k in BACKENDS])
def test_twine_and_pip_through_object_storage(request, kind, sandbox, tmp_path):
    emulator = request.getfixturevalue(f"{kind}_server")
    bucket = emulator.create_bucket()
    store = emulator.settings(bucket, prefix="index-" + uuid.uuid4().hex[:6])
    name = f"objstore-{kind}"
    dists = [distfactory.make_wheel(tmp_path / "dist", name, "1.0", payload_size=12 * MiB),
             distfactory.make_sdist(tmp_path / "dist", name, "1.0")]

    # 1. Upload with twine and install with pip, streaming through pypirepo.
    a = start_server(tmp_path / "a", **store, **{"storage.redirect": "false"})
    try:
        user, password = a.auth
        out = sandbox.run([tool("twine"), "upload", "--non-interactive",
                           "--disable-progress-bar", "--repository-url", f"{a.url}/legacy/",
                           "-u", user, "-p", password, *dists], timeout=120).stdout
        assert f"Uploading {dists[0].name}" in out

        for dist in dists:
            res = requests.get(f"{a.url}/packages/{name}/{dist.name}", timeout=60,
                               allow_redirects=False)
            assert res.status_code == 200
            assert hashlib.sha256(res.content).hexdigest() == sha256(dist)
        python = venv(sandbox, sandbox.root / "venv-a")
        pip_install(sandbox, python, f"{a.url}/simple/", name)
        assert installed_version(sandbox, python, name) == "1.0"
    finally:
        a.stop()

    # The files, their metadata sidecar and records are in the bucket, under the prefix.
    check = emulator_storage(store)
    keys = {o.key for o in check.list("packages/")}
    for dist in dists:
        assert f"packages/{name}/{dist.name}" in keys
        assert f"packages/{name}/{dist.name}.json" in keys
        assert check.stat(f"packages/{name}/{dist.name}").size == dist.stat().st_size
    assert f"packages/{name}/{dists[0].name}.metadata" in keys

    # 2. A second server on the same bucket with an empty database, private reads, and
    #    downloads redirected to signed URLs.
    b = start_server(tmp_path / "b", **store,
                     **{"storage.redirect": "true", "pypi.default_read": "authenticated"})
    try:
        user, password = b.auth
        page = requests.get(f"{b.url}/simple/{name}/", auth=b.auth, timeout=10,
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert page.status_code == 200
        files = {f["filename"]: f for f in page.json()["files"]}
        assert set(files) == {d.name for d in dists}  # rebuilt from the bucket alone
        for dist in dists:
            # Index pages keep our stable URL; only the download itself redirects.
            url = requests.compat.urljoin(page.url, files[dist.name]["url"])
            assert url == f"{b.url}/packages/{name}/{dist.name}"
            assert files[dist.name]["hashes"]["sha256"] == sha256(dist)

        res = requests.get(f"{b.url}/packages/{name}/{dists[0].name}", auth=b.auth,
                           timeout=10, allow_redirects=False)
        assert res.status_code == 302
        signed = res.headers["Location"]
        assert urlsplit(signed).port == emulator.port
        assert "no-store" in res.headers["Cache-Control"]
        assert requests.get(f"{b.url}/packages/{name}/{dists[0].name}", timeout=10,
                            allow_redirects=False).status_code == 401
        direct = requests.get(signed, timeout=60)
        assert direct.status_code == 200
        assert hashlib.sha256(direct.content).hexdigest() == sha256(dists[0])

        # pip logs in to "localhost" and is sent to the store at 127.0.0.1: a different
        # host, so pip does not carry our credentials along the redirect.
        python = venv(sandbox, sandbox.root / "venv-b")
        index = f"http://{user}:{password}@localhost:{b.port}/simple/"
        out = pip_install(sandbox, python, index, "-vvv", name)
        assert installed_version(sandbox, python, name) == "1.0"
        # urllib3's debug lines: the wheel itself came from the store.
        assert re.search(rf"127\.0\.0\.1:{emulator.port} \"GET /\S+{re.escape(dists[0].name)}"
                         r"\?\S+ HTTP/1\.1\" 200", out.replace("%2B", "+")), out[-3000:]
    finally:
        b.stop()
    check.close()


def emulator_storage(settings: dict):
    from pypirepo.settings import Settings
    from pypirepo.storage import storage_from_settings

    return storage_from_settings(Settings(settings, environ={}))
