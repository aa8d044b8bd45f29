"""Several pserve processes sharing one database (auth.backend = sql): a change made
through one is what the others decide by within a second (RECHECK), without a restart."""

from __future__ import annotations

import pytest
import requests
from distfactory import make_wheel, upload_fields
from helpers import seconds_until
from servers import Server

from pypirepo.access.sql import RECHECK


@pytest.fixture
def two_servers(tmp_path, db_url):
    storage = tmp_path / "shared-storage"
    servers = []
    try:
        for name in ("a", "b"):
            srv = Server(tmp_path / name, app={
                "auth.backend": "sql", "sqlalchemy.url": db_url, "storage.dir": str(storage),
                "pypi.default_read": "authenticated", "pypi.default_write": "admin"})
            srv.directory.mkdir()
            servers.append(srv.start())
        yield servers
    finally:
        for srv in servers:
            srv.stop()


def upload(server, auth, name):
    wheel = make_wheel(server.directory / "dists", name, "1.0")
    return requests.post(f"{server.url}/legacy/", auth=auth,
                         data=upload_fields(wheel, name, "1.0"),
                         files={"content": (wheel.name, wheel.read_bytes())})


def test_a_change_through_one_process_holds_in_the_other_at_once(two_servers):
    a, b = two_servers
    bob = ("bob", "bobpw")
    assert requests.post(f"{a.url}/api/admin/users", auth=a.auth,
                         json={"name": "bob", "password": "bobpw"}).status_code == 201
    # B was asked before (its copy is warm): it follows within a second.
    assert seconds_until(lambda: requests.get(f"{b.url}/simple/", auth=bob).ok) \
        <= RECHECK + 0.5
    assert upload(b, bob, "bobs").status_code == 403
    grant = requests.post(f"{a.url}/api/admin/grants", auth=a.auth, json={
        "repository": "*", "permission": "upload", "principal": "bob"})
    assert grant.status_code == 201
    assert seconds_until(lambda: upload(b, bob, "bobs").status_code == 200) <= RECHECK + 0.5
    # And back: the grant revoked, the token revoked, the user removed through B.
    assert requests.delete(f"{b.url}/api/admin/grants/{grant.json()['id']}",
                           auth=b.auth).status_code == 204
    assert seconds_until(lambda: upload(a, bob, "bobs2").status_code == 403) <= RECHECK + 0.5
    token = requests.post(f"{a.url}/api/tokens", auth=bob, json={}).json()
    assert requests.get(f"{b.url}/simple/", auth=("__token__", token["token"])).ok
    assert requests.delete(f"{a.url}/api/tokens/{token['id']}", auth=bob).status_code == 204
    assert seconds_until(lambda: requests.get(
        f"{b.url}/simple/", auth=("__token__", token["token"])).status_code == 401) \
        <= RECHECK + 0.5
    assert requests.delete(f"{b.url}/api/admin/users/bob", auth=b.auth).status_code == 204
    assert seconds_until(lambda: requests.get(f"{a.url}/simple/", auth=bob).status_code
                         == 401) <= RECHECK + 0.5
    for srv in (a, b):
        assert "Traceback" not in srv.log
