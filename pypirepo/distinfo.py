"""Reading what a distribution says about itself: METADATA of a wheel, PKG-INFO of an sdist.

Only the metadata member is read, never the whole archive into memory.
"""

from __future__ import annotations

import os
import struct
import tarfile
import zipfile
import zlib
from email.parser import Parser
from email.policy import compat32

from packaging.utils import canonicalize_name

# A METADATA file is small; anything bigger is not metadata we want to hold in memory.
MAX_METADATA = 10 * 1024 * 1024
# How far into an sdist's decompressed tar stream PKG-INFO is looked for: a gzip member
# that inflates a thousandfold (a "bomb") must not cost a worker seconds of inflating.
# Real sdists inflate a few times over; past the budget the sdist is taken as one
# without PKG-INFO, as old sdists are.
TAR_SCAN_MIN = 4 * MAX_METADATA
TAR_SCAN_RATIO = 10
# What reading a damaged or hostile archive can raise besides its module's own error.
_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, RuntimeError, NotImplementedError,
                   struct.error, zlib.error, zipfile.BadZipFile, tarfile.TarError)


class InvalidDistribution(ValueError):
    """The file is not a usable distribution; the text says why."""


def wheel_metadata(path, filename: str) -> bytes:
    """The verbatim bytes of <name>-<version>.dist-info/METADATA (PEP 658 wants them as-is)."""
    try:
        zf = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as exc:
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
        return _zip_member(zf, zf.getinfo(wanted + "METADATA"), "METADATA")


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    """A small member, read only when its header says it is small (the reader stops at
    the header's size, so a member cannot inflate past it)."""
    if info.file_size > MAX_METADATA:
        raise InvalidDistribution(f"Invalid distribution file. {what} is too large.")
    try:
        return zf.read(info)
    except _ARCHIVE_ERRORS as exc:  # encrypted (RuntimeError), a bad deflate stream...
        raise InvalidDistribution(f"Invalid distribution file. Unreadable {what}: {exc}")


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
                for info in zf.infolist():
                    n = info.filename
                    if n.count("/") == 1 and n.endswith("/PKG-INFO"):
                        return _zip_member(zf, info, "PKG-INFO")
            return None
        budget = max(TAR_SCAN_MIN, TAR_SCAN_RATIO * _size(path))
        opened = (tarfile.open(path, "r:gz") if isinstance(path, (str, bytes, os.PathLike))
                  else tarfile.open(fileobj=path, mode="r:gz"))
        with opened as tf:
            while tf.offset <= budget and (member := tf.next()) is not None:
                if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                    if not member.isfile():
                        return None
                    if member.size > MAX_METADATA:
                        raise InvalidDistribution(
                            "Invalid distribution file. PKG-INFO is too large.")
                    return tf.extractfile(member).read()
            return None
    except InvalidDistribution:
        raise
    except _ARCHIVE_ERRORS as exc:
        raise InvalidDistribution(f"Invalid distribution file. Unreadable archive: {exc}")


def _size(path) -> int:
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.getsize(path)
    here = path.tell()
    try:
        return path.seek(0, os.SEEK_END)
    finally:
        path.seek(here)


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


# The long description is kept (the web UI renders it) up to this many characters; a
# longer one is left out, and its length noted, so that a record stays small enough to
# read back quickly in a rebuild.
MAX_DESCRIPTION = 512 * 1024


def parse_metadata(raw: bytes) -> dict:
    """Core metadata as the JSON API's `info` keys, with the long description.

    Core metadata is UTF-8 (BytesParser would read it as ASCII and mangle every other
    character); what is not UTF-8 (an old sdist's latin-1 PKG-INFO) keeps what it can.
    """
    msg = Parser(policy=compat32).parsestr(raw.decode("utf-8", "replace"))
    info: dict = {}
    keep_description(info, _description(msg))
    for header, key in _SINGLE.items():
        value = msg.get(header)
        if value is not None and str(value).strip() not in ("", "UNKNOWN"):
            info[key] = str(value).strip()
    for header, key in _MULTI.items():
        values = [str(v).strip() for v in msg.get_all(header) or [] if str(v).strip()]
        if values:
            info[key] = values
    return info


def _description(msg) -> str | None:
    """The body (metadata 2.1 on), else the Description header, its continuation lines'
    indent (8 spaces, or 7 and a "|") taken off as the specification says."""
    body = msg.get_payload()
    if isinstance(body, str) and body.strip():
        return body
    header = msg.get("Description")
    if header is None:
        return None
    lines = str(header).splitlines()
    for i in range(1, len(lines)):
        line = lines[i]
        if line.startswith("       |"):
            lines[i] = line[8:]
        elif line.startswith("        "):
            lines[i] = line[8:]
    text = "\n".join(lines)
    return text if text.strip() and text.strip() != "UNKNOWN" else None


def keep_description(info: dict, text: str | None) -> None:
    """Put a long description into info: whole, or its length when it is too long."""
    if not text:
        return
    if len(text) > MAX_DESCRIPTION:
        info["description_omitted"] = len(text)
    else:
        info["description"] = text
