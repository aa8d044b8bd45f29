"""Cache mode against an upstream that misbehaves on purpose (issue 9, item 9).

The upstream is tests/hostile_upstream.py: a raw-socket server scripted per case. What is
checked, beside the answer: memory (the server process's peak RSS) and disk (the spool
folder) stay within the configured caps, nothing half-checked is stored, the log carries
one line per problem and no traceback, and waiting on the upstream never starves what is
held here (a real pserve with real concurrent clients).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from distfactory import make_wheel, metadata_text
from helpers import fallback_apps, proxy_repo, storage, upload
from hostile_upstream import (
    JSON_TYPE,
    Answer,
    HostileUpstream,
    entry,
    gzip_bomb,
    page,
    sha256,
    zeros,
)
from servers import Server, wait_until

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
MB = 1000 * 1000


@pytest.fixture(scope="module")
def upstream():
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def hostile(upstream):
    upstream.scripts.clear()
    upstream.asked.clear()
    upstream.sent.clear()
    yield upstream
    upstream.scripts.clear()  # stalled answers see their path gone and their client go
    upstream.idle(5)


@pytest.fixture
def make(make_app, hostile, tmp_path):
    spool = tmp_path / "spool"
    with fallback_apps(make_app, pypi__fallback="cache", pypi__cache_update="everyone",
                       pypi__fallback_url=hostile.simple_url.replace("//", "//up:sekrit@"),
                       pypi__upstream_retries="0", pypi__upstream_connect_timeout="2",
                       pypi__upstream_read_timeout="2",
                       pypi__upstream_spool_dir=str(spool)) as build:
        yield build


def stored(app) -> set[str]:
    return {o.key for o in storage(app).list("")}


def flush(app) -> None:
    fallback = proxy_repo(app)
    fallback.fetcher.flush()
    fallback.pages.flush()


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], \
        [r.getMessage() for r in caplog.records if r.exc_info]


def wheel_bytes(tmp_path: Path, name: str, version: str, **kw) -> tuple[str, bytes]:
    path = make_wheel(tmp_path / f"w{len(list(tmp_path.glob('w*')))}", name, version, **kw)
    return path.name, path.read_bytes()


def listed(app, project: str) -> dict:
    return {f["filename"]: f for f in app.get(f"/simple/{project}/", headers=JSON).json["files"]}


# --- 500s from malformed pages -------------------------------------------------------------------

def _nested(depth: int) -> bytes:
    return b'{"meta": {"api-version": "1.1"}, "files": [' + b"[" * depth + b"]" * depth + b"]}"


BAD_PAGES = {
    "files is not a list": b'{"meta": {"api-version": "1.1"}, "name": "m", "files": 7}',
    "files is an object": b'{"meta": {"api-version": "1.1"}, "files": {"a": 1}}',
    "not an object": b'[1, 2]',
    "deeply nested": _nested(200_000),
    "nested in another key": b'{"meta": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "cut short": b'{"meta": {"api-version": "1.1"}, "files": [{"filename": "m-1.0.tar',
    "not UTF-8": b'{"files": ["\xff\xfe"]}',
}


@pytest.mark.parametrize("case", BAD_PAGES)
def test_a_bad_page_is_a_502_naming_the_upstream(make, hostile, case, caplog):
    hostile.script("/simple/malformed/", page(raw=BAD_PAGES[case]))
    app = make()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        res = app.get("/simple/malformed/", status=502)
    assert f"{hostile.url}/simple/malformed/" in res.text.replace("up:***@", "")
    assert "sekrit" not in res.text and "sekrit" not in caplog.text
    no_tracebacks(caplog)


GOOD = "bad-1.0.tar.gz"


def _bad_entries() -> dict[str, dict]:
    digest = "ab" * 32
    base = {"url": "/files/bad-2.0.tar.gz", "hashes": {"sha256": digest}}

    def e(filename="bad-2.0.tar.gz", **fields):
        return {"filename": filename, **base, **fields}

    return {
        "hash is not a string": e(hashes={"sha256": 12345}),
        "hashes is a list": e(hashes=[digest]),
        "infinite size": e(size=float("inf")),
        "huge size": e(size=10**30),
        "negative size": e(size=-1),
        "size is a string": e(size="12"),
        "size is true": e(size=True),
        "out-of-range upload time": e(**{"upload-time": "9999-12-31T23:59:59-01:00"}),
        "upload time before year 1": e(**{"upload-time": "0001-01-01T00:00:00+01:00"}),
        "upload time of year 5": e(**{"upload-time": "0005-01-01T00:00:00Z"}),
        "upload time is a number": e(**{"upload-time": 5}),
        "invalid URL": e(url="http://[::1/files/x"),
        "invalid port": e(url="http://127.0.0.1:99999/files/x"),
        "file URL": e(url="file:///etc/passwd"),
        "URL is a list": e(url=["x"]),
        "filename is a number": e(filename=5),
        "filename with a slash": e(filename="../bad-2.0.tar.gz"),
        "requires-python is a number": e(**{"requires-python": 3}),
        "requires-python too long": e(**{"requires-python": ">=3" + ",!=3.1" * 60}),
        "version too long": e(filename=f"bad-1.{'0' * 200}.tar.gz"),
        "yanked is a list": e(yanked=["x"]),
        "entry is a string": "bad-2.0.tar.gz",
        "entry is nested deeply": json.loads("[" * 500 + "]" * 500),
    }


BAD_ENTRIES = _bad_entries()


def _page_with(*bad) -> Answer:
    good = entry(GOOD, b"good")
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": [*bad, good]}).encode()
    return page(raw=body)


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_a_bad_entry_is_skipped(make, hostile, case, caplog):
    hostile.script("/simple/bad/", _page_with(BAD_ENTRIES[case]))
    app = make()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        files = listed(app, "bad")
        assert list(files) == [GOOD]
    no_tracebacks(caplog)


def test_bad_entries_are_logged_once_per_page_with_their_reasons(make, hostile, caplog):
    hostile.script("/simple/bad/", _page_with(*BAD_ENTRIES.values()))
    app = make(pypi__upstream_ttl="0")
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        assert list(listed(app, "bad")) == [GOOD]
    lines = [r for r in caplog.records if "bad" in r.getMessage() and r.levelno >= logging.INFO]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert f"{len(BAD_ENTRIES)} of {len(BAD_ENTRIES) + 1}" in message
    for reason in ("no valid sha256", "invalid size", "invalid upload-time", "invalid URL",
                   "invalid filename", "invalid requires-python"):
        assert reason in message
    assert "sekrit" not in message
    no_tracebacks(caplog)


def test_other_kinds_of_files_are_skipped_quietly(make, hostile, caplog):
    """Eggs and installers fill old projects' pages: not a problem worth a line."""
    digest = {"sha256": "ab" * 32}
    hostile.script("/simple/bad/", _page_with(
        {"filename": "bad-0.9-py2.7.egg", "url": "/x", "hashes": digest},
        {"filename": "bad-0.9.win32.exe", "url": "/y", "hashes": digest}))
    app = make()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        assert list(listed(app, "bad")) == [GOOD]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- consistency ---------------------------------------------------------------------------------

