"""The local backend's own guarantees: atomic writes and keys confined to the root."""

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
