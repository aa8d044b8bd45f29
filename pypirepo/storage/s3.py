"""Amazon S3 and S3-compatible stores (MinIO, Ceph, R2, ...) through boto3.

Writes are atomic because S3 makes an object visible only when its single PUT or its
CompleteMultipartUpload succeeds; a failed multipart upload is aborted, so it leaves
neither an object nor billed parts behind.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import BinaryIO

import boto3
import urllib3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from botocore.httpsession import get_cert_path

from ..interfaces import ObjectInfo, ObjectNotFound, StorageError
from ..settings import ConfigError, as_str, one_of
from .remote import MiB, ChunkStream, RemoteStorage, check_key, parse_prefix, read_full

log = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
# S3's own limits: parts are 5 MiB..5 GiB except the last, at most 10,000 of them.
_MIN_PART = 5 * MiB
_MAX_PARTS = 10_000
_SSE = ("AES256", "aws:kms", "aws:kms:dsse")


def _code(exc: BaseException | None) -> str:
    """The error code of an S3 answer ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _translate(exc: BaseException, key: str | None = None) -> BaseException:
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _NOT_FOUND and key is not None:
            return ObjectNotFound(key)
        if code == "NoSuchBucket":
            return StorageError(f"s3: the bucket does not exist ({exc})")
        return StorageError(f"s3: {key or ''}: {exc}")
    if isinstance(exc, (BotoCoreError, Boto3Error)):
        return StorageError(f"s3: {key or ''}: {exc}")
    # urllib3 errors while a body streams
    if isinstance(exc, (OSError, ValueError)) or type(exc).__module__.startswith("urllib3"):
        return StorageError(f"s3: {key or ''}: {exc}")
    return exc


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # botocore gives listings in the local zone and HEADs in UTC; callers compare them
    return value.astimezone(dt.timezone.utc) if value is not None else None


@contextmanager
def _errors(key: str | None = None):
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise _translate(exc, key) from exc