def test_a_stored_file_keeps_its_own_hash_when_the_upstream_changes_it(make, hostile, tmp_path,
                                                                        caplog):
    name, first = wheel_bytes(tmp_path, "chg", "1.0")
    _, second = wheel_bytes(tmp_path, "chg", "1.0", module_source="changed = True\n")
    assert first != second
    hostile.script("/simple/chg/", page(entry(name, first)))
    hostile.file(name, first)
    app = make(pypi__upstream_ttl="0")
    assert app.get(f"/packages/chg/{name}").body == first
    flush(app)
    hostile.script("/simple/chg/", page(entry(name, second)))
    hostile.file(name, second)
    with caplog.at_level(logging.WARNING, logger="pypirepo"):
        for _ in range(3):
            files = listed(app, "chg")
            assert files[name]["hashes"] == {"sha256": sha256(first)}
            assert files[name]["size"] == len(first)
            html = app.get("/simple/chg/", headers={"Accept": "text/html"}).text
            assert f"#sha256={sha256(first)}" in html and sha256(second) not in html
        assert app.get(f"/packages/chg/{name}").body == first
        assert app.get(f"/pypi/chg/json").json["urls"][0]["digests"]["sha256"] == sha256(first)
    warned = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warned) == 1 and sha256(second) in warned[0] and sha256(first) in warned[0]
    assert hostile.asked[f"/files/{name}"] == 1


