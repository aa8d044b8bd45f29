"""The Storage contract (pypirepo.interfaces.Storage), one suite over every backend.

local runs on a temporary folder; s3, gcs and azure on moto, fake-gcs-server and Azurite
started as real processes (tests/emulators.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests

from pypirepo.interfaces import InvalidKey, ObjectNotFound, Storage, StorageError
from pypirepo.settings import ConfigError

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024


def test_put_then_read_back(store):
    info = store.put("packages/demo/demo-1.0.tar.gz", io.BytesIO(b"x" * 1000), 1000)
    assert info.key == "packages/demo/demo-1.0.tar.gz"
    assert info.size == 1000
    assert store.read_bytes("packages/demo/demo-1.0.tar.gz") == b"x" * 1000
    with store.open("packages/demo/demo-1.0.tar.gz") as f:
        assert f.read() == b"x" * 1000
    stat = store.stat("packages/demo/demo-1.0.tar.gz")
    assert stat.size == 1000
    assert stat.modified is not None and abs(stat.modified.timestamp() - time.time()) < 300
    assert store.exists("packages/demo/demo-1.0.tar.gz")
    # Times are aware and in UTC wherever they come from (a HEAD or a listing).
    (listed,) = store.list("packages/demo/")
    assert stat.modified.utcoffset() == listed.modified.utcoffset() == dt.timedelta(0)
    assert abs((listed.modified - stat.modified).total_seconds()) < 2


def test_put_without_a_size(store):
    store.put("a/unsized.bin", io.BytesIO(b"abc" * 100))
    assert store.read_bytes("a/unsized.bin") == b"abc" * 100


def test_empty_object(store):
    store.put_bytes("empty", b"")
    assert store.read_bytes("empty") == b""
    assert store.stat("empty").size == 0
    assert store.open("empty", 0, 10).read() == b""


@pytest.mark.parametrize("start, stop", [(0, 10), (10, None), (250, 750), (990, 2000),
                                         (999, 1000), (500, 500), (1000, None), (2000, None)])
def test_ranged_read(store, start, stop):
    data = bytes(range(256)) * 4  # 1024 bytes, each offset distinct mod 256
    data = data[:1000]
    store.put_bytes("r/range.bin", data)
    with store.open("r/range.bin", start, stop) as f:
        got = f.read()
    assert got == data[start:stop]


def test_small_reads_of_a_stream(store):
    data = hashlib.shake_256(b"s").digest(300_000)
    store.put_bytes("r/stream.bin", data)
    parts = []
    with store.open("r/stream.bin", 1) as f:
        while chunk := f.read(7777):
            assert len(chunk) <= 7777
            parts.append(chunk)
    assert b"".join(parts) == data[1:]


def test_missing_object_is_our_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.stat("packages/nope/nope-1.0.tar.gz")
    with pytest.raises(ObjectNotFound):
        store.open("packages/nope/nope-1.0.tar.gz")
    with pytest.raises(ObjectNotFound):
        store.open("packages/nope/nope-1.0.tar.gz", 5, 10)
    with pytest.raises(ObjectNotFound):
        store.read_bytes("packages/nope/nope-1.0.tar.gz")
    assert not store.exists("packages/nope/nope-1.0.tar.gz")
    # a missing object is not an error to delete
    store.delete("packages/nope/nope-1.0.tar.gz")


def test_delete(store):
    store.put_bytes("d/one", b"1")
    store.put_bytes("d/two", b"2")
    store.delete("d/one")
    assert not store.exists("d/one")
    assert [o.key for o in store.list("d/")] == ["d/two"]
    with pytest.raises(ObjectNotFound):
        store.read_bytes("d/one")


def test_overwrite_replaces_the_whole_object(store):
    store.put_bytes("o/file", b"first version, rather long")
    store.put_bytes("o/file", b"second")
    assert store.read_bytes("o/file") == b"second"
    assert store.stat("o/file").size == 6
    assert [o.key for o in store.list("o/")] == ["o/file"]


def test_list_by_prefix(store):
    objects = {"p/a/1.whl": b"1", "p/a/2.whl": b"22", "p/ab/3.whl": b"333",
               "p/b/4.whl": b"4444", "q/5": b"55555"}
    for key, data in objects.items():
        store.put_bytes(key, data)
    assert {o.key: o.size for o in store.list("p/a/")} == {"p/a/1.whl": 1, "p/a/2.whl": 2}
    assert {o.key for o in store.list("p/a")} == {"p/a/1.whl", "p/a/2.whl", "p/ab/3.whl"}
    assert {o.key for o in store.list("p/")} == {k for k in objects if k.startswith("p/")}
    assert {o.key: o.size for o in store.list()} == {k: len(v) for k, v in objects.items()}
    assert list(store.list("nothing/")) == []


@pytest.mark.parametrize("key", [
    "packages/ünïcode/ünïcode-1.0.tar.gz",
    "packages/漢字/漢字-2.0-py3-none-any.whl",
    "files/with space+plus%percent&amp;=eq?q#hash.bin",
    "files/emoji-\N{SNAKE}.txt",
])
def test_unicode_and_odd_names(store, key):
    store.put_bytes(key, key.encode())
    assert store.read_bytes(key) == key.encode()
    assert store.stat(key).size == len(key.encode())
    assert [o.key for o in store.list(key.split("/")[0] + "/")] == [key]
    store.delete(key)
    assert not store.exists(key)


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../b", "a//b", "a/./b",
                                 "back\\slash", "nul\x00byte"])
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        store.stat(key)


def test_read_many(store):
    keys = [f"m/{i:03d}.json" for i in range(60)]
    for key in keys[:50]:
        store.put_bytes(key, key.encode())
    got = dict(store.read_many(keys))
    assert set(got) == set(keys)
    for key in keys[:50]:
        assert got[key] == key.encode()
    for key in keys[50:]:
        assert got[key] is None


@pytest.mark.backends("s3", "gcs", "azure")  # the local backend has a folder, not a prefix
def test_prefix_isolates_indexes_sharing_a_bucket(storage_settings, store, make_store):
    other = make_store(dict(storage_settings, **{"storage.prefix": "other-" + uuid.uuid4().hex}))
    store.put_bytes("packages/x/x-1.tar.gz", b"mine")
    other.put_bytes("packages/x/x-1.tar.gz", b"theirs")
    assert store.read_bytes("packages/x/x-1.tar.gz") == b"mine"
    assert [o.key for o in other.list()] == ["packages/x/x-1.tar.gz"]
    other.delete("packages/x/x-1.tar.gz")
    assert store.read_bytes("packages/x/x-1.tar.gz") == b"mine"


class Failing(io.RawIOBase):
    """A client upload that breaks off after `fail_after` bytes."""

    def __init__(self, fail_after: int):
        self.left = fail_after

    def readable(self):
        return True

    def readinto(self, target):
        if self.left <= 0:
            raise OSError("the client went away")
        n = min(len(target), self.left)
        target[:n] = b"z" * n
        self.left -= n
        return n


@pytest.mark.parametrize("fail_after", [0, 100, 20 * MiB], ids=["at-once", "small", "multipart"])
def test_failed_upload_leaves_nothing(store, fail_after):
    size = 40 * MiB  # what the client announced: beyond one part, so multipart is used
    with pytest.raises(OSError, match="went away"):
        store.put("f/broken.whl", io.BufferedReader(Failing(fail_after), MiB), size)
    assert not store.exists("f/broken.whl")
    assert list(store.list("f/")) == []


def test_failed_overwrite_keeps_the_old_object(store):
    store.put_bytes("f/kept.whl", b"the good one")
    with pytest.raises(OSError):
        store.put("f/kept.whl", io.BufferedReader(Failing(20 * MiB), MiB), 40 * MiB)
    assert store.read_bytes("f/kept.whl") == b"the good one"
    assert [o.key for o in store.list("f/")] == ["f/kept.whl"]


def stream_check(settings: dict, size: int, *flags: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "stream_check.py"),
                          json.dumps(settings), str(size), *flags],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["read"] == size and report["stat_size"] == size
    assert report["sha_out"] == report["sha_in"]
    assert report["copy_size"] == size and report["copy_sha"] == report["sha_in"]
    return report


def test_large_file_streams_with_flat_memory(storage_settings):
    """200 MB up, down and copied inside the store in a fresh process: its peak RSS must not
    follow the file size. S3 copies it in two parts (over copy_part_size)."""
    size = 200 * 1000 * 1000
    started = time.monotonic()
    report = stream_check(storage_settings, size)
    grew_up = report["after_put"] - report["base"]
    grew_down = report["after_get"] - report["base"]
    grew_copy = report["after_copy"] - report["base"]
    print(f"{storage_settings['pypirepo.storage']}: 200 MB up+down+copy in "
          f"{time.monotonic() - started:.1f}s, peak RSS +{grew_up / MiB:.1f} MiB up, "
          f"+{grew_down / MiB:.1f} MiB down, +{grew_copy / MiB:.1f} MiB copy "
          f"(base {report['base'] / MiB:.0f} MiB)")
    # A few parts in flight, never the file: a tenth of it is already generous.
    assert grew_up < 40 * MiB
    assert grew_down < 40 * MiB
    assert grew_copy < 40 * MiB


@pytest.mark.backends("local")
def test_large_copy_without_hard_links_streams_with_flat_memory(storage_settings):
    """Where linking fails, the local backend copies the bytes, a chunk at a time."""
    report = stream_check(storage_settings, 200 * 1000 * 1000, "--no-link")
    assert report["after_copy"] - report["base"] < 40 * MiB


# --- copies inside the store -----------------------------------------------------------------


def test_copy_a_small_object(store):
    store.put_bytes("c/dev/demo-1.0.tar.gz", b"release bytes")
    info = store.copy("c/dev/demo-1.0.tar.gz", "c/release/demo-1.0.tar.gz")
    assert info.key == "c/release/demo-1.0.tar.gz" and info.size == 13
    assert info.modified is not None and info.modified.utcoffset() == dt.timedelta(0)
    assert abs(info.modified.timestamp() - time.time()) < 300
    assert store.read_bytes("c/release/demo-1.0.tar.gz") == b"release bytes"
    assert store.stat("c/release/demo-1.0.tar.gz").size == 13
    # the source is untouched
    assert store.read_bytes("c/dev/demo-1.0.tar.gz") == b"release bytes"
    assert {o.key: o.size for o in store.list("c/")} == {
        "c/dev/demo-1.0.tar.gz": 13, "c/release/demo-1.0.tar.gz": 13}


def test_copy_an_object_of_several_parts(store):
    data = hashlib.shake_256(b"copy").digest(20 * MiB + 123)  # beyond one upload part
    store.put_bytes("c/dev/big.whl", data)
    assert store.copy("c/dev/big.whl", "c/release/big.whl").size == len(data)
    assert store.stat("c/release/big.whl").size == len(data)
    assert hashlib.sha256(store.read_bytes("c/release/big.whl")).digest() == \
        hashlib.sha256(data).digest()
    assert hashlib.sha256(store.read_bytes("c/dev/big.whl")).digest() == \
        hashlib.sha256(data).digest()


@pytest.mark.backends("s3", "azure")
def test_copy_in_parts(store):
    """The path large objects take (S3's multipart copy, Azure's staged blocks), on a
    small one: the thresholds lowered so that 20 MiB takes three parts."""
    if store.alias == "s3":
        store.copy_part_size = 5 * MiB  # parts of part_size (8 MiB), the larger
    else:
        store.sync_copy_size = store.copy_block_size = 4 * MiB
    data = hashlib.shake_256(b"parts").digest(20 * MiB + 7)
    store.put_bytes("c/dev/parts.whl", data)
    store.put_bytes("c/release/parts.whl", b"an older, different file")
    assert store.copy("c/dev/parts.whl", "c/release/parts.whl").size == len(data)
    assert store.read_bytes("c/release/parts.whl") == data
    assert store.read_bytes("c/dev/parts.whl") == data
    assert sorted(o.key for o in store.list("c/")) == ["c/dev/parts.whl",
                                                        "c/release/parts.whl"]


def test_copy_replaces_an_existing_object(store):
    store.put_bytes("c/release/x-1.0.whl.metadata", b"an older and longer metadata file")
    store.put_bytes("c/dev/x-1.0.whl.metadata", b"Metadata-Version: 2.1")
    info = store.copy("c/dev/x-1.0.whl.metadata", "c/release/x-1.0.whl.metadata")
    assert info.size == 21
    assert store.read_bytes("c/release/x-1.0.whl.metadata") == b"Metadata-Version: 2.1"
    assert store.stat("c/release/x-1.0.whl.metadata").size == 21
    assert sorted(o.key for o in store.list("c/release/")) == ["c/release/x-1.0.whl.metadata"]
    # and again: a copy over an earlier copy of the same object
    store.copy("c/dev/x-1.0.whl.metadata", "c/release/x-1.0.whl.metadata")
    assert store.read_bytes("c/release/x-1.0.whl.metadata") == b"Metadata-Version: 2.1"
    assert sorted(o.key for o in store.list("c/")) == ["c/dev/x-1.0.whl.metadata",
                                                        "c/release/x-1.0.whl.metadata"]


def test_copy_onto_itself_changes_nothing(store):
    store.put_bytes("c/same.json", b"{}")
    assert store.copy("c/same.json", "c/same.json").size == 2
    assert store.read_bytes("c/same.json") == b"{}"
    assert [o.key for o in store.list("c/")] == ["c/same.json"]


def test_copy_of_a_missing_object(store):
    with pytest.raises(ObjectNotFound):
        store.copy("c/dev/nope-1.0.tar.gz", "c/release/nope-1.0.tar.gz")
    assert not store.exists("c/release/nope-1.0.tar.gz")
    store.put_bytes("c/release/kept.tar.gz", b"kept")
    with pytest.raises(ObjectNotFound):
        store.copy("c/dev/kept.tar.gz", "c/release/kept.tar.gz")
    assert store.read_bytes("c/release/kept.tar.gz") == b"kept"


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../b", "a//b", "a/./b",
                                 "back\\slash", "nul\x00byte", "trailing/"])
def test_copy_refuses_invalid_keys(store, key):
    store.put_bytes("c/valid", b"x")
    with pytest.raises(InvalidKey):
        store.copy(key, "c/target")
    with pytest.raises(InvalidKey):
        store.copy("c/valid", key)
    assert [o.key for o in store.list()] == ["c/valid"]


def test_copy_many(store):
    pairs = []
    for i in range(12):
        store.put_bytes(f"c/dev/p{i}.json", f"record {i}".encode() * (i + 1))
        pairs.append((f"c/dev/p{i}.json", f"c/release/p{i}.json"))
    infos = store.copy_many(pairs)
    assert [i.key for i in infos] == [dst for _src, dst in pairs]
    assert [i.size for i in infos] == [len(f"record {i}") * (i + 1) for i in range(12)]
    for i, (_src, dst) in enumerate(pairs):
        assert store.read_bytes(dst) == f"record {i}".encode() * (i + 1)
    with pytest.raises(ObjectNotFound):
        store.copy_many([("c/dev/p0.json", "c/other/p0.json"),
                         ("c/dev/missing.json", "c/other/missing.json"),
                         ("c/dev/p1.json", "c/other/p1.json"),
                         ("c/dev/p2.json", "c/other/p2.json")])
    assert not store.exists("c/other/missing.json")
    with pytest.raises(InvalidKey):  # checked before anything is copied
        store.copy_many([("c/dev/p3.json", "c/other/p3.json"), ("c/dev/p4.json", "../p4")])
    assert not store.exists("c/other/p3.json")


def test_the_default_copy_works_on_every_backend(store):
    """Storage.copy, what a backend without its own copy gets: through this process."""
    data = hashlib.shake_256(b"default").digest(10 * MiB + 1)
    store.put_bytes("c/dev/d.whl", data)
    store.put_bytes("c/release/d.whl", b"old")
    info = Storage.copy(store, "c/dev/d.whl", "c/release/d.whl")
    assert info.key == "c/release/d.whl" and info.size == len(data)
    assert store.read_bytes("c/release/d.whl") == data
    with pytest.raises(ObjectNotFound):
        Storage.copy(store, "c/dev/missing.whl", "c/release/missing.whl")
    with pytest.raises(InvalidKey):
        Storage.copy(store, "c/dev/d.whl", "../d.whl")
    assert sorted(o.key for o in store.list()) == ["c/dev/d.whl", "c/release/d.whl"]


@pytest.mark.backends("s3")
def test_s3_copy_never_downloads(store):
    """A copy is CopyObject, or UploadPartCopy for a large object: S3 moves the bytes, and
    no request of ours reads or sends the object's content."""
    operations = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name))
    store.put_bytes("c/dev/small.tar.gz", b"s" * 1000)
    store.put_bytes("c/dev/large.whl", b"l" * (12 * MiB))
    store.copy_part_size = 5 * MiB  # large.whl: two parts of part_size (8 MiB)
    operations.clear()

    store.copy_many([("c/dev/small.tar.gz", "c/release/small.tar.gz"),
                     ("c/dev/large.whl", "c/release/large.whl")])
    assert "CopyObject" in operations and operations.count("UploadPartCopy") == 2
    assert not {"GetObject", "PutObject", "UploadPart"} & set(operations), operations
    assert store.read_bytes("c/release/large.whl") == b"l" * (12 * MiB)


