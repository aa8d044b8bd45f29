"""Azure Blob Storage through azure-storage-blob.

Writes are atomic: a large file is staged as uncommitted blocks and becomes visible only
when its block list is committed, so a failed upload leaves no blob (Azure drops the
uncommitted blocks after a week). Downloads stream in bounded chunks pinned to the ETag
seen at open, so an overwrite during a download fails it instead of mixing files.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlparse

import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_blob_sas,
    generate_container_sas,
)

from ..interfaces import ObjectInfo, ObjectNotFound, StorageError
from ..settings import ConfigError, as_str
from .remote import MiB, ChunkStream, RemoteStorage, check_key, parse_prefix, pooled

log = logging.getLogger(__name__)

# Azure's own limits on a block, and on the blocks of a blob.
_MAX_BLOCK = 4000 * MiB
_MAX_BLOCKS = 50_000
# How long the SAS of a copy's source stays valid: one copy request (a fresh one each).
_COPY_SAS_SECONDS = 900
_STORAGE_SCOPE = "https://storage.azure.com/.default"
# SAS start times are backdated so a client whose clock runs behind is not refused.
_CLOCK_SKEW = dt.timedelta(minutes=5)
# A cached read SAS is renewed this long before it expires: longer than a GET may take
# (70 s with its timeouts), with room for a service clock a few minutes ahead.
_SAS_RENEW = dt.timedelta(minutes=10)
_OCTET = ContentSettings(content_type="application/octet-stream")


def _translate(exc: BaseException, key: str | None = None) -> BaseException:
    if isinstance(exc, ResourceNotFoundError):
        if getattr(exc, "error_code", None) == "ContainerNotFound" or key is None:
            return StorageError(f"azure: the container does not exist ({exc.message})")
        return ObjectNotFound(key)
    if isinstance(exc, AzureError):
        return StorageError(f"azure: {key or ''}: {getattr(exc, 'message', exc)}")
    if isinstance(exc, (OSError, requests.RequestException)):
        return StorageError(f"azure: {key or ''}: {exc}")
    return exc


@contextmanager
def _errors(key: str | None = None):
    try:
        yield
    except (AzureError, requests.RequestException) as exc:
        raise _translate(exc, key) from exc


class AzureStorage(RemoteStorage):
    alias = "azure"
    #: blobs up to this size are copied with one Copy Blob From URL (its own limit)
    sync_copy_size = 256 * MiB
    #: larger ones in blocks of this size (or part_size, if larger); no memory of ours
    copy_block_size = 256 * MiB

    def __init__(self, service: BlobServiceClient, container: str, prefix: str = "", *,
                 block_size: int = 8 * MiB, upload_concurrency: int = 3,
                 session: requests.Session | None = None):
        self.service = service
        # the pooled HTTP session the SDK's transport uses (read_many reuses it)
        self._session = session
        self.container = service.get_container_client(container)
        self.prefix = prefix
        self.part_size = block_size
        self.upload_concurrency = upload_concurrency
        self._delegation_key = None
        self._delegation_lock = threading.Lock()
        self._sas: tuple[str, dt.datetime] | None = None  # _read_sas's, with its expiry

    @classmethod
    def from_settings(cls, settings) -> AzureStorage:
        container = settings.get_value("storage.container", as_str)
        prefix = parse_prefix(settings.get_value("storage.prefix", as_str, ""))
        parallelism = cls._parallelism(settings)
        block_size = cls._part_size(settings, "storage.part_size", 8 * MiB, 1 * MiB)
        if block_size > _MAX_BLOCK:
            raise ConfigError("storage.part_size", "Azure blocks are at most 4000 MiB")
        session = pooled(requests.Session(), parallelism)
        sizes = dict(
            # Anything larger than one block is staged block by block: memory holds a few
            # blocks whatever the file's size, and the blob appears only at commit.
            max_single_put_size=block_size, max_block_size=block_size,
            min_large_block_upload_threshold=1 * MiB + 1,
            max_single_get_size=block_size, max_chunk_get_size=block_size,
            transport=RequestsTransport(session=session, session_owner=True),
        )
        opt = cls._optional
        connection_string = opt(settings, "storage.connection_string")
        account_url = opt(settings, "storage.account_url")
        try:
            if connection_string:
                service = BlobServiceClient.from_connection_string(connection_string, **sizes)
            elif account_url:
                if not urlparse(account_url).scheme:
                    raise ConfigError("storage.account_url",
                                      "expected https://<account>.blob.core.windows.net")
                service = BlobServiceClient(account_url, credential=cls._credential(settings),
                                            **sizes)
            else:
                raise ConfigError("storage.connection_string", "is required (or set "
                                  "storage.account_url with a key, a SAS or default "
                                  "credentials)")
        except ValueError as exc:
            key = "storage.connection_string" if connection_string else "storage.account_url"
            raise ConfigError(key, str(exc)) from None
        self = cls(service, container, prefix, block_size=block_size, session=session)
        self._common_settings(settings, parallelism)
        if self.redirect_expires is not None and not self._can_sign():
            raise ConfigError("storage.redirect", "signing download URLs needs the account "
                              "key or default (Entra ID) credentials, not a SAS token")
        self._check("storage.connection_string" if connection_string else "storage.account_url")
        return self

    def _check(self, where_key: str) -> None:
        """List one blob: proves the container exists and the credentials may list it (which
        the rebuild needs anyway), so a bad setting stops the start."""
        try:
            pages = self.container.list_blobs(name_starts_with=self.prefix,
                                              results_per_page=1).by_page()
            next(iter(next(pages, [])), None)
        except ResourceNotFoundError:
            raise ConfigError("storage.container", f"container "
                              f"{self.container.container_name!r} does not exist") from None
        except ClientAuthenticationError as exc:
            raise ConfigError(where_key, f"may not list container "
                              f"{self.container.container_name!r}: {exc.message}") from None
        except (AzureError, requests.RequestException) as exc:
            raise ConfigError(where_key, f"cannot reach Blob Storage: "
                              f"{getattr(exc, 'message', exc)}") from None

    @classmethod
    def _credential(cls, settings):
        account_key = cls._optional(settings, "storage.account_key")
        sas_token = cls._optional(settings, "storage.sas_token")
        if account_key and sas_token:
            raise ConfigError("storage.sas_token", "set either storage.account_key or "
                              "storage.sas_token, not both")
        if account_key:
            account_name = cls._optional(settings, "storage.account_name")
            # The SDK reads the account name from the URL unless told.
            return {"account_name": account_name, "account_key": account_key} \
                if account_name else account_key
        if sas_token:
            return sas_token.lstrip("?")
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise ConfigError("storage.account_key", "set storage.account_key or "
                              "storage.sas_token, or pip install azure-identity to use "
                              "default credentials") from None
        return DefaultAzureCredential()

    def _blob(self, key: str):
        return self.container.get_blob_client(self.prefix + check_key(key))

    # --- writes --------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        blob = self._blob(key)
        with _errors(key):
            answer = blob.upload_blob(stream, length=size, overwrite=True,
                                      content_settings=_OCTET,
                                      max_concurrency=self.upload_concurrency)
        if size is None:
            return self.stat(key)
        return ObjectInfo(key, size, answer.get("last_modified"))

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """A copy inside the storage account; not a byte passes through this process.

        Copy Blob From URL copies synchronously (up to 256 MiB); a larger blob is staged
        block by block from the source (Put Block From URL) and committed like put()
        commits, so the new blob appears whole or not at all. Not the asynchronous Copy
        Blob: it can stay pending, and a copy that fails leaves an empty blob behind.
        Both read the source through its URL, and the service needs that read authorized
        on its own, even within the account (see _source).
        """
        source, target = self._blob(src_key), self._blob(dst_key)
        with _errors(src_key):
            props = source.get_blob_properties()
        if source.blob_name == target.blob_name:
            return ObjectInfo(src_key, props.size, props.last_modified)
        if props.size > self.sync_copy_size:
            return self._copy_blocks(src_key, dst_key, props)
        url, auth = self._source(src_key)
        with _errors(src_key):
            answer = target.start_copy_from_url(
                url, requires_sync=True, **auth,
                # the bytes of the version whose size we report
                source_etag=props.etag, source_match_condition=MatchConditions.IfNotModified)
        if answer.get("copy_status") != "success":
            raise StorageError(f"azure: {dst_key}: the copy ended {answer.get('copy_status')}")
        return ObjectInfo(dst_key, props.size, answer.get("last_modified"))

    def _source(self, key: str) -> tuple[str, dict]:
        """A copy's source: the blob's URL, and how the service is to read it.

        With an account key the URL carries a SAS signed for it; a configured SAS is in
        every blob URL already; with Entra ID credentials our token goes along
        (x-ms-copy-source-authorization), so no user delegation key is needed.
        """
        credential = self.service.credential
        if not getattr(credential, "account_key", None) and hasattr(credential, "get_token"):
            with _errors(key):
                token = credential.get_token(_STORAGE_SCOPE).token
            return self._blob(key).url, {"source_authorization": f"Bearer {token}"}
        return self.signed_url(key, _COPY_SAS_SECONDS) or self._blob(key).url, {}

    def _copy_blocks(self, src_key: str, dst_key: str, props) -> ObjectInfo:
        """Stage the source's bytes as blocks of the target, a few at a time, and commit."""
        target, size = self._blob(dst_key), props.size
        block = min(_MAX_BLOCK, max(self.part_size, self.copy_block_size,
                                    -(-size // _MAX_BLOCKS)))
        # Our own ids: a concurrent copy or upload to the same name stages others.
        run = uuid.uuid4().hex
        ids = [base64.b64encode(f"{run}-{n:06d}".encode()).decode()
               for n in range(-(-size // block))]

        def stage(n: int) -> None:
            offset = n * block
            url, auth = self._source(src_key)  # fresh for each: a long copy outlives a SAS
            target.stage_block_from_url(ids[n], url, source_offset=offset,
                                        source_length=min(block, size - offset), **auth)

        try:
            with ThreadPoolExecutor(self.upload_concurrency,
                                    thread_name_prefix="azure-copy") as pool:
                list(pool.map(stage, range(len(ids))))
        except HttpResponseError as exc:
            if exc.error_code != "APINotImplemented":
                raise _translate(exc, src_key) from exc
            # Azurite has no Put Block From URL: through this process, in bounded chunks.
            log.warning("the store cannot copy blocks from a URL: copying %s through "
                        "pypirepo", src_key)
            return super().copy(src_key, dst_key)
        except (AzureError, requests.RequestException) as exc:
            raise _translate(exc, src_key) from exc
        with _errors(src_key):
            current = self._blob(src_key).get_blob_properties().etag
        # Blocks staged from two versions would mix them: commit only if no write came
        # in between (an ETag never comes back to an earlier value).
        if current != props.etag:
            raise StorageError(f"azure: {src_key} was rewritten while it was copied")
        with _errors(dst_key):
            answer = target.commit_block_list(ids, content_settings=_OCTET)
        return ObjectInfo(dst_key, size, answer.get("last_modified"))

    def delete(self, key: str) -> None:
        try:
            with _errors(key):
                self._blob(key).delete_blob(delete_snapshots="include")
        except ObjectNotFound:
            pass

    # --- reads ---------------------------------------------------------------------------

    def open(self, key: str, start: int = 0, stop: int | None = None) -> BinaryIO:
        blob = self._blob(key)
        if stop is not None and stop <= start:
            self.stat(key)  # still say when the object is missing
            return io.BytesIO(b"")
        length = None if stop is None else stop - start
        try:
            ranged = start or length is not None
            downloader = blob.download_blob(offset=start if ranged else None, length=length,
                                            max_concurrency=1)
        except HttpResponseError as exc:
            if exc.status_code == 416:  # past the end of an existing blob: nothing to read
                self.stat(key)
                return io.BytesIO(b"")
            raise _translate(exc, key) from exc
        except (AzureError, requests.RequestException) as exc:
            raise _translate(exc, key) from exc
        return io.BufferedReader(ChunkStream(downloader.chunks(),
                                             lambda exc: _translate(exc, key)))

    def read_bytes(self, key: str) -> bytes:
        with _errors(key):
            return self._blob(key).download_blob(max_concurrency=1).readall()

    def _read_sas(self) -> str | None:
        """A read-only SAS for the container, for _read_one's plain GETs (None: use the SDK).

        Signing costs tens of microseconds, a share of what the plain GET saves, so one SAS
        serves every GET until it nears its expiry (two threads may both renew it: harmless).
        """
        credential = self.service.credential
        if not getattr(credential, "account_key", None):
            return None  # a configured SAS is already in every blob URL; else the SDK
        now = dt.datetime.now(dt.timezone.utc)
        cached = self._sas
        if cached is not None and cached[1] - now > _SAS_RENEW:
            return cached[0]
        expiry = now + dt.timedelta(hours=1)
        sas = generate_container_sas(
            self.service.account_name, self.container.container_name,
            account_key=credential.account_key, permission=ContainerSasPermissions(read=True),
            start=now - _CLOCK_SKEW, expiry=expiry)
        self._sas = (sas, expiry)
        return sas

    def _read_one(self, key: str) -> bytes | None:
        """One small object for read_many (a rebuild reads one record per file).

        The SDK's download path (a pipeline of policies, a downloader object, its first
        ranged request) costs more CPU than a small record's request; a plain GET with a
        SAS costs a fraction. Anything but a 200 or a BlobNotFound goes the SDK's way, with
        its retries and error handling.
        """
        url = self._blob(key).url
        sas = self._read_sas()
        if sas is not None:
            url += ("&" if "?" in url else "?") + sas
        if "sig=" in url and self._session is not None:
            try:
                answer = self._session.get(url, timeout=(10, 60))
            except requests.RequestException:
                answer = None
            if answer is not None:
                if answer.status_code == 200:
                    return answer.content
                if answer.status_code == 404 and \
                        answer.headers.get("x-ms-error-code") == "BlobNotFound":
                    return None
        return super()._read_one(key)

    def stat(self, key: str) -> ObjectInfo:
        with _errors(key):
            props = self._blob(key).get_blob_properties()
        return ObjectInfo(key, props.size, props.last_modified)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        cut = len(self.prefix)
        with _errors():
            for blob in self.container.list_blobs(name_starts_with=self.prefix + prefix,
                                                  results_per_page=5000):
                yield ObjectInfo(blob.name[cut:], blob.size, blob.last_modified, blob.etag)

    # --- signed URLs ---------------------------------------------------------------------

    def _can_sign(self) -> bool:
        credential = self.service.credential
        return bool(getattr(credential, "account_key", None)) or hasattr(credential, "get_token")

    def _user_delegation_key(self, expiry: dt.datetime):
        """With Entra ID credentials a SAS is signed by a key the service lends us; reuse
        it while it outlives the URL being signed."""
        with self._delegation_lock:
            key = self._delegation_key
            if key is None or dt.datetime.fromisoformat(
                    key.signed_expiry.replace("Z", "+00:00")) < expiry:
                now = dt.datetime.now(dt.timezone.utc)
                with _errors():
                    key = self.service.get_user_delegation_key(
                        now - _CLOCK_SKEW, max(expiry, now + dt.timedelta(days=1)))
                self._delegation_key = key
            return key

    def signed_url(self, key: str, expires: int, filename: str | None = None) -> str | None:
        if not self._can_sign():
            return None
        blob = self._blob(key)
        now = dt.datetime.now(dt.timezone.utc)
        expiry = now + dt.timedelta(seconds=int(expires))
        credential = self.service.credential
        signing = {}
        if getattr(credential, "account_key", None):
            signing["account_key"] = credential.account_key
        else:
            signing["user_delegation_key"] = self._user_delegation_key(expiry)
        sas = generate_blob_sas(
            account_name=self.service.account_name, container_name=blob.container_name,
            blob_name=blob.blob_name, permission=BlobSasPermissions(read=True),
            expiry=expiry, start=now - _CLOCK_SKEW,
            content_disposition=f'attachment; filename="{filename}"' if filename else None,
            content_type="application/octet-stream", **signing)
        return f"{blob.url}?{sas}"

    def close(self) -> None:
        self.service.close()
