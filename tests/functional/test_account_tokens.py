"""The account page's API tokens: made, shown once, listed, revoked, and used, through the
token store the server keeps in its database (pypirepo.access.tokens)."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from helpers import csrf, login

from pypirepo.access.model import READ, UPLOAD, TokenScope
from pypirepo.interfaces import IAccess


@pytest.fixture
def site(make_app):
    app = make_app(**{"auth.session_secret": "s" * 40})
    app.extra_environ = {"REMOTE_ADDR": "10.0.0.1"}
    app.store = app.app.registry.getUtility(IAccess).tokens
    login(app)
    return app


def make_token(app, status=200, **fields):
    form = {"note": "ci", "permission": "upload", "repository": "*", "projects": "*",
            "expires": "90", **fields, "csrf_token": csrf(app)}
    return app.post("/account/tokens", form, status=status)


def test_make_a_token_see_it_once_list_and_revoke_it(site):
    assert "No tokens yet" in site.get("/account").text
    res = make_token(site, note="release job", projects="demo team-*")
    assert res.headers["Cache-Control"] == "no-store"
    secret = re.search(r"<code>(pypirepo_[^<]+)</code>", res.text).group(1)
    assert "shown only this once" in res.text
    assert f"TWINE_USERNAME=__token__ TWINE_PASSWORD={secret} twine upload" in res.text
    (info,) = site.store.listed("alice")
    assert info.scope.permissions == frozenset({READ, UPLOAD})
    assert info.scope.projects == ("demo", "team-*") and info.note == "release job"
    assert dt.timedelta(days=89) < info.expires - dt.datetime.utcnow() <= dt.timedelta(days=90)
    page = site.get("/account").text
    assert secret not in page  # never again
    assert f"<code>{info.prefix}…</code>" in page and "release job" in page
    assert "upload and read" in page and "every repository: demo, team-*" in page

    site.post(f"/account/tokens/{info.id}/revoke", {"csrf_token": csrf(site)}, status=303)
    assert site.store.listed("alice") == []
    assert "No tokens yet" in site.get("/account").text


def test_token_form_mistakes(site):
    res = make_token(site, status=400, projects="not a/pattern", repository="nowhere",
                     permission="admin", expires="forever", note="x" * 300)
    for field in ("projects", "repository", "permission", "expires", "note"):
        assert f'id="field-{field}-error"' in res.text, field
    assert 'value="not a/pattern"' in res.text  # the form keeps what was typed
    assert site.store.listed() == []


def test_never_expiring_read_token_for_one_repository(site):
    make_token(site, permission="read", repository="local", expires="never")
    (info,) = site.store.listed("alice")
    assert info.expires is None and info.scope.permissions == frozenset({READ})
    assert info.scope.repositories == frozenset({"local"})
    assert "<td data-label=\"Where\">local</td>" in site.get("/account").text


def test_only_ones_own_tokens_can_be_revoked(site):
    _secret, bobs = site.store.create("admin", TokenScope())
    site.post(f"/account/tokens/{bobs.id}/revoke", {"csrf_token": csrf(site)}, status=404)
    site.post("/account/tokens/99999999999999999999/revoke", {"csrf_token": csrf(site)},
              status=404)
    assert site.store.get(bobs.id).revoked is None


def test_a_token_cannot_manage_the_account(site):
    secret, _info = site.store.create("alice", TokenScope())
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"__token__:{secret}".encode()).decode()}
    fresh = type(site)(site.app, extra_environ=site.extra_environ)
    page = fresh.get("/account", headers=auth).text
    assert "You are signed in with an API token" in page
    res = fresh.post("/account/tokens", {"permission": "upload"}, headers=auth, status=403)
    assert "sign in with your password" in res.text
    fresh.post("/account/password", {"current_password": "alicepw"}, headers=auth,
               status=403)


def test_the_sign_in_form_takes_passwords_not_tokens(site):
    # A token signs tools in, within its scope; a browser session would have none.
    secret, _info = site.store.create("alice", TokenScope())
    fresh = type(site)(site.app, extra_environ=site.extra_environ)
    for user in ("__token__", "alice"):
        res = login(fresh, user, secret, status=200)
        assert "Invalid username or password." in res.text