@pytest.mark.backends("s3")
def test_s3_copy_many_lists_the_sources_instead_of_asking_for_each(store, monkeypatch):
    """One listing per source folder gives copy_many what copy() asks for with a HEAD per
    object; sources it does not show (beyond its budget, rewritten since) still copy."""
    operations = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name))
    release = [f"c/dev/demo/demo-1.0-{i}-py3-none-any.whl" for i in range(6)]
    for key in release:
        store.put_bytes(key, key.encode())
        store.put_bytes(key + ".metadata", b"Metadata-Version: 2.1")
    for i in range(40):  # other versions of the project, sorting between the release's files
        store.put_bytes(f"c/dev/demo/demo-1.0-{i}-old.tar.gz", b"old")
    store.put_bytes("c/dev/other/other-1.0.tar.gz", b"other")
    keys = [k for key in release for k in (key, key + ".metadata")]
    pairs = [(k, k.replace("c/dev/", "c/release/")) for k in keys]
    pairs.append(("c/dev/other/other-1.0.tar.gz", "c/release/other/other-1.0.tar.gz"))

    operations.clear()
    infos = store.copy_many(pairs)
    assert [i.size for i in infos] == [len(store.read_bytes(src)) for src, _dst in pairs]
    for src, dst in pairs:
        assert store.read_bytes(dst) == store.read_bytes(src)
    copies = [op for op in operations if op != "GetObject"]  # the read_bytes above
    assert copies.count("ListObjectsV2") == 2  # the two folders
    assert copies.count("CopyObject") == len(pairs)
    # 12 wanted among 52 objects in demo/: within the listing's budget, so no HEAD at all
    assert copies.count("HeadObject") == 0

    # A source rewritten between the listing and its copy: S3 refuses the listed ETag
    # (moto does not check x-amz-copy-source-if-match, so a hook answers as S3 does), and
    # that one object is looked at again and copied as it is now.
    listed_etag = {}

    def listing(keys, real=store._list_sources):
        found = real(keys)
        listed_etag.update((k, v[1]) for k, v in found.items())
        store.put_bytes(release[0], b"rewritten")  # just after the listing
        return found

    def check_etag(params, **_):
        asked = params["headers"].get("x-amz-copy-source-if-match")
        if asked is not None and asked == listed_etag.get(release[0]) and \
                params["headers"]["x-amz-copy-source"].endswith(quote(release[0])):
            return PreconditionFailed(), {"Error": {"Code": "PreconditionFailed",
                                                    "Message": "At least one of the "
                                                    "pre-conditions you specified did not "
                                                    "hold"}}
        return None

    monkeypatch.setattr(store, "_list_sources", listing)
    store.client.meta.events.register("before-call.s3.CopyObject", check_etag)
    operations.clear()
    infos = store.copy_many(pairs[:4])
    assert infos[0].size == len(b"rewritten")
    assert store.read_bytes(pairs[0][1]) == b"rewritten"
    assert operations.count("HeadObject") == 1


