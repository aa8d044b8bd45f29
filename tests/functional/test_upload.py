"""The legacy upload API: dialects, digests, filename rules, and bad input."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from helpers import ADMIN, upload


def stored_files(tmp_path):
    root = Path(tmp_path) / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []


def assert_nothing_stored(app, tmp_path, project="demo"):
    assert stored_files(tmp_path) == []
    app.get(f"/simple/{project}/", status=404)


@pytest.mark.parametrize("path", ["/", "/legacy/", "/legacy", "/simple/", "/simple"])
def test_upload_on_every_url_without_redirect(app, dists, path):
    w = dists.wheel("demo", "1.0")
    from distfactory import upload_fields

    app.authorization = ADMIN
    res = app.post(path, params=upload_fields(w, "demo", "1.0"),
                   upload_files=[("content", w.name, w.read_bytes())])
    assert res.status_int == 200
    assert w.name in app.get("/simple/demo/").text


def test_identical_reupload_is_ok_and_conflict_is_409(app, dists, tmp_path):
    w = dists.wheel("demo", "1.0")
    original = w.read_bytes()
    upload(app, w, "demo", "1.0")
    res = upload(app, w, "demo", "1.0")
    assert res.status_int == 200
    other = dists.wheel("demo", "1.0", module_source="x = 2\n")  # same path, new bytes
    assert other.read_bytes() != original
    res = upload(app, other, "demo", "1.0", status=409)
    assert res.status.startswith("409 File already exists")
    assert res.text.startswith("File already exists")
    # the original bytes are still served
    assert app.get(f"/packages/demo/{w.name}").body == original


def test_overwrite_allowed_by_setting(make_app, dists):
    app = make_app(**{"pypi.allow_overwrite": "true"})
    w = dists.wheel("demo", "1.0")
    upload(app, w, "demo", "1.0")
    other = dists.wheel("demo", "1.0", module_source="x = 2\n")
    upload(app, other, "demo", "1.0")
    assert app.get(f"/packages/demo/{w.name}").body == other.read_bytes()


def test_uv_gets_json_error_body(app, dists):
    w = dists.wheel("demo", "1.0")
    upload(app, w, "demo", "1.0")
    other = dists.wheel("demo", "1.0", module_source="x = 3\n")
    from distfactory import upload_fields

    app.authorization = ADMIN
    res = app.post("/legacy/", params=upload_fields(other, "demo", "1.0"),
                   upload_files=[("content", other.name, other.read_bytes())], status=409,
                   headers={"Accept": "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"})
    body = json.loads(res.body)
    assert body["code"].startswith("409 File already exists")
    assert body["message"].startswith("File already exists")


@pytest.mark.parametrize("fields", [
    # pdm: non-standard plural and empty strings for absent fields
    {"provides_extras": "x", "summary": "", "author": ""},
    # uv: requires_python always sent, empty when absent; import_names
    {"requires_python": "", "import_names": "demo", "dynamic": "", "md5_digest": ""},
    # poetry/hatch: every digest, odd extra headers
    {"import_name": "demo", "license_files": "LICENSE", "platforms": ""},
])
def test_client_field_dialects(app, dists, fields):
    w = dists.wheel("demo", "1.0")
    data = w.read_bytes()
    fields = dict(fields)
    if "md5_digest" in fields:
        fields["md5_digest"] = hashlib.md5(data).hexdigest()
    upload(app, w, "demo", "1.0", fields=fields)


def test_md5_only_and_uppercase_digest(app, dists):
    w = dists.wheel("demo", "1.0")
    data = w.read_bytes()
    upload(app, w, "demo", "1.0", drop=("sha256_digest", "blake2_256_digest"),
           fields={"md5_digest": hashlib.md5(data).hexdigest().upper()})


@pytest.mark.parametrize("field", ["sha256_digest", "blake2_256_digest", "md5_digest"])
def test_wrong_digest_is_rejected(app, dists, tmp_path, field):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, "demo", "1.0", status=400, fields={field: "0" * 64})
    assert "digest supplied does not match" in res.status
    assert_nothing_stored(app, tmp_path)


def test_no_digest_is_rejected(app, dists, tmp_path):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, "demo", "1.0", status=400, drop=("sha256_digest", "blake2_256_digest"))
    assert "at least one message digest" in res.text
    assert_nothing_stored(app, tmp_path)


@pytest.mark.parametrize("drop,message", [
    (("name",), "'name' is a required field"),
    (("version",), "'version' is a required field"),
    ((":action",), ":action"),
])
def test_missing_fields(app, dists, tmp_path, drop, message):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, "demo", "1.0", status=400, drop=drop)
    assert message in res.text and message in res.status
    assert_nothing_stored(app, tmp_path)


def test_missing_file_part(app, tmp_path):
    app.authorization = ADMIN
    res = app.post("/legacy/", params={":action": "file_upload", "name": "demo",
                                       "version": "1.0", "sha256_digest": "0" * 64},
                   content_type="multipart/form-data", status=400)
    assert "does not have a file" in res.text


def test_old_actions_are_gone(app):
    app.authorization = ADMIN
    res = app.post("/legacy/", params={":action": "submit", "name": "x"},
                   content_type="multipart/form-data", status=410)
    assert "no longer supported" in res.text


def test_unknown_protocol_version(app, dists):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, "demo", "1.0", status=400, fields={"protocol_version": "2"})
    assert "Unknown protocol version" in res.text


@pytest.mark.parametrize("name,version,filename_of,message", [
    ("other", "1.0", None, "normalized project name"),
    ("demo", "2.0", None, "Version in filename"),
    ("demo", "1.0", "demo-1.0.exe", "Invalid file extension"),
])
def test_name_version_filename_mismatch(app, dists, tmp_path, name, version, filename_of,
                                        message):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, name, version, status=400, filename=filename_of)
    assert message in res.text
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("filename", [
    "../demo-1.0-py3-none-any.whl",
    "/etc/demo-1.0-py3-none-any.whl",
    "..\\demo-1.0-py3-none-any.whl",
    "sub/demo-1.0-py3-none-any.whl",
    "demo-1.0-py3-none-any.whl\x00.txt",
])
def test_path_tricks_in_filenames(app, dists, tmp_path, filename):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, "demo", "1.0", status=400, filename=filename)
    assert "Invalid filename" in res.text or "Invalid" in res.status
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("name", ["../etc", "/abs", "a/b", "-x-", "naïve"])
def test_path_tricks_in_names(app, dists, tmp_path, name):
    w = dists.wheel("demo", "1.0")
    res = upload(app, w, name, "1.0", status=400)
    assert "invalid value for name" in res.text
    assert stored_files(tmp_path) == []


def test_wheel_that_is_not_a_zip(app, dists, tmp_path):
    w = dists.wheel("demo", "1.0")
    junk = b"this is not a zip file" * 10
    import hashlib as h

    res = upload(app, w, "demo", "1.0", status=400, content=junk,
                 fields={"sha256_digest": h.sha256(junk).hexdigest(),
                         "blake2_256_digest": h.blake2b(junk, digest_size=32).hexdigest()})
    assert "Not a zip archive" in res.text
    assert_nothing_stored(app, tmp_path)


def test_wheel_without_metadata(app, dists, tmp_path):
    w = dists.wheel("demo", "1.0")
    buf = io.BytesIO()
    with zipfile.ZipFile(w) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("METADATA"):
                dst.writestr(item, src.read(item))
    data = buf.getvalue()
    res = upload(app, w, "demo", "1.0", status=400, content=data,
                 fields={"sha256_digest": hashlib.sha256(data).hexdigest(),
                         "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest()})
    assert "METADATA" in res.text
    assert_nothing_stored(app, tmp_path)


def test_metadata_naming_another_project(app, dists, tmp_path):
    from distfactory import metadata_text

    w = dists.wheel("demo", "1.0", metadata=metadata_text("evil", "1.0"))
    res = upload(app, w, "demo", "1.0", status=400)
    assert "names project 'evil'" in res.text
    assert_nothing_stored(app, tmp_path)


def test_oversized_upload_is_413(make_app, dists, tmp_path):
    app = make_app(**{"pypi.max_upload_size": "2000"})
    w = dists.wheel("demo", "1.0", payload_size=4000)
    res = upload(app, w, "demo", "1.0", status=413)
    assert "File too large" in res.status
    assert_nothing_stored(app, tmp_path)


def test_malformed_multipart(app, tmp_path):
    app.authorization = ADMIN
    res = app.post("/legacy/", params=b"--xyz\r\nContent-Disposition: form-data; name=\"a\"",
                   content_type="multipart/form-data; boundary=nope", status=400)
    assert res.text.strip() and res.status.startswith("400 ")
    res = app.post("/legacy/", params=b"name=demo", content_type="application/x-www-form-urlencoded",
                   status=400)
    assert "multipart/form-data" in res.text
    assert stored_files(tmp_path) == []


def test_field_sent_as_file_is_rejected(app, dists):
    from distfactory import upload_fields

    w = dists.wheel("demo", "1.0")
    app.authorization = ADMIN
    res = app.post("/legacy/", params=upload_fields(w, "demo", "1.0"),
                   upload_files=[("content", w.name, w.read_bytes()),
                                 ("summary", "s.txt", b"x")], status=400)
    assert "Should not be a tuple" in res.text


def test_same_bytes_under_another_filename_is_refused(app, dists, tmp_path):
    s = dists.sdist("demo", "1.0")
    upload(app, s, "demo", "1.0")
    res = upload(app, s, "demo", "1.0", filename="demo-1.0.zip", status=400)
    # a .zip with tar.gz bytes is not readable; fine, but nothing new is stored
    assert "demo-1.0.zip" not in app.get("/simple/demo/").text
    assert res.status_int == 400


def test_upload_records_event_and_uploader(app, dists):
    w = dists.wheel("demo", "1.0")
    upload(app, w, "demo", "1.0")
    events = app.get("/api/projects/demo/events").json["events"]
    assert events[0]["action"] == "upload" and events[0]["user"] == "admin"
    assert events[0]["filename"] == w.name


def test_text_field_over_the_spool_limit_is_still_text(app, dists):
    """A field too big to keep in memory arrives as a part without a filename; it is the
    same text field all the same (a long README sent as a description, say)."""
    from distfactory import upload_fields

    from pypirepo.upload import SPOOL_LIMIT, parse_form, read_body

    w = dists.wheel("demo", "1.0")
    description = "long " * (SPOOL_LIMIT // 5 + 100)
    req = app.RequestClass.blank("/legacy/", POST={
        **upload_fields(w, "demo", "1.0"), "description": description,
        "content": (w.name, w.read_bytes())})
    body = read_body(req.environ, 10 * SPOOL_LIMIT)
    try:
        assert body.fields.get("description") == description  # spooled, then decoded
        form = parse_form(body)
        assert form.fields["description"] == description.strip()
        assert form.content.read() == w.read_bytes()
    finally:
        body.close()
    upload(app, w, "demo", "1.0", fields={"description": description})


def test_truncated_multipart_says_why(app, dists, tmp_path):
    from distfactory import upload_fields

    w = dists.wheel("demo", "1.0")
    app.authorization = ADMIN
    req = app.RequestClass.blank("/legacy/", POST={**upload_fields(w, "demo", "1.0"),
                                                   "content": (w.name, w.read_bytes())})
    cut = req.body[: len(req.body) // 2]
    res = app.post("/legacy/", params=cut, content_type=req.environ["CONTENT_TYPE"], status=400)
    assert "Malformed multipart/form-data body" in res.text
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("first,second", [
    ("foo_bar-1.0-py3-none-any.whl", "Foo_Bar-1.0-py3-none-any.whl"),
    ("foo_bar-1.0-py3-none-any.whl", "foo.bar-1.0-py3-none-any.whl"),
    ("foo_bar-1.0-py2.py3-none-any.whl", "foo_bar-1.0-py3.py2-none-any.whl"),
    ("Foo-Bar-1.0.tar.gz", "foo_bar-1.0.tar.gz"),
])
def test_another_spelling_of_a_stored_file_is_the_same_file(app, tmp_path, first, second):
    """The overwrite rule holds whatever the spelling: other bytes are a 409 that names
    the stored file, the same bytes are success, and only the first spelling is listed."""
    from distfactory import make_sdist, make_wheel

    make = make_wheel if first.endswith(".whl") else make_sdist
    original = make(tmp_path / "a", "foo_bar", "1.0")
    changed = make(tmp_path / "b", "foo_bar", "1.0", requires_dist=["other"])
    assert changed.read_bytes() != original.read_bytes()
    upload(app, original, "foo_bar", "1.0", filename=first)
    res = upload(app, changed, "foo_bar", "1.0", filename=second, status=409)
    assert res.status.startswith("409 File already exists")
    assert f"{second!r} is the same distribution as {first!r}" in res.text
    assert hashlib.sha256(original.read_bytes()).hexdigest() in res.text
    res = upload(app, original, "foo_bar", "1.0", filename=second)
    assert f"already exists as {first!r} with the same content" in res.text
    page = app.get("/simple/foo-bar/").text
    assert first in page and second not in page
    assert app.get(f"/packages/foo-bar/{first}").body == original.read_bytes()
    assert stored_files(tmp_path) == sorted(
        f"packages/foo-bar/{first}{ext}" for ext in
        ("", ".json") + ((".metadata",) if first.endswith(".whl") else ()))


def test_another_spelling_of_the_version_is_the_same_file(app, dists):
    upload(app, dists.wheel("demo", "1.0"), "demo", "1.0")
    res = upload(app, dists.wheel("demo", "1.0.0"), "demo", "1.0.0", status=409)
    assert "'demo-1.0.0-py3-none-any.whl' is the same distribution as " \
        "'demo-1.0-py3-none-any.whl'" in res.text


def test_overwrite_setting_replaces_only_under_the_same_filename(make_app, dists):
    app = make_app(**{"pypi.allow_overwrite": "true"})
    w = dists.wheel("foo_bar", "1.0")
    upload(app, w, "foo_bar", "1.0")
    other = dists.wheel("foo_bar", "1.0", module_source="x = 2\n")
    res = upload(app, other, "foo_bar", "1.0", filename="Foo_Bar-1.0-py3-none-any.whl",
                 status=409)
    assert "is the same distribution as 'foo_bar-1.0-py3-none-any.whl'" in res.text
    upload(app, other, "foo_bar", "1.0")
    assert app.get(f"/packages/foo-bar/{w.name}").body == other.read_bytes()


def test_a_rebuilt_database_keeps_the_rule(make_app, app_settings, dists):
    app = make_app()
    upload(app, dists.wheel("foo_bar", "1.0"), "foo_bar", "1.0")
    Path(app_settings["sqlalchemy.url"][len("sqlite:///"):]).unlink()
    app = make_app()  # rebuilt from the records alone
    other = dists.wheel("foo_bar", "1.0", module_source="x = 2\n")
    upload(app, other, "foo_bar", "1.0", filename="Foo_Bar-1.0-py3-none-any.whl", status=409)


def _multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body from (part headers, payload) pairs, written by hand so
    that a part can say what no client library would let it."""
    boundary = "pypirepo-test-boundary"
    body = b"".join(b"--%s\r\n%s\r\n\r\n%s\r\n" % (boundary.encode(), headers.encode(), data)
                    for headers, data in parts)
    return body + b"--%s--\r\n" % boundary.encode(), \
        f"multipart/form-data; boundary={boundary}"


