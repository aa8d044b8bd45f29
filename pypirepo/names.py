"""Project names, versions and distribution filenames.

`packaging` does the parsing; this module adds the index's own rules on top: which names a
project may have (warehouse's grammar), which files count as distributions, and what a
filename must look like for the name and version it is uploaded under.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

# PEP 508 / warehouse: ASCII letters and digits, with . _ - inside.
PROJECT_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Filenames we store: printable ASCII without path separators. A conservative superset of
# what wheel and sdist names can contain (local versions bring '+').
FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
# Storage keeps <filename>, <filename>.json (the record) and <filename>.metadata side by
# side, and a local file system takes 255 bytes per name: a longer filename could be
# stored while its record could not, leaving an orphan that is fetched again and again.
MAX_FILENAME = 255 - len(".metadata")

WHEEL = "bdist_wheel"
SDIST = "sdist"
SDIST_EXTENSIONS = (".tar.gz", ".zip")


class InvalidFilename(ValueError):
    """A filename that is not a distribution we accept; the text says why."""


def normalize(name: str) -> str:
    """PEP 503 normalization: lower case, runs of -_. become one '-'."""
    return canonicalize_name(name)


def is_valid_project_name(name: str) -> bool:
    return bool(PROJECT_NAME_RE.match(name or ""))


def is_safe_filename(filename: str) -> bool:
    return bool(filename) and len(filename) <= MAX_FILENAME and bool(FILENAME_RE.match(filename))


def length_note(filename: str) -> str:
    return f" (longer than {MAX_FILENAME} bytes)" if len(filename) > MAX_FILENAME else ""


def parse_version(text: str) -> Version:
    return Version(text)


def version_key(text: str):
    """Sort key for versions that tolerates an unparsable legacy version."""
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def canonical_version(text: str) -> str:
    """A key under which PEP 440-equal versions agree (1.0 == 1.0.0 == 1)."""
    try:
        return canonicalize_version(Version(text))
    except InvalidVersion:
        return text


@dataclass(frozen=True)
class DistFile:
    """What a distribution filename says about itself."""

    filename: str
    project: str  # normalized
    version: str  # as written in the filename
    packagetype: str  # bdist_wheel | sdist
    python_version: str  # wheel python tag(s) or 'source'


def parse_filename(filename: str) -> DistFile:
    """Parse a wheel or sdist filename; raises InvalidFilename with the reason."""
    if not is_safe_filename(filename):
        raise InvalidFilename(f"Invalid filename {filename!r}{length_note(filename)}.")
    if filename.endswith(".whl"):
        try:
            name, version, _build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            raise InvalidFilename(str(exc)) from None
        pythons = sorted({t.interpreter for t in tags})
        return DistFile(filename, str(name), filename.split("-")[1], WHEEL, ".".join(pythons))
    if filename.endswith(SDIST_EXTENSIONS):
        try:
            name, version = parse_sdist_filename(filename)
        except InvalidSdistFilename as exc:
            raise InvalidFilename(str(exc)) from None
        raw_version = filename.rsplit("-", 1)[1]
        for ext in SDIST_EXTENSIONS:
            if raw_version.endswith(ext):
                raw_version = raw_version[: -len(ext)]
        return DistFile(filename, str(name), raw_version, SDIST, "source")
    raise InvalidFilename(
        f"Invalid file extension: {filename!r}. Use .whl, .tar.gz or .zip (PEP 527)."
    )


def filename_key(filename: str) -> str:
    """What two filenames that name the same distribution have in common.

    The wheel and sdist filename specifications let one distribution be spelled several
    ways: the name part in any case with any run of -_. (`Foo_Bar`, `foo.bar`), the
    version in any PEP 440 spelling (`1.0`, `1.00`, `1.0.0`), a compressed tag set in
    any order (`py2.py3`, `py3.py2`). Installers treat them as one file, so the overwrite
    rule does too: the key is the normalized spelling, lower case. A name that does not
    parse (an old upstream file) is its own key, in lower case, so that even a
    case-insensitive store keeps one object per key.

    Rows keep the key (files.filename_key): a change to this rule needs a migration
    that computes them again. It runs for every record of a rebuild, hence no packaging
    parser here (a third of a rebuild's time), only what the key needs.
    """
    lowered = filename.lower()
    if lowered.endswith(".whl"):
        parts = lowered[:-4].split("-")
        version = _canonical(parts[1]) if len(parts) in (5, 6) else None
        if version is not None and parts[0]:
            build = f"-{parts[2]}" if len(parts) == 6 else ""
            tags = "-".join(".".join(sorted(p.split("."))) for p in parts[-3:])
            return f"{_SEPARATOR_RUNS.sub('_', parts[0])}-{version}{build}-{tags}.whl"
        return lowered
    for ext in SDIST_EXTENSIONS:
        if lowered.endswith(ext):
            name, sep, version = lowered[: -len(ext)].rpartition("-")
            canonical = _canonical(version) if sep and name else None
            if canonical is not None:
                return f"{_SEPARATOR_RUNS.sub('_', name)}-{canonical}{ext}"
    return lowered


_SEPARATOR_RUNS = re.compile(r"[-_.]+")
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


@functools.lru_cache(maxsize=4096)
def _canonical(version: str) -> str | None:
    """canonicalize_version, or None for an invalid version. Most versions are plain
    releases (1.2.0), canonical without a Version object: no leading zeros in a part,
    no trailing .0 parts."""
    if _PLAIN_RELEASE.fullmatch(version):
        parts = [int(p) for p in version.split(".")]
        while len(parts) > 1 and not parts[-1]:
            parts.pop()
        return ".".join(map(str, parts))
    try:
        return canonicalize_version(Version(version))
    except InvalidVersion:
        return None


def check_upload_filename(filename: str, name: str, version: str, filetype: str) -> DistFile:
    """Check that an uploaded file's name agrees with the form's name, version and type.

    Warehouse's rules, relaxed where a private index should be: local versions and any
    platform tag are allowed, and legacy sdist names that don't follow PEP 625 are
    accepted as long as they parse to the same project and version.
    """
    dist = parse_filename(filename)
    if filetype not in (WHEEL, SDIST):
        raise InvalidFilename(f"Unknown type of file {filetype!r}. Use a known file type.")
    if dist.packagetype != filetype:
        raise InvalidFilename(
            f"Invalid file extension: {filename!r} is not a {filetype} distribution."
        )
    if dist.project != normalize(name):
        expected = normalize(name).replace("-", "_")
        raise InvalidFilename(
            f"Filename {filename!r} should contain the normalized project name "
            f"{expected!r}, not that of project {dist.project!r}."
        )
    try:
        same = Version(dist.version) == Version(version)
    except InvalidVersion:
        same = dist.version == version
    if not same:
        raise InvalidFilename(f"Version in filename should be {version!r} not {dist.version!r}.")
    return dist