@pytest.mark.backends("s3")
def test_s3_copy_many_lists_no_further_than_its_budget(store):
    """Sources far apart in a crowded folder: the listing stops after about two objects
    per wanted key, and the sources beyond it are asked for one by one."""
    operations = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name))
    wanted = ["c/dev/wide/a1", "c/dev/wide/a2", "c/dev/wide/z1", "c/dev/wide/z2"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put_bytes(key, key.encode()),
                      wanted + [f"c/dev/wide/m{i:03d}" for i in range(150)]))
    operations.clear()
    infos = store.copy_many([(key, key.replace("dev", "release")) for key in wanted])
    assert [i.size for i in infos] == [len(key) for key in wanted]
    assert operations.count("ListObjectsV2") == 1
    assert operations.count("HeadObject") == 2  # z1 and z2, beyond the 108 listed
    for key in wanted:
        assert store.read_bytes(key.replace("dev", "release")) == key.encode()


class PreconditionFailed:
    """What botocore needs of an HTTP answer that a before-call hook returns."""

    status_code = 412
    headers: dict = {}
    content = b""


@pytest.mark.backends("s3")
@pytest.mark.parametrize("copy_part_size", [128 * MiB, 5 * MiB], ids=["whole", "parts"])
def test_s3_copy_writes_with_the_configured_encryption(storage_settings, make_store,
                                                       copy_part_size):
    """A copy takes encryption and storage class from the settings, as put() does."""
    store = make_store(dict(storage_settings, **{"storage.sse": "AES256",
                                                 "storage.storage_class": "standard_ia"}))
    plain = make_store(storage_settings)
    store.copy_part_size = copy_part_size
    plain.put_bytes("c/dev/enc.whl", b"e" * (9 * MiB))  # no encryption, standard class
    store.copy("c/dev/enc.whl", "c/release/enc.whl")
    head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + "c/release/enc.whl")
    assert head.get("ServerSideEncryption") == "AES256"
    assert head.get("StorageClass") == "STANDARD_IA"
    assert head["ContentLength"] == 9 * MiB


