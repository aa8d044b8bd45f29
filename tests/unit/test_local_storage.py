"""The local backend's own guarantees: atomic writes and keys confined to the root."""

import errno
import io
import os

import pytest

from pypirepo.interfaces import InvalidKey, ObjectNotFound
from pypirepo.storage.local import LocalStorage


@pytest.fixture
def store(tmp_path):
    return LocalStorage(tmp_path / "root")


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "",
                                 "a\\..\\b", "a/\x00", "a/.tmp-x"])
def test_keys_cannot_escape(store, key):
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x")


def test_symlink_out_of_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        store.put_bytes("link/file", b"x")


class Exploding(io.RawIOBase):
    def __init__(self, good):
        self.good = good

    def readinto(self, b):
        if self.good <= 0:
            raise OSError("connection reset")
        n = min(len(b), self.good, 65536)
        b[:n] = b"x" * n
        self.good -= n
        return n


def test_failed_write_leaves_nothing_and_keeps_old(store):
    store.put_bytes("p/f", b"old")
    with pytest.raises(OSError):
        store.put("p/f", io.BufferedReader(Exploding(3 * 1024 * 1024)))
    assert store.read_bytes("p/f") == b"old"
    assert sorted(os.listdir(store.root / "p")) == ["f"]  # no temp file left behind
    with pytest.raises(OSError):
        store.put("p/new", io.BufferedReader(Exploding(10)))
    assert not store.exists("p/new")
    assert [o.key for o in store.list("p/")] == ["p/f"]


def test_ranges_stat_list_delete(store):
    store.put_bytes("a/b/c.txt", b"0123456789")
    store.put_bytes("a/d.txt", b"x")
    with store.open("a/b/c.txt", 2, 5) as f:
        assert f.read() == b"234"
    assert store.stat("a/b/c.txt").size == 10
    assert sorted(o.key for o in store.list("a/")) == ["a/b/c.txt", "a/d.txt"]
    assert [o.key for o in store.list("a/b")] == ["a/b/c.txt"]
    store.delete("a/b/c.txt")
    store.delete("a/b/c.txt")  # missing is fine
    with pytest.raises(ObjectNotFound):
        store.stat("a/b/c.txt")
    assert not (store.root / "a" / "b").exists()  # empty folders are tidied


# --- copy: a hard link where the filesystem allows it, a copy of the bytes where not ---------


def test_copy_is_a_hard_link(store):
    store.put_bytes("dev/p/p-1.0.whl", b"wheel")
    store.copy("dev/p/p-1.0.whl", "release/p/p-1.0.whl")
    src, dst = store.path("dev/p/p-1.0.whl"), store.path("release/p/p-1.0.whl")
    assert os.stat(src).st_ino == os.stat(dst).st_ino
    assert os.stat(dst).st_nlink == 2
    assert os.listdir(store.root / "release" / "p") == ["p-1.0.whl"]  # no temp file left
    # Objects are never changed in place: a new write to one name leaves the other alone.
    store.put_bytes("dev/p/p-1.0.whl", b"rewritten")
    assert store.read_bytes("release/p/p-1.0.whl") == b"wheel"
    store.delete("dev/p/p-1.0.whl")
    assert store.read_bytes("release/p/p-1.0.whl") == b"wheel"


def test_copy_again_over_its_own_link(store):
    """rename() does nothing when both names are links to one file: the temporary name
    it would have moved must not stay behind."""
    store.put_bytes("dev/f", b"x")
    store.copy("dev/f", "release/f")
    store.copy("dev/f", "release/f")
    assert os.listdir(store.root / "release") == ["f"]
    assert store.read_bytes("release/f") == b"x"


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP])
def test_copy_falls_back_to_the_bytes_when_linking_fails(store, monkeypatch, code):
    store.put_bytes("dev/f.tar.gz", b"sdist" * 1000)
    store.put_bytes("release/f.tar.gz", b"an older file")
    before = os.stat(store.path("release/f.tar.gz")).st_ino

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)
    info = store.copy("dev/f.tar.gz", "release/f.tar.gz")
    assert info.size == 5000
    assert store.read_bytes("release/f.tar.gz") == b"sdist" * 1000
    dst = os.stat(store.path("release/f.tar.gz"))
    assert dst.st_ino not in (before, os.stat(store.path("dev/f.tar.gz")).st_ino)
    assert dst.st_nlink == 1
    assert os.listdir(store.root / "release") == ["f.tar.gz"]


def test_copy_to_a_new_folder_and_from_a_missing_object(store):
    store.put_bytes("a/f", b"f")
    store.copy("a/f", "b/c/d/f")
    assert store.read_bytes("b/c/d/f") == b"f"
    with pytest.raises(ObjectNotFound):
        store.copy("a/missing", "b/new")
    with pytest.raises(ObjectNotFound):
        store.copy("a", "b/folder")  # a folder is no object
    assert not (store.root / "b" / "new").exists()


def test_copy_refuses_a_target_through_a_symlink_out_of_root(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "link").symlink_to(outside)
    store.put_bytes("f", b"x")
    with pytest.raises(InvalidKey):
        store.copy("f", "link/f")
    with pytest.raises(InvalidKey):
        store.copy("f", "a/.tmp-x")
    assert list(outside.iterdir()) == []
