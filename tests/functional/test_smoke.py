"""The first slice end to end inside WebTest: upload a wheel, see it, download it."""

import hashlib

from distfactory import upload_fields


def test_upload_list_download(app, dists):
    wheel = dists.wheel("Demo.Pkg", "1.0")
    fields = upload_fields(wheel, "Demo.Pkg", "1.0")
    app.authorization = ("Basic", ("admin", "pw"))
    res = app.post("/legacy/", params=fields,
                   upload_files=[("content", wheel.name, wheel.read_bytes())])
    assert res.status_int == 200
    page = app.get("/simple/demo-pkg/")
    assert wheel.name in page.text
    body = app.get(f"/packages/demo-pkg/{wheel.name}").body
    assert hashlib.sha256(body).hexdigest() == fields["sha256_digest"]