@pytest.mark.backends("azure")
@pytest.mark.parametrize("credential", ["account_key", "sas_token"])
def test_azure_copy_with_each_credential(request, storage_settings, make_store, credential):
    """Copy Blob From URL reads its source through the source's URL, which must carry its
    own authorization even inside the account (Azurite does not check that one, so the
    URL is also fetched anonymously here, where it does). Entra ID credentials, which
    send a token along instead, need TLS on Azurite and are not tried here."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from emulators import AZURITE_ACCOUNT, AZURITE_KEY

    emulator = request.getfixturevalue("azure_server")
    settings = {k: v for k, v in storage_settings.items() if k != "storage.connection_string"}
    settings["storage.account_url"] = emulator.account_url
    if credential == "account_key":
        settings["storage.account_key"] = AZURITE_KEY
    else:
        settings["storage.sas_token"] = generate_container_sas(
            AZURITE_ACCOUNT, settings["storage.container"], account_key=AZURITE_KEY,
            permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True,
                                               add=True, create=True),
            expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    store = make_store(settings)
    store.put_bytes("c/dev/cred.whl", b"credential " + credential.encode())
    source_url, auth = store._source("c/dev/cred.whl")
    assert auth == {}
    assert requests.get(source_url, timeout=10).content == b"credential " + credential.encode()
    assert requests.get(source_url.split("?")[0], timeout=10).status_code in (401, 403, 404)
    store.copy("c/dev/cred.whl", "c/release/cred.whl")
    assert store.read_bytes("c/release/cred.whl") == b"credential " + credential.encode()


# --- signed URLs ---------------------------------------------------------------------------


def test_signed_url_downloads_the_object(store):
    key = "packages/signed/signed ünï-1.0.tar.gz"
    store.put_bytes(key, b"signed content")
    url = store.signed_url(key, 300, "signed-1.0.tar.gz")
    if store.alias == "local":
        assert url is None  # the local backend streams through the app
        return
    assert url and url.startswith("http://127.0.0.1:")
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.content == b"signed content"
    # No gzip decoding by clients: the type is always a plain byte stream.
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in answer.headers


@pytest.mark.backends("azure")  # only Azurite verifies signatures; moto and fake-gcs accept any
def test_azure_checks_its_signatures(store):
    store.put_bytes("sig/file.whl", b"data")
    url = store.signed_url("sig/file.whl", 300)
    assert requests.get(url, timeout=10).status_code == 200
    tampered = url.replace("sp=r", "sp=rw")
    assert requests.get(tampered, timeout=10).status_code == 403
    expired = store.signed_url("sig/file.whl", -60)
    assert requests.get(expired, timeout=10).status_code == 403
    other = url.replace("sig/file.whl", "sig/other.whl")
    assert requests.get(other, timeout=10).status_code in (403, 404)


@pytest.mark.backends("gcs")
def test_gcs_signatures_verify_with_the_public_key(store, storage_settings):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    store.put_bytes("sig/file.whl", b"data")
    url = store.signed_url("sig/file.whl", 300, "file.whl")
    info = json.loads(Path(storage_settings["storage.credentials_file"]).read_text())
    public = serialization.load_pem_private_key(info["private_key"].encode(), None).public_key()

    def verify(url):
        sts, signature = gcs_string_to_sign(url)
        public.verify(signature, sts, padding.PKCS1v15(), hashes.SHA256())

    verify(url)
    with pytest.raises(InvalidSignature):
        verify(url.replace("sig/file.whl", "sig/evil.whl"))
    assert requests.get(url, timeout=10).content == b"data"


def gcs_string_to_sign(url: str) -> tuple[bytes, bytes]:
    """Rebuild the V4 string-to-sign of a signed URL (no emulator checks signatures)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    signature = bytes.fromhex(dict(query)["X-Goog-Signature"])
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query) if k != "X-Goog-Signature")
    canonical = "\n".join(["GET", parts.path, canonical_query, f"host:{parts.netloc}", "",
                           "host", "UNSIGNED-PAYLOAD"])
    params = dict(query)
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    sts = "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    return sts.encode(), signature


