"""Downloads: bound to project and filename, streamed, ranges, caching."""

import hashlib

import pytest
from helpers import upload


@pytest.fixture
def files(app, dists):
    s = dists.sdist("demo", "1.0")
    w = dists.wheel("demo", "1.0", payload_size=300_000)
    b = dists.wheel("other", "1.0")
    upload(app, s, "demo", "1.0")
    upload(app, w, "demo", "1.0")
    upload(app, b, "other", "1.0")
    return {"sdist": s, "wheel": w, "other": b}


def test_full_download_headers(app, files):
    s = files["sdist"]
    res = app.get(f"/packages/demo/{s.name}")
    assert res.body == s.read_bytes()
    assert res.headers["Content-Length"] == str(len(s.read_bytes()))
    assert res.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in res.headers  # .tar.gz must not look gzip-encoded
    assert res.headers["Accept-Ranges"] == "bytes"
    assert res.headers["ETag"].strip('"') == hashlib.sha256(s.read_bytes()).hexdigest()
    assert "immutable" in res.headers["Cache-Control"]
    assert "Last-Modified" in res.headers


def test_file_of_another_project_is_not_served(app, files):
    app.get(f"/packages/demo/{files['other'].name}", status=404)
    app.get(f"/packages/other/{files['sdist'].name}", status=404)
    app.get("/packages/demo/..%2F..%2Fdb.sqlite", status=404)
    app.get("/packages/demo/nothing-1.0.tar.gz", status=404)


@pytest.mark.parametrize("header,start,stop", [
    ("bytes=0-99", 0, 100),
    ("bytes=100-", 100, None),
    ("bytes=-500", -500, None),
    ("bytes=1000-1999", 1000, 2000),
])
def test_ranges(app, files, header, start, stop):
    w = files["wheel"]
    data = w.read_bytes()
    res = app.get(f"/packages/demo/{w.name}", headers={"Range": header}, status=206)
    expected = data[start:stop] if stop is not None else data[start:]
    assert res.body == expected
    assert res.headers["Content-Length"] == str(len(expected))
    first = start if start >= 0 else len(data) + start
    assert res.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"


def test_unsatisfiable_range(app, files):
    w = files["wheel"]
    size = w.stat().st_size
    res = app.get(f"/packages/demo/{w.name}", headers={"Range": f"bytes={size + 10}-"},
                  status=416)
    assert res.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("suffix", ["", ".metadata"])
@pytest.mark.parametrize("header", ["bytes=-0", "bytes=-000", "Bytes = -0 "])
def test_a_zero_byte_suffix_is_unsatisfiable(app, files, suffix, header):
    """RFC 9110 14.1.1: `bytes=-0` selects nothing (WebOb took it for the whole file)."""
    w = files["wheel"]
    size = len(app.get(f"/packages/demo/{w.name}{suffix}").body)
    res = app.get(f"/packages/demo/{w.name}{suffix}", headers={"Range": header}, status=416)
    assert res.headers["Content-Range"] == f"bytes */{size}"
    assert "zero bytes" in res.status
    # Leading others, it is ignored with the Range: the whole file, not a 206.
    res = app.get(f"/packages/demo/{w.name}{suffix}", headers={"Range": header + ",0-9"})
    assert res.status_int == 200 and len(res.body) == size


def test_if_range(app, files):
    w = files["wheel"]
    data = w.read_bytes()
    etag = app.head(f"/packages/demo/{w.name}").headers["ETag"]
    res = app.get(f"/packages/demo/{w.name}", headers={"Range": "bytes=10-", "If-Range": etag},
                  status=206)
    assert res.body == data[10:]
    res = app.get(f"/packages/demo/{w.name}", headers={"Range": "bytes=10-",
                                                        "If-Range": '"stale"'}, status=200)
    assert res.body == data


def test_etag_revalidation(app, files):
    s = files["sdist"]
    etag = app.get(f"/packages/demo/{s.name}").headers["ETag"]
    app.get(f"/packages/demo/{s.name}", headers={"If-None-Match": etag}, status=304)


def test_metadata_sidecar_is_the_wheels_own_bytes(app, files):
    import zipfile

    w = files["wheel"]
    with zipfile.ZipFile(w) as zf:
        expected = zf.read("demo-1.0.dist-info/METADATA")
    assert app.get(f"/packages/demo/{w.name}.metadata").body == expected
    app.get(f"/packages/demo/{files['sdist'].name}.metadata", status=404)


def test_head_does_not_send_body(app, files):
    w = files["wheel"]
    res = app.head(f"/packages/demo/{w.name}")
    assert res.body == b"" and res.headers["Content-Length"] == str(w.stat().st_size)


def test_invalid_project_name_in_file_url(app, files):
    res = app.get(f"/packages/-bad-/{files['sdist'].name}", status=404)
    assert "No project named" in res.text
