"""Reading what a distribution says about itself: METADATA of a wheel, PKG-INFO of an sdist.

Only the metadata member is read, never the whole archive into memory.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from email.parser import BytesParser
from email.policy import compat32

from packaging.utils import canonicalize_name

# A METADATA file is small; anything bigger is not metadata we want to hold in memory.
MAX_METADATA = 10 * 1024 * 1024


class InvalidDistribution(ValueError):
    """The file is not a usable distribution; the text says why."""


def wheel_metadata(path, filename: str) -> bytes:
    """The verbatim bytes of <name>-<version>.dist-info/METADATA (PEP 658 wants them as-is)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidDistribution(f"Invalid distribution file. Not a zip archive: {exc}")
    with zf:
        name, version = filename.split("-")[:2]
        wanted = f"{name}-{version}.dist-info/"
        names = zf.namelist()
        dist_info = {n.split("/", 1)[0] + "/" for n in names if ".dist-info/" in n}
        if wanted not in dist_info:
            # Tolerate a dist-info folder that differs only in case or normalization.
            matches = [d for d in dist_info if _same_dist_info(d, wanted)]
            if len(matches) != 1:
                raise InvalidDistribution(
                    f"Invalid distribution file. Wheel does not contain {wanted}METADATA."
                )
            wanted = matches[0]
        for member in ("METADATA", "WHEEL"):
            if wanted + member not in names:
                raise InvalidDistribution(
                    f"Invalid distribution file. Wheel does not contain {wanted}{member}."
                )
        info = zf.getinfo(wanted + "METADATA")
        if info.file_size > MAX_METADATA:
            raise InvalidDistribution("Invalid distribution file. METADATA is too large.")
        try:
            return zf.read(info)
        except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
            raise InvalidDistribution(f"Invalid distribution file. Unreadable METADATA: {exc}")


def _same_dist_info(found: str, wanted: str) -> bool:
    def key(d):
        n, _, v = d[: -len(".dist-info/")].partition("-")
        return canonicalize_name(n), v.lower()

    return key(found) == key(wanted)


def sdist_metadata(path, filename: str) -> bytes | None:
    """PKG-INFO of an sdist, or None if it has none (old sdists; we accept them)."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for n in zf.namelist():
                    if n.count("/") == 1 and n.endswith("/PKG-INFO"):
                        return zf.read(n)[:MAX_METADATA]
            return None
        opened = (tarfile.open(path, "r:gz") if isinstance(path, (str, bytes, os.PathLike))
                  else tarfile.open(fileobj=path, mode="r:gz"))
        with opened as tf:
            for member in tf:
                if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                    if not member.isfile() or member.size > MAX_METADATA:
                        return None
                    return tf.extractfile(member).read()
            return None
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidDistribution(f"Invalid distribution file. Unreadable archive: {exc}")


_MULTI = {
    "classifier": "classifiers",
    "requires-dist": "requires_dist",
    "provides-extra": "provides_extra",
    "project-url": "project_urls",
    "platform": "platform",
    "dynamic": "dynamic",
    "license-file": "license_files",
}
_SINGLE = {
    "name": "name",
    "version": "version",
    "summary": "summary",
    "description-content-type": "description_content_type",
    "keywords": "keywords",
    "home-page": "home_page",
    "download-url": "download_url",
    "author": "author",
    "author-email": "author_email",
    "maintainer": "maintainer",
    "maintainer-email": "maintainer_email",
    "license": "license",
    "license-expression": "license_expression",
    "requires-python": "requires_python",
    "metadata-version": "metadata_version",
}


def parse_metadata(raw: bytes) -> dict:
    """Core metadata as the JSON API's `info` keys (description excluded: it can be huge)."""
    msg = BytesParser(policy=compat32).parsebytes(raw)
    info: dict = {}
    for header, key in _SINGLE.items():
        value = msg.get(header)
        if value is not None and str(value).strip() not in ("", "UNKNOWN"):
            info[key] = str(value).strip()
    for header, key in _MULTI.items():
        values = [str(v).strip() for v in msg.get_all(header) or [] if str(v).strip()]
        if values:
            info[key] = values
    return info