def test_a_sidecar_without_an_advertised_hash_is_never_served_unverified(make, hostile,
                                                                         tmp_path):
    name, data = wheel_bytes(tmp_path, "nohash", "1.0")
    forged = metadata_text("nohash", "1.0", ["evil>=1"]).encode()
    hostile.script("/simple/nohash/", page(entry(name, data, **{"core-metadata": True})))
    hostile.file(name, data)
    hostile.file(name + ".metadata", forged)
    app = make()
    assert listed(app, "nohash")[name]["core-metadata"] is False
    app.get(f"/packages/nohash/{name}.metadata", status=404)
    flush(app)
    assert not any(k.endswith(".metadata") for k in stored(app))
    assert hostile.asked[f"/files/{name}.metadata"] == 0
    # Once the wheel is here and checked, its own METADATA is the sidecar.
    app.get(f"/packages/nohash/{name}")
    flush(app)
    own = metadata_text("nohash", "1.0").encode()
    assert listed(app, "nohash")[name]["core-metadata"] == {"sha256": sha256(own)}
    assert app.get(f"/packages/nohash/{name}.metadata").body == own


def test_the_wheels_own_metadata_replaces_a_sidecar_that_differs(make, hostile, tmp_path):
    name, data = wheel_bytes(tmp_path, "sidediff", "1.0")
    theirs = metadata_text("sidediff", "1.0", ["evil>=1"]).encode()
    own = metadata_text("sidediff", "1.0").encode()
    hostile.script("/simple/sidediff/", page(entry(name, data, **{
        "core-metadata": {"sha256": sha256(theirs)}})))
    hostile.file(name, data)
    hostile.file(name + ".metadata", theirs)
    app = make(pypi__upstream_prefetch="false")
    # Verified against the hash the upstream advertises: served as it is.
    assert app.get(f"/packages/sidediff/{name}.metadata").body == theirs
    flush(app)
    app.get(f"/packages/sidediff/{name}")
    flush(app)
    assert listed(app, "sidediff")[name]["core-metadata"] == {"sha256": sha256(own)}
    assert app.get(f"/packages/sidediff/{name}.metadata").body == own
    assert storage(app).read_bytes(f"packages/sidediff/{name}.metadata") == own


@pytest.mark.parametrize("meta_name, meta_version, reason", [
    ("other", "1.0", "names project 'other'"),
    ("victim", "2.0", "has version '2.0'"),
])
def test_a_wheel_whose_metadata_names_another_project_is_refused(make, hostile, tmp_path,
                                                                 meta_name, meta_version,
                                                                 reason, caplog):
    name, data = wheel_bytes(tmp_path, "victim", "1.0",
                             metadata=metadata_text(meta_name, meta_version))
    hostile.script("/simple/victim/", page(entry(name, data)))
    hostile.file(name, data)
    app = make()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        res = app.get(f"/packages/victim/{name}", status=502)
    assert reason in res.text
    flush(app)
    assert stored(app) == set()
    app.get("/pypi/other/json", status=404)
    no_tracebacks(caplog)


def _long_wheel(length: int) -> str:
    head, tail = "lng-1.0-py3-none-linux_", ".whl"
    return head + "x" * (length - len(head) - len(tail)) + tail


def test_a_filename_too_long_for_its_record_is_refused_before_storing(make, hostile, tmp_path,
                                                                     app, dists, caplog):
    fits, too_long = _long_wheel(246), _long_wheel(247)
    assert (len(fits), len(too_long)) == (246, 247)
    data = b"not looked at"
    hostile.script("/simple/lng/", page(entry(fits, data), entry(too_long, data)))
    hostile.file(too_long, data)
    fallback = make()
    with caplog.at_level(logging.INFO, logger="pypirepo"):
        assert list(listed(fallback, "lng")) == [fits]
        fallback.get(f"/packages/lng/{too_long}", status=404)
    flush(fallback)
    assert stored(fallback) == set() and hostile.asked[f"/files/{too_long}"] == 0
    assert "invalid filename" in caplog.text
    # Uploads keep to the same limit.
    wheel = dists.wheel("lng", "1.0")
    big = wheel.with_name(too_long)
    wheel.rename(big)
    res = upload(app, big, "lng", "1.0", status=400)
    assert "Invalid filename" in res.text
    assert {o.key for o in storage(app).list("")} == set()


