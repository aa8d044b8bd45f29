"""What the web UI's browsing pages show, shaped for their templates: the repositories
on the home page, a repository's project list (paged, sorted, searched), a project page.

The data comes from the repositories (Repository.listing_ids, project_detail, file_info)
and their SQL from pypirepo.metadata.browse; nothing here renders HTML but a README
(pages.readme). Who may see what is the caller's Viewer: names are filtered before
anything is shown, and a list is read a page at a time only when the viewer may read
the whole repository (otherwise every matching name is read and filtered first, so that
neither the page nor the count shows a project the viewer may not read).

Lists, counts and project pages are kept per process under what they were built from
(the repositories' serials, the project's), so a page shown again costs a freshness read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup

from .. import names
from ..metadata.browse import SORTS, Browse, ProjectRow
from ..records import parse_time
from . import PageCache
from .jsonapi import latest_version
from .readme import ReadmeRenderer

PER_PAGE = 50
KIND_TEXT = {
    "hosted": "Packages published here",
    "proxy": "A cache of an upstream index",  # its URL follows
    "group": "One index over several repositories",
}


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as the access policy answers for one repository: whether they may
    read every project of it, and which of some names they may read."""

    reads_all: bool
    readable: Callable[[list[str]], list[str]]
    # A group's: (a member's id, names it answers for) -> those the viewer may read in
    # it. A group shows a project only where the member that answers it lets the viewer
    # read it (as its pages do); None: nothing to add to `readable`.
    readable_in: Callable[[int, list[str]], list[str]] | None = None
    # Who the viewer is, as far as the answers above go (the same key, the same
    # answers while the repository's serials stand); None: nothing is kept for them.
    key: object = None


# --- the home page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositoryCard:
    name: str
    kind: str
    description: str
    projects: int
    files: int
    is_default: bool
    members: tuple[str, ...] = ()
    upstream: str | None = None
    mode: str | None = None


# --- a repository's list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str  # normalized
    display_name: str
    summary: str | None
    version: str | None  # the latest
    last_upload: dt.datetime | None
    badges: tuple[str, ...]  # private, cached, promoted


@dataclass(frozen=True)
class Listing:
    query: str
    sort: str
    total: int
    entries: list[Entry]


# --- a project page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    version: str
    prerelease: bool
    yanked: bool
    yanked_reason: str | None
    upload_time: dt.datetime
    files: int


@dataclass(frozen=True)
class Origin:
    kind: str  # uploaded, cached, promoted
    who: str | None = None
    when: dt.datetime | None = None
    where: str | None = None  # the upstream's URL, or the repository promoted from


@dataclass(frozen=True)
class FileView:
    filename: str
    packagetype: str
    size: int
    sha256: str
    upload_time: dt.datetime
    uploader: str | None
    requires_python: str | None
    tags: tuple[str, str, str] | None  # a wheel's python, abi and platform tags
    yanked: bool
    yanked_reason: str | None
    origin: Origin


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    safe: bool  # http(s): shown as a link; anything else as text


@dataclass
class ProjectPage:
    name: str
    display_name: str
    version: str
    latest: str
    releases: list[Release]
    files: list[FileView]
    summary: str | None
    description: Markup | None
    description_omitted: int | None
    license: str | None
    authors: list[str]
    maintainers: list[str]
    links: list[Link]
    classifiers: list[str]
    requires_dist: list[str]
    requires_python: str | None
    keywords: str | None
    origins: list[Origin]
    holder: str  # the repository whose files these are
    release: Release = field(init=False)

    def __post_init__(self):
        self.release = next(r for r in self.releases
                            if names.canonical_version(r.version) ==
                            names.canonical_version(self.version))

    @property
    def is_latest(self) -> bool:
        return self.version == self.latest


def _readable_in_holders(viewer: Viewer, rows: list[ProjectRow]) -> list[ProjectRow]:
    """The rows whose holder (the member of a group each row comes from) lets the viewer
    read them."""
    if viewer.readable_in is None:
        return rows
    held: dict[int, list[str]] = {}
    for row in rows:
        held.setdefault(row.repository_id, []).append(row.name)
    keep = {(rid, name) for rid, names_ in held.items()
            for name in viewer.readable_in(rid, names_)}
    return [r for r in rows if (r.repository_id, r.name) in keep]


