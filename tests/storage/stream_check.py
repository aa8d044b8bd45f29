"""Run in a fresh process: stream a large object into a backend and back, report memory.

    python stream_check.py '<settings json>' SIZE [--no-link]

Prints one JSON line: sha256 in and out, and ru_maxrss (peak RSS) after warming up, after
the upload, after the download and after a copy of the object inside the store (with the
sha256 of the copy read back). A fresh process, so that the peak belongs to this transfer
alone; the source stream is generated on the fly, never held whole. --no-link makes every
hard link fail, as on a filesystem without them: the local backend then copies bytes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import resource
import sys

from pypirepo.settings import Settings
from pypirepo.storage import storage_from_settings

MiB = 1024 * 1024


class Generated(io.RawIOBase):
    """size bytes of varied content made on the fly, hashed as they are read."""

    def __init__(self, size: int, seed: bytes = b"pypirepo"):
        self.size, self.pos = size, 0
        self.block = hashlib.shake_256(seed).digest(MiB)
        self.sha256 = hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, target):
        n = min(len(target), self.size - self.pos)
        if n <= 0:
            return 0
        # Rotate the block by the position so no two MiB are equal.
        offset = (self.pos // MiB * 7919 + self.pos) % MiB
        piece = (self.block[offset:] + self.block[:offset]) * (n // MiB + 2)
        target[:n] = piece[:n]
        self.sha256.update(piece[:n])
        self.pos += n
        return n

    def tell(self):
        return self.pos


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    settings, size = json.loads(sys.argv[1]), int(sys.argv[2])
    if "--no-link" in sys.argv[3:]:
        def no_link(*args, **kwargs):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

        os.link = no_link
    store = storage_from_settings(Settings(settings, environ={}))
    # Warm up with a few parts' worth, so pools, threads and buffers exist before we measure.
    warm = Generated(40 * MiB, b"warm")
    store.put("warm-up.bin", io.BufferedReader(warm, MiB), warm.size)
    with store.open("warm-up.bin") as f:
        while f.read(MiB):
            pass
    store.delete("warm-up.bin")
    base = peak_rss()

    source = Generated(size)
    store.put("big.bin", io.BufferedReader(source, MiB), size)
    after_put = peak_rss()
    out, got = hashlib.sha256(), 0
    with store.open("big.bin") as f:
        while True:
            chunk = f.read(MiB)
            if not chunk:
                break
            out.update(chunk)
            got += len(chunk)
    after_get = peak_rss()
    info = store.stat("big.bin")

    copied = store.copy("big.bin", "copy/big.bin")
    after_copy = peak_rss()
    copy_sha = hashlib.sha256()
    with store.open("copy/big.bin") as f:
        while chunk := f.read(MiB):
            copy_sha.update(chunk)
    store.delete("big.bin")
    store.delete("copy/big.bin")
    print(json.dumps({"sha_in": source.sha256.hexdigest(), "sha_out": out.hexdigest(),
                      "read": got, "stat_size": info.size, "base": base,
                      "after_put": after_put, "after_get": after_get,
                      "copy_size": copied.size, "copy_sha": copy_sha.hexdigest(),
                      "after_copy": after_copy, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