class S3Storage(RemoteStorage):
    alias = "s3"
    #: objects up to this size (or part_size, if larger) are copied with one CopyObject,
    #: larger ones in parts of it (S3 allows up to 5 GiB in one CopyObject)
    copy_part_size = 128 * MiB

    def __init__(self, client, bucket: str, prefix: str = "", *, extra_args: dict | None = None,
                 part_size: int = 8 * MiB, upload_concurrency: int = 3):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        # Encryption and storage class go on every write (single PUT or multipart).
        self.extra_args = dict(extra_args or {})
        self.part_size = part_size
        self.upload_concurrency = upload_concurrency
        self._upload_pool = ThreadPoolExecutor(upload_concurrency,
                                               thread_name_prefix="s3-upload")
        self._direct = None

    def _direct_reads(self) -> None:
        """A connection pool for read_many's presigned GETs, verifying TLS as boto3 does."""
        self._direct = urllib3.PoolManager(
            num_pools=4, maxsize=self.parallelism + 8, block=False,
            cert_reqs="CERT_REQUIRED", ca_certs=get_cert_path(True))

    @classmethod
    def from_settings(cls, settings) -> S3Storage:
        bucket = settings.get_value("storage.bucket", as_str)
        prefix = parse_prefix(settings.get_value("storage.prefix", as_str, ""))
        opt = cls._optional
        access_key = opt(settings, "storage.access_key")
        secret_key = opt(settings, "storage.secret_key")
        if bool(access_key) != bool(secret_key):
            missing = "storage.secret_key" if access_key else "storage.access_key"
            raise ConfigError(missing, "storage.access_key and storage.secret_key go together")
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=opt(settings, "storage.session_token"),
                region_name=opt(settings, "storage.region"),
                profile_name=opt(settings, "storage.profile"),
            )
        except ProfileNotFound as exc:
            raise ConfigError("storage.profile", str(exc)) from None
        if session.get_credentials() is None:
            raise ConfigError("storage.access_key", "no AWS credentials found: set "
                              "storage.access_key and storage.secret_key, or provide them the "
                              "usual AWS way (environment, ~/.aws, instance or task role)")

        extra: dict[str, str] = {}
        sse = opt(settings, "storage.sse")
        kms_key_id = opt(settings, "storage.kms_key_id")
        if sse is not None and sse not in _SSE:
            raise ConfigError("storage.sse", f"expected one of {', '.join(_SSE)}, got {sse!r}")
        if kms_key_id and sse is None:
            sse = "aws:kms"
        if kms_key_id and not sse.startswith("aws:kms"):
            raise ConfigError("storage.kms_key_id", "needs storage.sse = aws:kms")
        if sse:
            extra["ServerSideEncryption"] = sse
        if kms_key_id:
            extra["SSEKMSKeyId"] = kms_key_id
        storage_class = opt(settings, "storage.storage_class")
        if storage_class:
            extra["StorageClass"] = storage_class.upper()

        parallelism = cls._parallelism(settings)
        addressing = settings.get_value("storage.addressing_style",
                                        one_of("auto", "path", "virtual"), "auto")
        config = Config(
            # Every read_many worker and upload part needs its own pooled connection.
            max_pool_connections=parallelism + 8,
            s3={"addressing_style": addressing},
            # Presigned URLs must be SigV4: KMS-encrypted objects and newer regions need it.
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=60,
        )
        endpoint_url = opt(settings, "storage.endpoint_url")
        try:
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise ConfigError("storage.endpoint_url" if endpoint_url else "storage.region",
                              str(exc)) from None
        part_size = cls._part_size(settings, "storage.part_size", 8 * MiB, _MIN_PART)
        self = cls(client, bucket, prefix, extra_args=extra, part_size=part_size)
        self._common_settings(settings, parallelism)
        self._direct_reads()
        self._check("storage.endpoint_url" if endpoint_url else "storage.region")
        return self

    def _check(self, where_key: str) -> None:
        """List one object: proves the bucket exists and the credentials may list it (which
        the rebuild needs anyway), so a bad setting stops the start, not the first upload."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise ConfigError("storage.bucket", f"bucket {self.bucket!r} does not exist")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
                        "AllAccessDisabled", "InvalidToken", "ExpiredToken"):
                raise ConfigError("storage.access_key", f"may not list bucket {self.bucket!r}"
                                  f" with these credentials ({code})")
            raise ConfigError("storage.bucket", str(exc)) from None
        except BotoCoreError as exc:
            raise ConfigError(where_key, f"cannot reach S3: {exc}") from None

    # --- keys ----------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    # --- writes --------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        name = self._name(key)
        part_size = self.part_size
        if size is not None and size > part_size * _MAX_PARTS:
            # Grow the parts so that the largest object still fits in 10,000 of them.
            part_size = -(-size // _MAX_PARTS)
        first = read_full(stream, part_size)
        if len(first) < part_size:
            with _errors(key):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=first,
                                       ContentType="application/octet-stream",
                                       **self.extra_args)
            written = len(first)
        else:
            written = self._multipart(key, name, first, stream, part_size)
        return ObjectInfo(key, written, dt.datetime.now(dt.timezone.utc))

    def _multipart(self, key: str, name: str, first: bytes, stream: BinaryIO,
                   part_size: int) -> int:
        with _errors(key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, ContentType="application/octet-stream",
                **self.extra_args)["UploadId"]
        written = 0
        parts: list[dict] = []
        pending: deque = deque()
        try:
            number, data = 1, first
            while data:
                if number > _MAX_PARTS:
                    raise StorageError(f"s3: {key}: more than {_MAX_PARTS} parts; "
                                       "raise storage.part_size")
                # A bounded window of parts in flight keeps memory flat (one part each)
                # while the next part is read from the client.
                pending.append(self._upload_pool.submit(self._upload_part, key, name,
                                                        upload_id, number, data))
                written += len(data)
                if len(pending) >= self.upload_concurrency:
                    parts.append(pending.popleft().result())
                data = None  # drop our reference so the part can be freed once sent
                number += 1
                data = read_full(stream, part_size)
            while pending:
                parts.append(pending.popleft().result())
            with _errors(key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            for future in pending:
                future.cancel()
            for future in pending:
                try:
                    future.result()
                except BaseException:  # noqa: BLE001 - we are failing already
                    pass
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                   UploadId=upload_id)
            except (ClientError, BotoCoreError):
                log.warning("could not abort the multipart upload of %s; a bucket lifecycle "
                            "rule for incomplete uploads will clean it", key, exc_info=True)
            raise
        return written

    def _upload_part(self, key, name, upload_id, number, data) -> dict:
        with _errors(key):
            answer = self.client.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                             PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """A copy inside S3: CopyObject, or a multipart copy (UploadPartCopy) of a large
        object; not a byte passes through this process.

        One CopyObject is one request, what the small files of a release want. A large
        object is copied in parts instead: a single request copying gigabytes can run past
        the client's read timeout on stores that keep quiet until they are done, and parts
        copy in parallel. The cut-off costs no memory either way.
        """
        self._name(dst_key)
        with _errors(src_key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(src_key))
        return self._copy(src_key, dst_key, head["ContentLength"], head["ETag"],
                          head.get("LastModified"))

    def copy_many(self, pairs: Iterable[tuple[str, str]]) -> list[ObjectInfo]:
        """copy() of each pair, with one listing of the sources' folder where copy() asks
        for each source alone (its size, whether it exists): a release's files sit side by
        side, so that halves the requests of a promote. A source the listing missed, or
        one rewritten since, gets copy()'s own look."""
        pairs = list(pairs)
        for src_key, dst_key in pairs:  # nothing is copied (nor listed) when a key is bad
            check_key(src_key), check_key(dst_key)
        listed = self._list_sources({src for src, _dst in pairs}) if len(pairs) >= 4 else {}

        def copy(src_key: str, dst_key: str) -> ObjectInfo:
            found = listed.get(src_key)
            if found is None:
                return self.copy(src_key, dst_key)
            try:
                return self._copy(src_key, dst_key, *found)
            except StorageError as exc:
                if _code(exc.__cause__) not in ("PreconditionFailed", "412"):
                    raise
                return self.copy(src_key, dst_key)  # rewritten since it was listed

        return self._copy_all(pairs, copy)

    def _list_sources(self, keys: set[str]) -> dict[str, tuple[int, str, dt.datetime]]:
        """(size, ETag, modified) of each key that a listing of its folder shows.

        Each folder is listed from just before its first wanted key to its last, and no
        further than about two objects per wanted key, so that the listing never costs
        more than the HEADs it saves; whatever lies beyond is left to copy()."""
        by_folder: dict[str, list[str]] = {}
        for key in keys:
            by_folder.setdefault(key.rpartition("/")[0], []).append(key)
        found = {}
        cut = len(self.prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        for folder, wanted in by_folder.items():
            first, last = self.prefix + min(wanted), self.prefix + max(wanted)
            budget = 2 * len(wanted) + 100
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=self.prefix + (folder + "/" if folder else ""),
                StartAfter=first[:-1],  # lists `first` itself, and sorts before it
                # pages no longer than the budget: the store lists a whole page anyway
                PaginationConfig={"PageSize": min(budget, 1000), "MaxItems": budget})
            with _errors():
                for obj in (obj for page in pages for obj in page.get("Contents", ())):
                    if obj["Key"] > last:
                        break
                    found[obj["Key"][cut:]] = (obj["Size"], obj["ETag"], obj["LastModified"])
        return {key: found[key] for key in keys if key in found}

    def _copy(self, src_key: str, dst_key: str, size: int, etag: str,
              src_modified: dt.datetime | None) -> ObjectInfo:
        """Copy the source version with this size and ETag (S3 refuses if it changed)."""
        src, dst = self._name(src_key), self._name(dst_key)
        if src == dst:
            return ObjectInfo(src_key, size, _utc(src_modified))
        source = {"Bucket": self.bucket, "Key": src}
        part_size = max(self.part_size, self.copy_part_size)
        if size <= part_size:
            with _errors(src_key):
                # The copy takes encryption and storage class as put() writes them, not
                # the source's; the content type is copied with the rest of the metadata.
                answer = self.client.copy_object(
                    Bucket=self.bucket, Key=dst, CopySource=source, CopySourceIfMatch=etag,
                    **self.extra_args)
            modified = answer.get("CopyObjectResult", {}).get("LastModified")
        else:
            # boto3's managed copy: parts pinned to the source's ETag, aborted on failure.
            config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                    max_concurrency=self.upload_concurrency,
                                    use_threads=True)
            with _errors(src_key):
                self.client.copy(source, self.bucket, dst, ExtraArgs=dict(self.extra_args),
                                 Config=config)
            modified = None
        return ObjectInfo(dst_key, size, _utc(modified) or dt.datetime.now(dt.timezone.utc))

    def delete(self, key: str) -> None:
        with _errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    # --- reads ---------------------------------------------------------------------------

    def open(self, key: str, start: int = 0, stop: int | None = None) -> BinaryIO:
        name = self._name(key)
        if stop is not None and stop <= start:
            self.stat(key)  # still say when the object is missing
            return io.BytesIO(b"")
        args = {}
        if start or stop is not None:
            args["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=name, **args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                self.stat(key)  # past the end of an existing object: nothing to read
                return io.BytesIO(b"")
            raise _translate(exc, key) from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise _translate(exc, key) from exc
        body = answer["Body"]
        return io.BufferedReader(ChunkStream(
            body.iter_chunks(256 * 1024), lambda exc: _translate(exc, key), body.close))

    def read_bytes(self, key: str) -> bytes:
        with _errors(key):
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
            try:
                return answer["Body"].read()
            except Exception as exc:
                raise _translate(exc, key) from exc

    def stat(self, key: str) -> ObjectInfo:
        with _errors(key):
            answer = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        return ObjectInfo(key, answer["ContentLength"], _utc(answer.get("LastModified")))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        cut = len(self.prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        with _errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix,
                                           PaginationConfig={"PageSize": 1000}):
                for obj in page.get("Contents", ()):
                    yield ObjectInfo(obj["Key"][cut:], obj["Size"], _utc(obj.get("LastModified")),
                                     obj.get("ETag"))

    def _read_one(self, key: str) -> bytes | None:
        """One small object for read_many (a rebuild reads one record per file).

        botocore spends about 2 ms of CPU on every call (event hooks, signing, parsing),
        which caps a rebuild of tens of thousands of records at a few hundred a second
        whatever the parallelism. A presigned GET on a pooled connection costs a third of
        that. Anything but a plain 200 or NoSuchKey goes the SDK's way, with its retries
        and error parsing, so this path never decides an error on its own.
        """
        name = self._name(key)
        if self._direct is not None:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=900)
            try:
                answer = self._direct.request("GET", url, retries=False, decode_content=False,
                                              timeout=urllib3.Timeout(connect=10, read=60))
            except urllib3.exceptions.HTTPError:
                answer = None
            if answer is not None:
                if answer.status == 200:
                    return answer.data
                if answer.status == 404 and b"<Code>NoSuchKey</Code>" in answer.data:
                    return None
        return super()._read_one(key)

    def signed_url(self, key: str, expires: int, filename: str | None = None) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._name(key),
                  "ResponseContentType": "application/octet-stream"}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        with _errors(key):
            return self.client.generate_presigned_url("get_object", Params=params,
                                                      ExpiresIn=int(expires))

    def close(self) -> None:
        self._upload_pool.shutdown(wait=False)
        if self._direct is not None:
            self._direct.clear()
        self.client.close()
