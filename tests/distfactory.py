"""Real, installable wheels and sdists made in-process (no build backend, no network).

Used by the tests, the benchmarks and the fake upstream index. A wheel made here installs
with pip and uv: it has METADATA, WHEEL and a RECORD with hashes, and one module.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def metadata_text(name: str, version: str, requires_dist=(), requires_python=None,
                  summary=None, extra_headers=()) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             f"Summary: {summary or f'{name} test package'}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    lines += list(extra_headers)
    return "\n".join(lines) + "\n\n" + f"{name} is a package made for tests.\n"


def wheel_name(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}-{tag}.whl"


def sdist_name(name: str, version: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}.tar.gz"


def make_wheel(directory, name: str, version: str, *, requires_dist=(), requires_python=None,
               tag: str = "py3-none-any", payload_size: int = 0, metadata: str | None = None,
               module_source: str | None = None) -> Path:
    """Write a wheel into directory and return its path.

    payload_size adds an incompressible data file of that many bytes (for large-file tests).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dist = canonicalize_name(name).replace("-", "_")
    module = dist
    dist_info = f"{dist}-{version}.dist-info"
    meta = (metadata if metadata is not None else
            metadata_text(name, version, requires_dist, requires_python)).encode()
    files = {
        f"{module}/__init__.py": (module_source or f"__version__ = {version!r}\n").encode(),
        f"{dist_info}/METADATA": meta,
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: pypirepo-tests\nRoot-Is-Purelib: true\n"
            f"Tag: {tag}\n"
        ).encode(),
    }
    path = directory / wheel_name(name, version, tag)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        record = []
        stamp = (2020, 1, 1, 0, 0, 0)
        for arcname, data in files.items():
            zf.writestr(zipfile.ZipInfo(arcname, stamp), data)
            record.append(f"{arcname},{_record_hash(data)},{len(data)}")
        if payload_size:
            info = zipfile.ZipInfo(f"{module}/payload.bin", stamp)
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=payload_size > 2**31) as out:
                h = hashlib.sha256()
                left = payload_size
                while left:
                    chunk = os.urandom(min(left, 1 << 20))
                    out.write(chunk)
                    h.update(chunk)
                    left -= len(chunk)
            digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
            record.append(f"{module}/payload.bin,sha256={digest},{payload_size}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", stamp), "\n".join(record) + "\n")
    return path


def make_sdist(directory, name: str, version: str, *, requires_dist=(),
               requires_python=None) -> Path:
    """Write a PEP 625 sdist with PKG-INFO and a setuptools pyproject into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dist = canonicalize_name(name).replace("-", "_")
    top = f"{dist}-{version}"
    deps = ", ".join(repr(r) for r in requires_dist)
    rp = f"requires-python = {requires_python!r}\n" if requires_python else ""
    members = {
        "PKG-INFO": metadata_text(name, version, requires_dist, requires_python).encode(),
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n{rp}'
        ).encode(),
        f"{dist}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    path = directory / sdist_name(name, version)
    with tarfile.open(path, "w:gz") as tf:
        for arcname, data in members.items():
            info = tarfile.TarInfo(f"{top}/{arcname}")
            info.size = len(data)
            info.mtime = int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return path


def upload_fields(path: Path, name: str, version: str) -> dict:
    """The form fields twine would send for a file (for tests that post by hand)."""
    data = Path(path).read_bytes()
    is_wheel = str(path).endswith(".whl")
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if is_wheel else "sdist",
        "pyversion": "py3" if is_wheel else "source",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