def _form_parts(path, name="demo", version="1.0", content_headers=None, **extra):
    from distfactory import upload_fields

    fields = {**upload_fields(path, name, version), **extra}
    parts = [(f'Content-Disposition: form-data; name="{k}"',
              v if isinstance(v, bytes) else v.encode()) for k, v in fields.items()]
    parts.append((content_headers or
                  f'Content-Disposition: form-data; name="content"; filename="{path.name}"',
                  path.read_bytes()))
    return parts


def _post_raw(app, parts, status):
    import base64

    body, ctype = _multipart(parts)
    req = app.RequestClass.blank("/legacy/", method="POST", body=body, content_type=ctype)
    req.headers["Authorization"] = "Basic " + base64.b64encode(b"admin:pw").decode()
    return app.do_request(req, status=status)


@pytest.mark.parametrize("content_headers,message", [
    ('Content-Disposition: form-data; name="content"', "'content' part has no filename"),
    ('Content-Disposition: form-data; name="content"; filename=""',
     "'content' part has no filename"),
])
def test_content_part_without_a_filename_is_a_400(app, dists, tmp_path, content_headers,
                                                  message):
    res = _post_raw(app, _form_parts(dists.wheel("demo", "1.0"),
                                     content_headers=content_headers), 400)
    assert message in res.status and message in res.text
    assert_nothing_stored(app, tmp_path)


