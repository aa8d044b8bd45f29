"""The JSON API's shape (/pypi/<project>/json), as the public index answers it."""

from __future__ import annotations

from .. import names
from ..records import format_time
from . import file_url


def release_json(files: list, display: str, serial: int, project: str,
                 version: str | None, base: str) -> dict | None:
    """The JSON API's answer for a project's files (File rows), the latest release or
    `version`; None when that version is not among them."""
    by_version: dict[str, list] = {}
    for f in files:
        by_version.setdefault(f.version, []).append(f)
    if version is None:
        chosen = latest_version(by_version)
    else:
        wanted = names.canonical_version(version)
        chosen = next((v for v in by_version if names.canonical_version(v) == wanted), None)
        if chosen is None:
            return None
    release = by_version[chosen]
    info_src = next((f.info for f in release if f.packagetype == names.WHEEL and f.info),
                    None) or next((f.info for f in release if f.info), {}) or {}
    data = {
        "info": _info(info_src, display, chosen, release, base, project),
        "last_serial": serial,
        "urls": [_json_file(base, project, f) for f in release],
        "vulnerabilities": [],
    }
    if version is None:
        data["releases"] = {
            v: [_json_file(base, project, f) for f in fs]
            for v, fs in sorted(by_version.items(), key=lambda kv: names.version_key(kv[0]))
        }
    return data


def latest_version(by_version: dict[str, list]) -> str:
    """The version a project page shows first: the highest that is not yanked whole and
    not a pre-release, else the highest not yanked, else the highest (by_version: each
    version -> its files, which have .yanked)."""
    def rank(v):
        key = names.version_key(v)
        yanked = all(f.yanked for f in by_version[v])
        pre = key[0] == 1 and key[1].is_prerelease
        return (not yanked, not pre, key)

    return max(by_version, key=rank)


_INFO_KEYS = (
    "author", "author_email", "description_content_type", "download_url", "home_page",
    "keywords", "license", "license_expression", "maintainer", "maintainer_email", "summary",
)


def _info(src: dict, display: str, version: str, release: list, base: str,
          project: str) -> dict:
    info = {k: src.get(k) for k in _INFO_KEYS}
    urls = {}
    for entry in src.get("project_urls") or []:
        label, _, url = entry.partition(",")
        if url.strip():
            urls[label.strip()] = url.strip()
    yanked = all(f.yanked for f in release)
    info.update(
        name=display,
        version=version,
        classifiers=src.get("classifiers") or [],
        requires_dist=src.get("requires_dist") or None,
        requires_python=src.get("requires_python") or release[0].requires_python or "",
        provides_extra=src.get("provides_extra") or None,
        dynamic=src.get("dynamic") or None,
        license_files=src.get("license_files") or None,
        platform=None,
        project_urls=urls or None,
        bugtrack_url=None,
        docs_url=None,
        description=src.get("description") or "",
        downloads={"last_day": -1, "last_month": -1, "last_week": -1},
        package_url=f"{base}/project/{project}/",
        project_url=f"{base}/project/{project}/",
        release_url=f"{base}/project/{project}/{version}/",
        yanked=yanked,
        yanked_reason=(release[0].yanked_reason if yanked else None),
    )
    return info


def _json_file(base: str, project: str, f) -> dict:
    return {
        "comment_text": "",
        "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
        "digests": {"md5": f.md5, "sha256": f.sha256, "blake2b_256": f.blake2_256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": f.md5,
        "packagetype": f.packagetype,
        "python_version": f.python_version,
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": format_time(f.upload_time),
        "url": base + file_url("", project, f.filename),
        "yanked": f.yanked,
        "yanked_reason": f.yanked_reason,
        "origin": f.origin,
    }