# --- limits --------------------------------------------------------------------------------------

def test_a_file_longer_than_advertised_is_cut_at_the_first_byte_past(make, hostile, caplog):
    data = b"x" * 5000
    hostile.script("/simple/long/", page(entry("long-1.0.tar.gz", data)))
    # Says nothing of its length and sends 2 GB.
    hostile.file("long-1.0.tar.gz", b"", length=None)
    hostile.script("/files/long-1.0.tar.gz", Answer(body=zeros(2 * 1000 * MB), length=None))
    app = make()
    res = app.get("/packages/long/long-1.0.tar.gz", status=502)
    assert "more than the 5000 bytes" in res.text
    hostile.idle(5)
    assert hostile.sent["/files/long-1.0.tar.gz"] < 20 * MB
    flush(app)
    assert stored(app) == set() and _spool(app) == []


def test_a_content_length_other_than_advertised_is_refused_before_reading(make, hostile):
    data = b"x" * 5000
    hostile.script("/simple/cl/", page(entry("cl-1.0.tar.gz", data)))
    hostile.script("/files/cl-1.0.tar.gz", Answer(body=zeros(2 * 1000 * MB),
                                                  length=2 * 1000 * MB))
    app = make()
    res = app.get("/packages/cl/cl-1.0.tar.gz", status=502)
    assert "2000000000" in res.text and "5000" in res.text
    hostile.idle(5)
    assert hostile.sent["/files/cl-1.0.tar.gz"] < 20 * MB
    assert _spool(app) == []


def test_a_file_without_a_size_stops_at_the_configured_limit(make, hostile):
    hostile.script("/simple/nosize/", page({"filename": "nosize-1.0.tar.gz",
                                            "url": "/files/nosize-1.0.tar.gz",
                                            "hashes": {"sha256": "ab" * 32}}))
    hostile.script("/files/nosize-1.0.tar.gz", Answer(body=zeros(2 * 1000 * MB), length=None))
    app = make(pypi__upstream_max_file_size="3MB")
    res = app.get("/packages/nosize/nosize-1.0.tar.gz", status=502)
    assert "pypi.upstream_max_file_size" in res.text and "3000000" in res.text
    hostile.idle(5)
    assert hostile.sent["/files/nosize-1.0.tar.gz"] < 20 * MB
    flush(app)
    assert stored(app) == set() and _spool(app) == []
    # An advertised size over the limit is refused without asking.
    hostile.script("/simple/huge/", page(entry("huge-1.0.tar.gz", b"x", size=5 * MB)))
    res = app.get("/packages/huge/huge-1.0.tar.gz", status=502)
    assert "pypi.upstream_max_file_size" in res.text
    assert hostile.asked["/files/huge-1.0.tar.gz"] == 0


def test_a_page_over_the_size_limit_is_refused(make, hostile):
    filler = b" " * (3 * MB)
    body = b'{"meta": {"api-version": "1.1"}, "files": []' + filler + b"}"
    hostile.script("/simple/fat/", page(raw=body))
    hostile.script("/simple/fatter/", Answer(200, {"Content-Type": "application/json"},
                                             zeros(2 * 1000 * MB), length=None))
    app = make(pypi__upstream_max_page_size="1MB")
    for project in ("fat", "fatter"):
        res = app.get(f"/simple/{project}/", status=502)
        assert "pypi.upstream_max_page_size" in res.text
    hostile.idle(5)
    assert hostile.sent["/simple/fatter/"] < 20 * MB


def _spool(app) -> list[str]:
    """The spool files left, once the fetches have ended (a failed one's file goes just
    after its clients have their answer)."""
    folder = proxy_repo(app).config.spool_dir

    def left():
        return [n for n in os.listdir(folder) if n.startswith("pypirepo-fetch-")]

    try:
        wait_until(lambda: not left(), timeout=5, what="the spool emptied")
    except RuntimeError:
        pass
    return left()


