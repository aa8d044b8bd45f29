"""Posting uploads through WebTest the way the real clients do."""

from __future__ import annotations

from pathlib import Path

from distfactory import upload_fields

ADMIN = ("Basic", ("admin", "pw"))


def upload(app, path: Path, name: str, version: str, status=200, auth=ADMIN, fields=None,
           drop=(), filename=None, content=None):
    params = upload_fields(path, name, version)
    params.update(fields or {})
    for key in drop:
        params.pop(key, None)
    app.authorization = auth
    try:
        return app.post(
            "/legacy/", params=params, status=status,
            upload_files=[("content", filename or path.name,
                           content if content is not None else path.read_bytes())],
        )
    finally:
        app.authorization = None