class UIPages:
    def __init__(self, db):
        self.db = db
        self.readme = ReadmeRenderer()
        self._counts = PageCache(256)
        self._lists = PageCache(1024)
        self._projects = PageCache(512)

    def _serials(self, ids: list[int]) -> tuple:
        return tuple(self.db.serials.repository(i) for i in ids)

    # --- home --------------------------------------------------------------------------------

    def repositories(self, work, repositories: list, default,
                     viewer_of: Callable[[object], Viewer] | None = None
                     ) -> list[RepositoryCard]:
        """A card for each repository given (those the viewer may read), with counts of
        what the viewer may list (viewer_of(repo); None: everything)."""
        cards = []
        for repo in repositories:
            viewer = viewer_of(repo) if viewer_of is not None else None
            projects, files = self.counts(work, repo) if viewer is None or viewer.reads_all \
                else self.visible_counts(work, repo, viewer)
            about = repo.describe()
            cards.append(RepositoryCard(
                repo.name, repo.kind, KIND_TEXT.get(repo.kind, repo.kind), projects, files,
                repo is default, tuple(about.get("members") or ()),
                about.get("upstream"), about.get("mode")))
        return cards

    def counts(self, work, repo) -> tuple[int, int]:
        """(projects, files) the repository lists, each name once."""
        ids = repo.listing_ids()
        if not ids:
            return 0, 0
        version = self._serials(ids)
        found = self._counts.get(("counts", repo.name), version)
        if found is None:
            browse = Browse(work.session)
            found = browse.count(ids), browse.file_count(ids)
            self._counts.put(("counts", repo.name), found, version)
        return found

    def visible_counts(self, work, repo, viewer: Viewer) -> tuple[int, int]:
        """(projects, files) of the repository's list as the viewer may see it: a count
        of everything would tell them that projects they can't see exist. Read whole and
        filtered, as their list of it is."""
        ids = repo.listing_ids()
        if not ids:
            return 0, 0
        version = self._serials(ids)
        cached = ("visible", repo.name, viewer.key)
        found = self._counts.get(cached, version) if viewer.key is not None else None
        if found is None:
            browse = Browse(work.session)
            rows = browse.projects(ids, "name", 0, None)
            keep = set(viewer.readable([r.name for r in rows]))
            rows = _readable_in_holders(viewer, [r for r in rows if r.name in keep])
            found = len(rows), browse.file_count_of([r.id for r in rows])
            if viewer.key is not None:
                self._counts.put(cached, found, version)
        return found

    # --- a repository's projects ---------------------------------------------------------

    def listing(self, work, repo, viewer: Viewer, query: str = "", sort: str = "name",
                offset: int = 0, limit: int = PER_PAGE) -> Listing:
        query = " ".join(query.split())[:200]
        sort = sort if sort in SORTS else "name"
        ids = repo.listing_ids()
        if not ids:
            return Listing(query, sort, 0, [])
        needle = names.normalize(query)
        browse = Browse(work.session)
        if viewer.reads_all:
            version = self._serials(ids)
            key = (repo.name, query, sort, offset, limit)
            found = self._lists.get(key, version)
            if found is None:
                if query:
                    rows, total = browse.search(ids, needle, query, sort, offset, limit)
                else:
                    rows = browse.projects(ids, sort, offset, limit)
                    total = self.counts(work, repo)[0]
                found = Listing(query, sort, total, self._entries(browse, rows))
                self._lists.put(key, found, version)
            # The policy has the last word on every name shown, also from the cache.
            keep = set(viewer.readable([e.name for e in found.entries]))
            if len(keep) == len(found.entries):
                return found
            return Listing(query, sort, found.total,
                           [e for e in found.entries if e.name in keep])
        # Not the whole repository: every match is filtered before one is counted or shown.
        rows = browse.search(ids, needle, query, sort, 0, None)[0] if query \
            else browse.projects(ids, sort, 0, None)
        keep = set(viewer.readable([r.name for r in rows]))
        rows = _readable_in_holders(viewer, [r for r in rows if r.name in keep])
        return Listing(query, sort, len(rows),
                       self._entries(browse, rows[offset:offset + limit]))

    def _entries(self, browse: Browse, rows: list[ProjectRow]) -> list[Entry]:
        facts: dict[int, list] = {}
        for fact in browse.release_facts([r.id for r in rows]):
            facts.setdefault(fact.project_id, []).append(fact)
        entries = []
        for row in rows:
            files = facts.get(row.id, [])
            by_version: dict[str, list] = {}
            for f in files:
                by_version.setdefault(f.version, []).append(f)
            badges = []
            if any(f.origin != "upstream" and not f.promoted_from for f in files):
                badges.append("private")
            if any(f.promoted_from for f in files):
                badges.append("promoted")
            if any(f.origin == "upstream" for f in files):
                badges.append("cached")
            entries.append(Entry(row.name, row.display_name, row.summary,
                                 latest_version(by_version) if by_version else None,
                                 row.last_upload, tuple(badges)))
        return entries

    # --- a project -----------------------------------------------------------------------------

    def project(self, work, repo, name: str, version: str | None = None
                ) -> ProjectPage | None:
        """The project's page at a version (the latest when None); None when the
        repository holds no file of the project, or none of that version."""
        detail = repo.project_detail(work, name)
        if detail is None:
            return None
        key = (repo.name, name, names.canonical_version(version) if version else None)
        page = self._projects.get(key, detail.version)
        if page is None:
            page = self._build(work, detail, version)
            if page is None:
                return None
            self._projects.put(key, page, detail.version)
        return page

    def _build(self, work, detail, wanted: str | None) -> ProjectPage | None:
        by_version: dict[str, list] = {}
        spelled: dict[str, str] = {}
        for f in detail.files:
            canonical = names.canonical_version(f.version)
            spelled.setdefault(canonical, f.version)
            by_version.setdefault(spelled[canonical], []).append(f)
        latest = latest_version(by_version)
        if wanted is None:
            chosen = latest
        else:
            chosen = spelled.get(names.canonical_version(wanted))
            if chosen is None:
                return None
        releases = [_release(v, fs) for v, fs in sorted(
            by_version.items(), key=lambda kv: names.version_key(kv[0]), reverse=True)]
        files = by_version[chosen]
        info = self._info(work, detail, files)
        description = info.get("description")
        return ProjectPage(
            name=detail.name,
            display_name=info.get("name") or detail.display_name,
            version=chosen,
            latest=latest,
            releases=releases,
            files=[_file_view(f) for f in sorted(files, key=_file_order)],
            summary=info.get("summary"),
            description=self.readme.render(description, info.get("description_content_type")),
            description_omitted=info.get("description_omitted"),
            license=info.get("license_expression") or _short_license(info.get("license")),
            authors=_people(info.get("author"), info.get("author_email")),
            maintainers=_people(info.get("maintainer"), info.get("maintainer_email")),
            links=_links(info),
            classifiers=list(info.get("classifiers") or []),
            requires_dist=list(info.get("requires_dist") or []),
            requires_python=info.get("requires_python") or next(
                (f.requires_python for f in files if f.requires_python), None),
            keywords=info.get("keywords"),
            origins=_dedup(_origin(f) for f in files),
            holder=", ".join(sorted({detail.holders[f.repository_id].name for f in files})),
        )

    @staticmethod
    def _info(work, detail, files) -> dict:
        """The release's metadata: a wheel's, else any file's that has some."""
        for f in sorted(files, key=_file_order):
            info = detail.holders[f.repository_id].file_info(work, f.id)
            if info:
                return info
        return {}