# --- real servers: memory, deadlines, isolation ---------------------------------------------------

def _peak_rss(srv: Server) -> int:
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def pserve(tmp_path, hostile):
    started = []

    def start(**settings):
        srv = Server(tmp_path / f"srv{len(started)}", app={
            "pypi.fallback": "cache", "pypi.fallback_url": hostile.simple_url,
            "pypi.cache_update": "everyone", "pypi.upstream_retries": "0",
            "pypi.upstream_spool_dir": str(tmp_path / "spool"),
            **settings})
        srv.directory.mkdir()
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


def test_a_gzip_bomb_page_stays_within_the_page_cap(pserve, hostile):
    hostile.script("/simple/warm/", page(entry("warm-1.0.tar.gz", b"w")))
    bomb = gzip_bomb(1024 * MB)
    assert len(bomb) < 2 * MB
    hostile.script("/simple/bomb/", page(raw=bomb, **{"Content-Encoding": "gzip"}))
    srv = pserve(**{"pypi.upstream_max_page_size": "8MB"})
    requests.get(srv.url + "/simple/warm/", timeout=30).raise_for_status()
    before = _peak_rss(srv)
    started = time.monotonic()
    res = requests.get(srv.url + "/simple/bomb/", timeout=60)
    assert res.status_code == 502 and "pypi.upstream_max_page_size" in res.text
    assert time.monotonic() - started < 10
    grown = _peak_rss(srv) - before
    assert grown < 40 * MB, f"peak RSS grew by {grown / MB:.0f} MB"
    assert "Traceback" not in srv.log


def test_a_page_of_200000_files_costs_what_the_file_cap_allows(pserve, hostile, caplog):
    first = dt.datetime(2024, 1, 1)
    files = [{"filename": f"big-0.{i}.tar.gz", "url": f"/f/big-0.{i}.tar.gz",
              "hashes": {"sha256": f"{i:064x}"},
              "upload-time": (first + dt.timedelta(seconds=i)).isoformat() + "Z"}
             for i in range(200_000)]
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "big", "files": files}).encode()
    del files
    hostile.script("/simple/big/", page(raw=body))
    hostile.script("/simple/warm/", page(entry("warm-1.0.tar.gz", b"w")))
    srv = pserve(**{"pypi.upstream_max_page_files": "5000"})
    requests.get(srv.url + "/simple/warm/", timeout=30).raise_for_status()
    before = _peak_rss(srv)
    started = time.monotonic()
    res = requests.get(srv.url + "/simple/big/", headers=JSON, timeout=60)
    took = time.monotonic() - started
    assert res.status_code == 200
    kept = res.json()["files"]
    assert len(kept) == 5000
    # The newest are kept: upload times grow with the number.
    assert {f["filename"] for f in kept} == {f"big-0.{i}.tar.gz" for i in range(195_000,
                                                                                 200_000)}
    grown = _peak_rss(srv) - before
    assert grown < 3 * len(body) + 40 * MB, f"peak RSS grew by {grown / MB:.0f} MB"
    assert took < 6, took
    assert "pypi.upstream_max_page_files" in srv.log and "200000" in srv.log


