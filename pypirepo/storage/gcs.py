"""Google Cloud Storage through google-cloud-storage.

Writes are atomic: a single-request upload or a resumable upload's final chunk is what
creates the object generation, so a failed upload leaves nothing (the open resumable
session expires on its own). Reads of a large object are ranged requests pinned to the
generation seen when it was opened, so an overwrite during a download can never mix
bytes of two files.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import quote

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Signing
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage import exceptions as gcs_exc
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from ..interfaces import ObjectInfo, ObjectNotFound, StorageError
from ..settings import ConfigError, as_str
from .remote import MiB, ChunkStream, RemoteStorage, check_key, parse_prefix, pooled, ranged_chunks

_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
# Resumable chunks must be multiples of 256 KiB.
_CHUNK_MULTIPLE = 256 * 1024
# Not OSError: a broken client stream is the caller's error, not the store's.
_TRANSPORT_ERRORS = (gexc.GoogleAPIError, auth_exc.GoogleAuthError,
                     requests.RequestException, gcs_exc.InvalidResponse, gcs_exc.DataCorruption)


def _translate(exc: BaseException, key: str | None = None) -> BaseException:
    """key: the object a read asked for, whose 404 means it is missing; None elsewhere."""
    if isinstance(exc, gexc.NotFound) and key is not None:
        # A missing bucket is a configuration problem, not a missing object.
        if "bucket does not exist" in str(exc).lower():
            return StorageError(f"gcs: the bucket does not exist ({exc})")
        return ObjectNotFound(key)
    if isinstance(exc, _TRANSPORT_ERRORS):
        return StorageError(f"gcs: {exc}")
    return exc


@contextmanager
def _errors(key: str | None = None):
    try:
        yield
    except _TRANSPORT_ERRORS as exc:
        raise _translate(exc, key) from exc


class GCSStorage(RemoteStorage):
    alias = "gcs"

    def __init__(self, client: storage.Client, bucket: str, prefix: str = "", *,
                 signer=None, api_access_endpoint: str | None = None,
                 chunk_size: int = 8 * MiB):
        self.client = client
        self.bucket = client.bucket(bucket)
        self.prefix = prefix
        # Credentials that can sign URLs (a service-account key), or ones that can ask IAM
        # to sign for them (default credentials on GCE/GKE), or None.
        self.signer = signer
        self.api_access_endpoint = api_access_endpoint
        self.part_size = chunk_size
        # the authorized session the client sends its requests with (read_many reuses it)
        self._session = client._http

    @classmethod
    def from_settings(cls, settings) -> GCSStorage:
        bucket = settings.get_value("storage.bucket", as_str)
        prefix = parse_prefix(settings.get_value("storage.prefix", as_str, ""))
        project = cls._optional(settings, "storage.project")
        emulator = cls._optional(settings, "storage.emulator_host")
        if emulator and "://" not in emulator:
            raise ConfigError("storage.emulator_host", "needs a scheme, e.g. http://host:port")
        credentials_file = cls._optional(settings, "storage.credentials_file")
        parallelism = cls._parallelism(settings)
        chunk_size = cls._part_size(settings, "storage.part_size", 8 * MiB, _CHUNK_MULTIPLE,
                                    _CHUNK_MULTIPLE)

        credentials = None
        if credentials_file:
            try:
                credentials = service_account.Credentials.from_service_account_file(
                    credentials_file, scopes=_SCOPES)
            except (OSError, ValueError) as exc:
                raise ConfigError("storage.credentials_file", f"cannot use "
                                  f"{credentials_file!r}: {exc}") from None
            project = project or credentials.project_id
        elif not emulator:
            try:
                credentials, found_project = google.auth.default(scopes=_SCOPES)
            except auth_exc.DefaultCredentialsError as exc:
                raise ConfigError("storage.credentials_file", "no Google credentials found: "
                                  "set storage.credentials_file to a service-account key, or "
                                  f"provide application default credentials ({exc})") from None
            project = project or found_project
        signer = credentials
        if emulator:
            # Emulators take anonymous calls; a key file, if given, still signs URLs locally.
            credentials = AnonymousCredentials()
            project = project or "emulator"

        session = pooled(AuthorizedSession(credentials), parallelism)
        options = {"api_endpoint": emulator} if emulator else None
        try:
            client = storage.Client(project=project, credentials=credentials, _http=session,
                                    client_options=options)
        except (auth_exc.GoogleAuthError, ValueError) as exc:
            raise ConfigError("storage.project", str(exc)) from None
        self = cls(client, bucket, prefix, signer=signer, api_access_endpoint=emulator,
                   chunk_size=chunk_size)
        self._common_settings(settings, parallelism)
        if self.redirect_expires is not None and signer is None:
            raise ConfigError("storage.redirect", "signed URLs need credentials: set "
                              "storage.credentials_file")
        self._check("storage.emulator_host" if emulator else "storage.credentials_file")
        return self

    def _check(self, where_key: str) -> None:
        """List one object: proves the bucket exists and the credentials may list it (which
        the rebuild needs anyway, unlike reading the bucket's own metadata)."""
        retry = DEFAULT_RETRY.with_deadline(30)
        try:
            next(iter(self.client.list_blobs(self.bucket, prefix=self.prefix, max_results=1,
                                             retry=retry, timeout=10)), None)
        except gexc.NotFound:
            raise ConfigError("storage.bucket",
                              f"bucket {self.bucket.name!r} does not exist") from None
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise ConfigError("storage.credentials_file", f"may not list bucket "
                              f"{self.bucket.name!r}: {exc.message}") from None
        except _TRANSPORT_ERRORS as exc:
            raise ConfigError(where_key, f"cannot reach Cloud Storage: {exc}") from None

    def _blob(self, key: str, **kw) -> storage.Blob:
        return self.bucket.blob(self.prefix + check_key(key), **kw)

    # --- writes --------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        small = size is not None and size <= self.part_size
        # A known small size goes in one request; anything else is a resumable upload sent
        # chunk by chunk, so memory holds one chunk whatever the file's size.
        blob = self._blob(key, chunk_size=None if small else self.part_size)
        if not _at_start(stream):
            stream = _Counted(stream)
        with _errors():  # a 404 here is the bucket's, never the object's
            blob.upload_from_file(stream, size=size, rewind=False,
                                  content_type="application/octet-stream")
        return ObjectInfo(key, blob.size if blob.size is not None else (size or 0),
                          blob.updated)

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """A copy inside Cloud Storage (objects.rewrite); not a byte passes through here.

        Within one location and storage class a rewrite finishes in one call whatever the
        size; otherwise Cloud Storage copies a piece per call and hands back a token to go
        on with. The new object generation appears only when the last call completes it.
        """
        source = self._blob(src_key)
        target = self._blob(dst_key)
        if source.name == target.name:
            return self.stat(src_key)
        target.content_type = "application/octet-stream"  # as put() writes it
        with _errors(src_key):  # a 404 is the source's (or the bucket's: _translate says)
            token, _, total = target.rewrite(source)
            while token is not None:
                token, _, total = target.rewrite(source, token=token)
        return ObjectInfo(dst_key, total, target.updated)

    def delete(self, key: str) -> None:
        try:
            with _errors(key):
                self._blob(key).delete()
        except ObjectNotFound:
            pass

    # --- reads ---------------------------------------------------------------------------

    def _get(self, key: str) -> storage.Blob:
        with _errors(key):
            blob = self.bucket.get_blob(self.prefix + check_key(key))
        if blob is None:
            raise ObjectNotFound(key)
        return blob

    def open(self, key: str, start: int = 0, stop: int | None = None) -> BinaryIO:
        blob = self._get(key)
        stop = blob.size if stop is None else min(stop, blob.size)
        generation = blob.generation

        def fetch(first: int, last: int) -> bytes:
            # raw: the stored bytes, never transcoded; checksums only apply to whole objects
            return blob.download_as_bytes(start=first, end=last, raw_download=True,
                                          checksum=None, if_generation_match=generation)

        return io.BufferedReader(ChunkStream(
            ranged_chunks(fetch, start, stop, self.part_size),
            lambda exc: _translate(exc, key)))

    def read_bytes(self, key: str) -> bytes:
        with _errors(key):
            return self._blob(key).download_as_bytes(raw_download=True)

    def _read_one(self, key: str) -> bytes | None:
        """One small object for read_many (a rebuild reads one record per file).

        The client's download path (checksumming, retry wrappers, a download object per
        call) costs more CPU than a small record's request itself; a plain media GET on
        the client's own authorized session costs a fraction. Anything but a 200 or a 404
        goes the SDK's way, with its retries and error handling.
        """
        name = self.prefix + check_key(key)
        url = (f"{self.client.api_endpoint}/download/storage/v1/b/{self.bucket.name}/o/"
               f"{quote(name, safe='')}?alt=media")
        try:
            answer = self._session.get(url, timeout=(10, 60))
        except requests.RequestException:
            answer = None
        if answer is not None:
            if answer.status_code == 200:
                return answer.content
            if answer.status_code == 404:
                return None
        return super()._read_one(key)

    def stat(self, key: str) -> ObjectInfo:
        blob = self._get(key)
        return ObjectInfo(key, blob.size, blob.updated)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        cut = len(self.prefix)
        with _errors():
            # Only the fields a listing needs: a smaller answer per 1,000 objects.
            # The generation as version token: it grows on every write, where an etag may
            # repeat when the same bytes come back (the emulator's is the content's MD5).
            fields = "items(name,size,updated,generation),nextPageToken"
            for blob in self.client.list_blobs(self.bucket, prefix=self.prefix + prefix,
                                               page_size=1000, fields=fields):
                yield ObjectInfo(blob.name[cut:], blob.size, blob.updated,
                                 str(blob.generation) if blob.generation else None)

    def signed_url(self, key: str, expires: int, filename: str | None = None) -> str | None:
        if self.signer is None:
            return None
        kwargs = {}
        if isinstance(self.signer, Signing):
            kwargs["credentials"] = self.signer
        else:
            # Default credentials on GCE/GKE hold no private key: IAM signs for them.
            with _errors(key):
                if not self.signer.valid:
                    self.signer.refresh(Request())
            kwargs["service_account_email"] = self.signer.service_account_email
            kwargs["access_token"] = self.signer.token
        blob = self._blob(key)
        with _errors(key):
            return blob.generate_signed_url(
                version="v4", expiration=dt.timedelta(seconds=int(expires)), method="GET",
                api_access_endpoint=self.api_access_endpoint,
                response_type="application/octet-stream",
                response_disposition=f'attachment; filename="{filename}"' if filename else None,
                **kwargs)

    def close(self) -> None:
        self.client.close()


def _at_start(stream) -> bool:
    try:
        return stream.seekable() and stream.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False


class _Counted(io.RawIOBase):
    """Gives a forward-only stream the tell() that resumable uploads use to count bytes.

    Seeking anywhere but where we are is refused, so an upload that would need to resend
    a chunk fails (and leaves no object) instead of sending wrong bytes.
    """

    def __init__(self, stream):
        self._stream = stream
        self._pos = 0

    def readable(self):
        return True

    def read(self, size=-1):
        data = self._stream.read(size)
        self._pos += len(data)
        return data

    def readinto(self, target):
        data = self.read(len(target))
        target[:len(data)] = data
        return len(data)

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        if (whence, offset) in ((io.SEEK_SET, self._pos), (io.SEEK_CUR, 0)):
            return self._pos
        raise io.UnsupportedOperation("this upload stream cannot go back")