def _file_order(f):
    # Wheels first (their metadata is the most complete), then by name.
    return (f.packagetype != names.WHEEL, f.filename)


def _release(version: str, files: list) -> Release:
    yanked = all(f.yanked for f in files)
    key = names.version_key(version)
    return Release(version, key[0] == 1 and key[1].is_prerelease, yanked,
                   next((f.yanked_reason for f in files if f.yanked_reason), None)
                   if yanked else None,
                   max(f.upload_time for f in files), len(files))


def wheel_tags(filename: str) -> tuple[str, str, str] | None:
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    return tuple(parts[-3:]) if len(parts) >= 5 else None


def _origin(f) -> Origin:
    provenance = f.provenance or {}
    if provenance.get("promoted_from"):
        at = provenance.get("promoted_at")
        return Origin("promoted", provenance.get("promoted_by"),
                      parse_time(at) if at else None, provenance["promoted_from"])
    if f.origin == "upstream":
        at = provenance.get("cached_at")
        return Origin("cached", None, parse_time(at) if at else None,
                      provenance.get("upstream"))
    return Origin("uploaded", f.uploader, f.upload_time)


def _file_view(f) -> FileView:
    return FileView(f.filename, "wheel" if f.packagetype == names.WHEEL else "sdist",
                    f.size, f.sha256, f.upload_time, f.uploader, f.requires_python,
                    wheel_tags(f.filename), f.yanked, f.yanked_reason, _origin(f))


def _dedup(origins) -> list[Origin]:
    seen = []
    for o in origins:
        if o not in seen:
            seen.append(o)
    return seen


def _people(names_: str | None, emails: str | None) -> list[str]:
    found = [n.strip() for n in (names_ or "").split(",") if n.strip()]
    if emails:
        found += [e.strip() for e in emails.split(",")
                  if e.strip() and not any(e.strip() in n for n in found)]
    return found


def _short_license(text: str | None) -> str | None:
    """A license field that holds the whole license text is shown by its first line."""
    if not text:
        return None
    first = text.strip().splitlines()[0]
    return first if len(first) <= 200 else first[:200] + "…"


def _links(info: dict) -> list[Link]:
    links = []
    if info.get("home_page"):
        links.append(("Homepage", info["home_page"]))
    for entry in info.get("project_urls") or []:
        label, _, url = entry.partition(",")
        if url.strip():
            links.append((label.strip() or url.strip(), url.strip()))
    if info.get("download_url"):
        links.append(("Download", info["download_url"]))
    seen, out = set(), []
    for label, url in links:
        if url not in seen:
            seen.add(url)
            out.append(Link(label, url, url.lower().startswith(("https://", "http://"))))
    return out