@pytest.mark.backends("s3", "gcs", "azure")
def test_a_missing_bucket_stops_the_start(storage_settings, make_store):
    """Checked once when the backend is built: the operator learns which setting is wrong."""
    kind = storage_settings["pypirepo.storage"]
    key = "storage.container" if kind == "azure" else "storage.bucket"
    with pytest.raises(ConfigError) as caught:
        make_store(dict(storage_settings, **{key: "no-such-bucket-x1"}))
    assert caught.value.key == key
    assert "no-such-bucket-x1" in str(caught.value)


@pytest.mark.backends("s3", "gcs", "azure")
def test_sdk_errors_come_out_as_storage_errors(request, storage_settings, make_store):
    """A bucket that disappears under a running index: our StorageError, never an SDK's
    exception, and never mistaken for a missing object."""
    kind = storage_settings["pypirepo.storage"]
    emulator = request.getfixturevalue(f"{kind}_server")
    bucket = emulator.create_bucket()
    key = "storage.container" if kind == "azure" else "storage.bucket"
    store = make_store(dict(storage_settings, **{key: bucket}))
    if kind == "s3":
        emulator.client().delete_bucket(Bucket=bucket)
    elif kind == "gcs":
        emulator.client().bucket(bucket).delete()
    else:
        emulator.client().delete_container(bucket)
    calls = [lambda: store.put_bytes("x", b"x"), lambda: list(store.list())]
    if kind != "gcs":
        # fake-gcs-server answers a download from a missing bucket with the same bare 404
        # as a missing object; real GCS says "The specified bucket does not exist", which
        # the backend looks for.
        calls += [lambda: store.read_bytes("x"), lambda: store.open("x", 1, 2)]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert not isinstance(caught.value, ObjectNotFound), caught.value
