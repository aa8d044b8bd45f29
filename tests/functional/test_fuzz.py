"""Fuzzing every URL pattern and the upload form, in-process, on SQLite and PostgreSQL.

For each request: no 5xx (in-process, an exception reaching WebTest is a 500), nothing
logged at ERROR, and when the request is refused (4xx) nothing changed in storage or in
the database. The generators live in tests/fuzzing.py; the URLs no WSGI client can send
(raw bytes on the wire) are checked against a real server in tests/e2e/test_raw_urls.py.
Examples are derandomized, so the suite is repeatable; a failure prints the request.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid

import pytest
from fuzzing import ACCEPTS, BODIES, METHODS, QUERIES, RANGES, paths, upload_forms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import distfactory

from pypirepo.interfaces import IDatabase

ADMIN = "Basic " + base64.b64encode(b"admin:pw").decode()
AUTHS = st.sampled_from([None, ADMIN, "Basic " + base64.b64encode(b"admin:no").decode(),
                         "Basic !!", "Bearer x",
                         "Basic " + base64.b64encode(b"\xff:\xfe").decode()])
# Examples per test; PYPIREPO_FUZZ_SCALE=10 runs ten times as many, and
# PYPIREPO_FUZZ_RANDOM=1 other ones on each run (to explore; the suite stays repeatable).
SCALE = float(os.environ.get("PYPIREPO_FUZZ_SCALE", "1"))
RANDOM = bool(os.environ.get("PYPIREPO_FUZZ_RANDOM"))


def fuzz(sqlite: int, postgresql: int):
    """How many examples a fuzz body runs on each database (the fixture's param)."""
    def apply(fn):
        fn._examples = {"sqlite": sqlite, "postgresql": postgresql}
        return fn
    return apply


class ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzzed(request, tmp_path_factory):
    """A populated app (module-wide: Hypothesis runs many examples on one), with what
    the checks need: its storage folder, its engine, and the ERROR log records."""
    from webtest import TestApp

    from pypirepo import main

    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp}/db.sqlite"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database("f" + uuid.uuid4().hex[:12])
    app = TestApp(main({}, **{
        "sqlalchemy.url": url, "pypirepo.auto_migrate": "true",
        "pypirepo.reindex_on_start": "sync", "storage.dir": str(tmp / "storage"),
        "pypi.default_read": "everyone", "pypi.default_write": "authenticated",
        "auth.bootstrap_user": "admin", "auth.bootstrap_password": "pw",
    }))
    dists = []
    for make, name in ((distfactory.make_wheel, "demo"), (distfactory.make_sdist, "demo"),
                       (distfactory.make_wheel, "Demo_Pkg"), (distfactory.make_wheel, "other")):
        path = make(tmp / "dists", name, "1.0")
        dists.append((path, name, "1.0"))
        app.post("/legacy/", params=distfactory.upload_fields(path, name, "1.0"),
                 upload_files=[("content", path.name, path.read_bytes())],
                 headers={"Authorization": ADMIN})
    junk = tmp / "dists" / "demo-2.0-py3-none-any.whl"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    dists.append((junk, "demo", "2.0"))
    log = ErrorLog()
    logging.getLogger().addHandler(log)
    yield {"app": app, "kind": request.param, "storage": tmp / "storage", "dists": dists,
           "engine": app.app.registry.getUtility(IDatabase).engine, "log": log}
    logging.getLogger().removeHandler(log)


def state(fuzzed) -> tuple:
    """Everything a refused request must leave as it was."""
    root = fuzzed["storage"]
    stored = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                    for p in root.rglob("*") if p.is_file())
    with fuzzed["engine"].connect() as conn:
        rows = conn.execute(text("SELECT filename, sha256, yanked, yanked_reason FROM files "
                                 "ORDER BY filename")).all()
        serial = conn.execute(text("SELECT sum(serial) FROM repositories")).scalar()
        events = conn.execute(text("SELECT count(*) FROM events")).scalar()
    return stored, rows, serial, events


def check(fuzzed, request, describe: str):
    """Send a prepared request: never a 5xx or an ERROR line; a refusal changes nothing."""
    before = state(fuzzed)
    errors = len(fuzzed["log"].records)
    # Each request on its own, as a client sends it: no cookie kept from another (the
    # login form sets one, and WebTest would rebuild this request's URL to send it).
    fuzzed["app"].cookiejar.clear()
    res = fuzzed["app"].do_request(request, status="*", expect_errors=True)
    assert res.status_int < 500, f"{describe}: {res.status}"
    assert len(fuzzed["log"].records) == errors, \
        f"{describe}: logged {fuzzed['log'].records[-1].getMessage()}"
    if res.status_int >= 400:
        assert state(fuzzed) == before, f"{describe}: refused ({res.status}) but changed state"
    return res


def _examples(fn, fuzzed) -> int:
    return max(1, int(fn._examples[fuzzed["kind"]] * SCALE))


def _run(fuzzed, fn, strategy):
    """Run fn over strategy's examples, as many as fn asks for on this database."""
    @settings(max_examples=_examples(fn, fuzzed), deadline=None, database=None,
              derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example):
        fn(fuzzed, example)

    run()


@fuzz(sqlite=1500, postgresql=300)
def _one_url(fuzzed, case):
    method, path, query, auth, accept, range_, body = case
    request = fuzzed["app"].RequestClass.blank("/", method=method)
    request.environ["PATH_INFO"] = path.decode("latin-1")
    request.environ["QUERY_STRING"] = query.decode("latin-1")
    for header, value in (("Authorization", auth), ("Accept", accept), ("Range", range_)):
        if value is not None:
            request.environ["HTTP_" + header.upper()] = value
    if method in ("POST", "PUT", "DELETE") and body:
        request.body = body
        request.environ["CONTENT_TYPE"] = "application/json"
    check(fuzzed, request, f"{method} {path!r}?{query!r} auth={auth!r} accept={accept!r} "
                           f"range={range_!r} body={body[:40]!r}")


def _route_patterns(app) -> list[str]:
    from pyramid.interfaces import IRoutesMapper

    mapper = app.app.registry.getUtility(IRoutesMapper)
    return [route.pattern for route in mapper.get_routes()]


def test_every_url_pattern(fuzzed):
    patterns = _route_patterns(fuzzed["app"])  # every route, read from the router
    assert len(patterns) >= 15
    _run(fuzzed, _one_url, st.tuples(METHODS, paths(patterns), QUERIES, AUTHS, ACCEPTS,
                                     RANGES, BODIES))


@fuzz(sqlite=900, postgresql=200)
def _one_upload(fuzzed, case):
    (body, ctype), auth = case
    request = fuzzed["app"].RequestClass.blank("/legacy/", method="POST", body=body)
    request.environ["CONTENT_TYPE"] = ctype
    if auth:
        request.environ["HTTP_AUTHORIZATION"] = auth
    res = check(fuzzed, request, f"upload {ctype!r} {body[:3000]!r}")
    if res.status_int >= 400:
        assert res.status.split(" ", 1)[1].strip(), "a refusal says why"


def test_the_upload_form(fuzzed):
    _run(fuzzed, _one_upload, st.tuples(upload_forms(fuzzed["dists"]),
                                        st.sampled_from([ADMIN, ADMIN, ADMIN, None])))