def test_a_page_sent_one_byte_a_second_meets_its_deadline(pserve, hostile):
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": []}).encode() + b" " * 1000
    hostile.script("/simple/slow/", Answer(200, {"Content-Type": "application/json"}, body,
                                           rate=1, piece=1))
    srv = pserve(**{"pypi.upstream_page_timeout": "2s", "pypi.upstream_read_timeout": "30s"})
    answers = []

    def ask():
        started = time.monotonic()
        res = requests.get(srv.url + "/simple/slow/", timeout=30)
        answers.append((res.status_code, time.monotonic() - started, res.text))

    clients = [threading.Thread(target=ask) for _ in range(3)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(30)
    assert len(answers) == 3
    for status, took, text in answers:
        assert status == 502 and took < 5, (status, took)
        assert "within 2s" in text and "pypi.upstream_page_timeout" in text
    assert hostile.asked["/simple/slow/"] == 1  # the clients that waited took its answer


def test_a_trickling_file_is_broken_off_below_the_minimum_rate(pserve, hostile, tmp_path):
    data = b"t" * 200_000
    hostile.script("/simple/drip/", page(entry("drip-1.0.tar.gz", data)))
    hostile.file("drip-1.0.tar.gz", data, rate=2000, piece=100)
    srv = pserve(**{"pypi.upstream_min_rate": "50KB", "pypi.upstream_rate_window": "1s",
                    "pypi.upstream_read_timeout": "30s"})
    started = time.monotonic()
    res = requests.get(srv.url + "/packages/drip/drip-1.0.tar.gz", timeout=30)
    assert res.status_code == 502 and time.monotonic() - started < 5
    assert "pypi.upstream_min_rate" in res.text
    time.sleep(0.5)
    assert not [n for n in os.listdir(tmp_path / "spool") if n.startswith("pypirepo-fetch")]
    assert "Traceback" not in srv.log


def test_a_file_that_breaks_off_mid_stream_is_cut_short_without_a_traceback(pserve, hostile):
    data = os.urandom(2 * MB)
    hostile.script("/simple/cut/", page(entry("cut-1.0.tar.gz", data)))
    hostile.script("/files/cut-1.0.tar.gz", Answer(body=data, stall_after=MB))
    srv = pserve(**{"pypi.upstream_read_timeout": "3s"})
    got = b""
    with requests.get(srv.url + "/packages/cut/cut-1.0.tar.gz", stream=True, timeout=30) as res:
        assert res.status_code == 200  # streaming began after the two seconds' wait
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in res.iter_content(65536):
                got += chunk
    assert len(got) < len(data)
    time.sleep(0.5)
    assert "Traceback" not in srv.log
    assert srv.log.count("cut-1.0.tar.gz") >= 1


def test_a_stalled_upstream_never_starves_private_or_cached_pages(pserve, hostile, dists):
    hostile.script("/simple/cached/", page(entry("cached-1.0.tar.gz", b"c")))
    stalled = os.urandom(MB)
    hostile.script("/simple/stall/", page(entry("stall-1.0.tar.gz", stalled)))
    hostile.script("/files/stall-1.0.tar.gz", Answer(body=stalled, stall_after=10_000))
    body = b'{"meta": {"api-version": "1.1"}, "files": []}'
    for n in range(10):  # pages of projects never seen, which stop after a few bytes
        hostile.script(f"/simple/stallpage{n}/", Answer(200, {"Content-Type": JSON_TYPE},
                                                        body, stall_after=5))
    srv = pserve(**{"pypi.upstream_read_timeout": "60s", "pypi.upstream_page_timeout": "60s",
                    "pypi.upstream_ttl": "1h"})
    srv.upload(dists.wheel("mine", "1.0"), "mine", "1.0")
    hostile.file("cached-1.0.tar.gz", b"c")
    assert requests.get(srv.url + "/simple/cached/", timeout=10).ok
    wait_until(lambda: requests.get(srv.url + "/packages/cached/cached-1.0.tar.gz",
                                    timeout=10).headers.get("Accept-Ranges") == "bytes",
               what="the cached file stored")
    assert requests.get(srv.url + "/simple/stall/", timeout=10).ok
    answers = []

    def ask(path):
        try:
            res = requests.get(srv.url + path, timeout=(5, 90), stream=True)
            answers.append((res.status_code, res.headers.get("Retry-After")))
            res.close()
        except requests.RequestException as exc:
            answers.append((type(exc).__name__, None))

    paths = ["/packages/stall/stall-1.0.tar.gz"] * 10 + [f"/simple/stallpage{n}/"
                                                         for n in range(10)]
    clients = [threading.Thread(target=ask, args=(p,), daemon=True) for p in paths]
    for c in clients:
        c.start()
    time.sleep(2.5)  # every client is in, waiting or answered
    for path in ("/simple/mine/", "/simple/cached/", "/_health", "/simple/mine/",
                 "/packages/cached/cached-1.0.tar.gz"):
        started = time.monotonic()
        res = requests.get(srv.url + path, timeout=10)
        took = time.monotonic() - started
        assert res.ok and took < 1.0, (path, took)
    busy = [a for a in answers if a[0] == 503]
    assert busy and all(retry == "1" for _, retry in busy)
    hostile.scripts.clear()  # the stalled answers end: their clients get an answer
    for c in clients:
        c.join(30)