def test_two_content_parts_are_refused(app, dists, tmp_path):
    w = dists.wheel("demo", "1.0")
    parts = _form_parts(w)
    parts.append(parts[-1])
    res = _post_raw(app, parts, 400)
    assert "2 'content' parts" in res.text
    assert_nothing_stored(app, tmp_path)


@pytest.mark.parametrize("headers,payload,message", [
    ('Content-Disposition: form-data; name="summary"', b"caf\xe9", "'summary' is not valid"),
    ('Content-Disposition: form-data; name="summary"\r\nContent-Type: text/plain; '
     'charset=no-such-codec', b"x", "unknown charset"),
    ('Content-Disposition: form-data; name="summary"\r\nContent-Type: text/plain; '
     'charset=latin-1', b"caf\xe9", None),
])
def test_text_fields_in_other_encodings(app, dists, tmp_path, headers, payload, message):
    w = dists.wheel("demo", "1.0")
    parts = _form_parts(w) + [(headers, payload)]
    res = _post_raw(app, parts, 400 if message else 200)
    if message:
        assert message in res.text
        assert_nothing_stored(app, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_app(request, make_app):
    if request.param == "sqlite":
        return make_app()
    return make_app(**{"sqlalchemy.url": request.getfixturevalue("pg_url")})


LONG_VERSION = "1.0" + ".0" * 100
LONG_REQUIRES = ">=3.8," + ",".join(f"!=3.{i}.*" for i in range(9, 60))


@pytest.mark.parametrize("wheel_kw,fields,message", [
    ({"version": LONG_VERSION}, {}, "'version' is too long: 203 characters, the limit is 128"),
    ({}, {"pyversion": "py3" * 50}, "'pyversion' is too long: 150 characters, the limit is 128"),
    ({"requires_python": LONG_REQUIRES}, {}, "'Requires-Python' is too long"),
    ({}, {"pyversion": "py3\x00"}, "'pyversion' contains a NUL"),
])
def test_values_the_database_cannot_hold_are_refused_by_name(any_db_app, dists, tmp_path,
                                                             wheel_kw, fields, message):
    """The same 400 on SQLite (which would take them) and PostgreSQL (which would fail
    with a 500), before anything is stored."""
    wheel_kw = dict(wheel_kw)
    version = wheel_kw.pop("version", "1.0")
    w = dists.wheel("demo", version, **wheel_kw)
    res = upload(any_db_app, w, "demo", version, fields=fields, status=400)
    assert message in res.text and message in res.status
    assert_nothing_stored(any_db_app, tmp_path)


def test_an_sdist_whose_pkg_info_inflates_past_the_limit_is_refused(app, tmp_path):
    """A few KB of zip whose PKG-INFO inflates past 10 MB: refused from its header, not
    inflated into memory (it was read whole, then cut)."""
    from pypirepo.distinfo import MAX_METADATA

    bomb = tmp_path / "demo-1.0.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("demo-1.0/PKG-INFO", "w") as out:
        out.write(bytes(MAX_METADATA + 1))
    assert bomb.stat().st_size < 100_000
    res = upload(app, bomb, "demo", "1.0", status=400, fields={"filetype": "sdist"})
    assert "PKG-INFO is too large" in res.text
    assert_nothing_stored(app, tmp_path)
