"""Reading metadata out of archives that inflate far past their size, or are damaged."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile

import pytest

from pypirepo import distinfo

PKG_INFO = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nAuthor: J\xc3\xbcrgen\n"


class Zeros(io.RawIOBase):
    """n zero bytes, without holding them."""

    def __init__(self, n: int):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def tar_gz(members: list[tuple[str, int | bytes]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = data if isinstance(data, int) else len(data)
            tf.addfile(info, io.BufferedReader(Zeros(data)) if isinstance(data, int)
                       else io.BytesIO(data))
    buf.seek(0)
    return buf


BIG = 4 * distinfo.TAR_SCAN_MIN // 3  # past the scan budget of a small file


def test_a_gzip_bomb_before_pkg_info_is_not_inflated():
    """An sdist of a few hundred KB whose first member inflates past the budget: it is
    taken as an sdist without PKG-INFO at once, not inflated for seconds."""
    bomb = tar_gz([("demo-1.0/aaa-data", BIG), ("demo-1.0/PKG-INFO", PKG_INFO)])
    assert len(bomb.getvalue()) * distinfo.TAR_SCAN_RATIO < distinfo.TAR_SCAN_MIN
    started = time.perf_counter()
    assert distinfo.sdist_metadata(bomb, "demo-1.0.tar.gz") is None
    assert time.perf_counter() - started < 0.05


def test_pkg_info_after_ordinary_data_is_found():
    honest = tar_gz([("demo-1.0/LICENSE", b"MIT\n" * 1000), ("demo-1.0/PKG-INFO", PKG_INFO)])
    assert distinfo.sdist_metadata(honest, "demo-1.0.tar.gz") == PKG_INFO


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_pkg_info_that_inflates_past_the_limit_is_refused(kind):
    size = distinfo.MAX_METADATA + 1
    if kind == "tar":
        archive = tar_gz([("demo-1.0/PKG-INFO", size)])
    else:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, \
                zf.open("demo-1.0/PKG-INFO", "w") as out:
            out.write(bytes(size))
        archive.seek(0)
    with pytest.raises(distinfo.InvalidDistribution, match="PKG-INFO is too large"):
        distinfo.sdist_metadata(archive, f"demo-1.0.{'tar.gz' if kind == 'tar' else 'zip'}")


@pytest.mark.parametrize("filename,data", [
    ("demo-1.0.tar.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage" * 50),
    ("demo-1.0.zip", b"PK\x05\x06" + b"\xff" * 18),
    ("demo-1.0-py3-none-any.whl", b"PK\x03\x04" + b"\x00" * 200),
])
def test_damaged_archives_are_invalid_distributions(filename, data):
    reader = distinfo.wheel_metadata if filename.endswith(".whl") else distinfo.sdist_metadata
    with pytest.raises(distinfo.InvalidDistribution):
        reader(io.BytesIO(data), filename)


def test_metadata_is_read_as_utf8():
    assert distinfo.parse_metadata(PKG_INFO)["author"] == "Jürgen"
