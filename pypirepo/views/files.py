"""Downloads: stable URLs bound to project and filename, streamed, with ranges."""

from __future__ import annotations

import datetime as dt
import re

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response

from ..errors import NotFound
from ..repositories.base import Metadata, StoredFile
from ..repositories.proxy import UpstreamStream
from ..routes import repository_routes
from . import error_response, immutable_cache_control, metadata_response, missing, view_config

CHUNK = 256 * 1024
# `bytes=-0`, a suffix of no bytes: WebOb reads it as `bytes=0-` (the whole file, 206),
# RFC 9110 (14.1.1) as a range nobody can satisfy (416).
_ZERO_SUFFIX = re.compile(r"\s*bytes\s*=\s*-\s*0+\s*(,|$)", re.IGNORECASE)


def unsatisfiable_range(request, size: int):
    """A 416 for a Range of only a zero-byte suffix, else None. WebOb serves the first
    range of a list alone: when a zero suffix leads others, the header is dropped and the
    whole file is the answer (a server may ignore Range)."""
    header = request.environ.get("HTTP_RANGE")
    found = _ZERO_SUFFIX.match(header) if header else None
    if found is None:
        return None
    if found.group(1) == ",":
        del request.environ["HTTP_RANGE"]
        return None
    return error_response(request, 416, "Range Not Satisfiable: a suffix of zero bytes.",
                          {"Content-Range": f"bytes */{size}"})


class StorageIter:
    """A WSGI app_iter over a stored object that opens it lazily.

    WebOb's conditional response calls app_iter_range() for a Range request, so a ranged
    read fetches only those bytes from storage; a HEAD never opens the object at all.
    """

    def __init__(self, storage, key, start=0, stop=None):
        self.storage, self.key, self.start, self.stop = storage, key, start, stop
        self._stream = None

    def __iter__(self):
        self._stream = self.storage.open(self.key, self.start, self.stop)
        read = self._stream.read
        while True:
            chunk = read(CHUNK)
            if not chunk:
                break
            yield chunk

    def app_iter_range(self, start, stop):
        return StorageIter(self.storage, self.key, start, stop)

    def close(self):
        if self._stream is not None:
            self._stream.close()


@view_config(route_name=repository_routes("file"), request_method="GET", permission="read")
def download(context, request):
    filename = request.matchdict["filename"]
    if not context.valid:
        return error_response(request, 404, f"No project named {context.raw_name!r}.")
    try:
        answer = request.repository.file(request.work, context.name, filename,
                                         head=request.method == "HEAD")
    except NotFound as exc:
        return missing(request, exc, f"No file {filename!r} in project {context.name!r}.")
    if isinstance(answer, Metadata):
        return unsatisfiable_range(request, len(answer.body)) or \
            metadata_response(request, answer.body, context.name)
    if isinstance(answer, UpstreamStream):
        return _upstream_response(request, answer, context.name)
    return _stored_response(request, answer, context.name)


def _stored_response(request, answer: StoredFile, project: str):
    row, storage = answer.row, answer.storage
    refused = unsatisfiable_range(request, row.size)
    if refused is not None:
        return refused
    if storage.redirect_expires:
        # storage.redirect: signed now, after our own permission check, and never cached
        # past its expiry; index pages keep pointing at this stable URL.
        url = storage.signed_url(answer.key, int(storage.redirect_expires), row.filename)
        if url:
            return HTTPFound(location=url, headers={"Cache-Control": "private, no-store"})
    # application/octet-stream, set explicitly: guessing would add Content-Encoding: gzip
    # to a .tar.gz and clients would unpack it before hashing.
    response = Response(content_type="application/octet-stream", conditional_response=True)
    response.app_iter = StorageIter(storage, answer.key)
    response.content_length = row.size
    response.accept_ranges = "bytes"
    response.etag = row.sha256
    response.last_modified = row.upload_time.replace(tzinfo=dt.timezone.utc)
    response.cache_control = immutable_cache_control(request, project)
    response.content_disposition = f'attachment; filename="{row.filename}"'
    return response


def _upstream_response(request, answer: UpstreamStream, project: str):
    """A file still arriving from the upstream. Ranges are not offered until it is held;
    clients then fetch it whole."""
    response = Response(content_type="application/octet-stream")
    if answer.reader is not None:
        response.app_iter = answer.reader
    if answer.size is not None:
        response.content_length = answer.size
    response.etag = answer.sha256
    response.cache_control = immutable_cache_control(request, project)
    response.content_disposition = f'attachment; filename="{answer.filename}"'
    return response
