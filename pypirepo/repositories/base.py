"""What every kind of repository answers, and the per-request unit of work they share.

A view makes one call into the repository its URL names (`/simple/...` the default one,
`/r/<name>/...` any other): a project's page, a file, the JSON API, an upload. Hosted,
proxy and group repositories answer behind the same methods, so the view never asks
which kind it has; a group asks its members the same questions.

A repository object lives as long as the server and is shared by every request; what
belongs to one request (its database session, opened only when needed, the freshness
reads it made, who is asking) is the Work handed to each call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from .. import names
from ..errors import Hidden, NotFound, Refused
from ..metadata import MetadataCache
from ..pages import API_VERSION, Page, file_entry, make_page

# The permissions (pypirepo.access.model): the repositories name them, never import access.
READ, UPLOAD, DELETE = "read", "upload", "delete"

log = logging.getLogger(__name__)


class Work:
    """One request's work across repositories: who is asking (and what they may, through
    the access service), its database session, the freshness reads it made."""

    __slots__ = ("db", "identity", "access", "looped", "_session", "_projects", "_decided")

    def __init__(self, db, identity=None, access=None, looped: bool = False):
        self.db = db
        self.identity = identity  # pypirepo.access.Identity, None: anonymous
        # None: no access rules (a console script, a unit test of a repository): may all.
        self.access = access
        # The request was made by this server's own upstream client: a proxy must not
        # ask its upstream again (the upstream leads back here).
        self.looped = looped
        self._session = None
        self._projects: dict = {}
        self._decided: dict = {}  # (repository, project, permission) -> may, this request

    @property
    def user(self) -> str | None:
        return self.identity.user if self.identity is not None else None

    def may(self, repository, project: str | None, permission: str) -> bool:
        if self.access is None:
            return True
        key = (repository.name, project, permission)
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self.access.may(self.identity, repository, project,
                                                         permission)
        return found

    def visible_page(self, repository, page):
        """A root page as the caller may see it (every project, or those they may read)."""
        if self.access is None:
            return page
        return self.access.policy.visible_page(self.identity, repository.name, page, make_page)

    def require(self, repository, project: str, permission: str, hide: bool = True) -> None:
        """Raise unless the identity may do this to the project: a project it may not read
        is one that does not exist (Hidden: 404, or 401 when nobody logged in, so that a
        client sends its credentials); one it may read but not change, a 403. hide=False:
        a 403 either way (an upload: the name would be created if it did not exist, so
        there is nothing to hide by a 404)."""
        if self.may(repository, project, permission):
            return
        if self.identity is None:
            raise Hidden(project, anonymous=True)
        if hide and (permission == READ or not self.may(repository, project, READ)):
            raise Hidden(project)
        raise Refused(403, f"The user {self.user!r} may not {permission} {project!r} in "
                           f"repository {repository.name!r}.")

    @property
    def session(self):
        """The ORM session, opened only when a request needs more than cached pages."""
        if self._session is None:
            self._session = self.db.session_factory()
        return self._session

    @property
    def metadata(self) -> MetadataCache:
        return MetadataCache(self.session)

    def projects(self, name: str) -> dict[int, tuple[int, int]]:
        """repository id -> (project id, serial) of every repository holding the name: the
        freshness read, made once per name and request however many repositories ask."""
        found = self._projects.get(name)
        if found is None:
            found = self._projects[name] = self.db.serials.projects(name)
        return found

    def release(self) -> None:
        """Give the database connection back before waiting on something slow (the
        upstream): a burst of first requests would otherwise hold every one."""
        if self._session is not None:
            # Writes commit explicitly; anything left over is discarded.
            self._session.rollback()
            self._session.close()
            self._session = None

    close = release


@dataclass
class ProjectFiles:
    """What a repository holds of a project at one serial, as plain rows shared by every
    thread: one query per serial serves its pages and its downloads."""

    serial: int
    rows: list  # db.serials.FileRow, sorted by filename
    by_name: dict

    @classmethod
    def of(cls, serial: int, rows: list) -> ProjectFiles:
        return cls(serial, rows, {r.filename: r for r in rows})


@dataclass
class ProjectDetail:
    """A project as a repository answers it, for its page in the web UI: every file held
    (metadata.browse.DETAIL_COLUMNS rows, by filename), each row's repository_id naming
    the stored repository that holds it (holders), whose file_info() gives its metadata."""

    name: str  # normalized
    display_name: str
    version: tuple  # what it was read at: changes whenever a file does
    files: list
    holders: dict  # repository id -> StoredRepository


@dataclass
class StoredFile:
    """A file held in storage: the view streams it (or redirects to a signed URL)."""

    row: object  # db.serials.FileRow
    key: str
    storage: object


@dataclass
class Metadata:
    """A wheel's core metadata (PEP 658), ours or fetched from the upstream."""

    body: bytes


def rows_page(serial: int, name: str, base: str, rows) -> Page:
    """The simple page of files we hold (the rows of one or more repositories)."""
    return make_page(serial, {
        "meta": {"api-version": API_VERSION, "_last-serial": serial},
        "name": name,
        "files": [file_entry(base, name, f) for f in rows],
        "versions": sorted({f.version for f in rows}, key=names.version_key),
    }, "detail")


def entries_page(serial: int, name: str, entries: list[dict]) -> Page:
    """The simple page of file entries made elsewhere (a proxy's, a group's merge)."""
    versions = set()
    for e in entries:
        try:
            versions.add(names.parse_filename(e["filename"]).version)
        except names.InvalidFilename:
            pass
    return make_page(serial, {
        "meta": {"api-version": API_VERSION, "_last-serial": serial},
        "name": name,
        "files": entries,
        "versions": sorted(versions, key=names.version_key),
    }, "detail")


class Repository:
    """The interface of every kind. Reads answer or raise NotFound (or a kind's own
    refusals, pypirepo.errors); writes a kind does not take are refused with a 405."""

    kind: ClassVar[str] = ""
    #: whether files are kept in storage under `prefix` (hosted, proxy)
    stores: ClassVar[bool] = False

    def __init__(self, name: str):
        self.name = name
        self.id: int | None = None  # its row in the database, set when the server starts
        self.prefix: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # --- what the registry completes once every repository is built ----------------------

    def link(self, registry) -> None:
        """Find the repositories this one refers to (a group's members)."""

    def describe(self) -> dict:
        """Its settings for GET /api/repositories."""
        return {}

    def member_names(self) -> list[str]:
        """Itself and, for a group, every repository it answers from."""
        return [self.name]

    # --- reads ---------------------------------------------------------------------------

    def holds(self, work: Work, name: str) -> bool | None:
        """Whether the project is here: True, False, or None when only asking someone
        (the upstream) could tell."""
        raise NotImplementedError

    def local_page(self, work: Work, name: str, base: str) -> tuple[bool, Page | None]:
        """(True, the page or None) when the answer needs nothing slow; (False, None) when
        project_page() must decide (it may ask the upstream). Never asks the upstream."""
        raise NotImplementedError

    def project_page(self, work: Work, name: str, base: str, merging: bool = False
                     ) -> Page | None:
        """The project's simple page with file URLs under base; None when not here.
        merging: the page will be merged into a group's (a proxy in redirect mode then
        lists the upstream's files instead of redirecting)."""
        raise NotImplementedError

    def root_page(self, work: Work, base: str) -> Page:
        raise NotImplementedError

    def file(self, work: Work, name: str, filename: str, head: bool = False):
        """A StoredFile or a Metadata (a proxy may also answer with its upstream's stream);
        raises NotFound."""
        raise NotImplementedError

    def json_api(self, work: Work, name: str, version: str | None, base: str) -> dict:
        raise NotImplementedError

    def events(self, work: Work, name: str) -> list:
        work.require(self, name, READ)
        return work.metadata.events([self.name], name)

    def listing_ids(self) -> list[int]:
        """The ids of the stored repositories whose projects this one lists, in answer
        order (the first that holds a name answers it): what its page in the web UI and
        its counts are read from (metadata.browse)."""
        return []

    def project_detail(self, work: Work, name: str) -> ProjectDetail | None:
        """What the project's page shows: the files held here (never asks an upstream),
        from the member that answers the project in a group; None when none are."""
        return None

    def project_names(self, work: Work) -> list[tuple[str, str]]:
        """(normalized, display) of every project here."""
        return [(p["_normalized"], p["name"])
                for p in self.root_page(work, "").data["projects"]]

    # --- writes ----------------------------------------------------------------------------

    def _refuse(self, what: str):
        raise Refused(405, f"Repository {self.name!r} is a {self.kind} repository: it does "
                           f"not take {what}.")

    def upload(self, work: Work, form) -> str:
        self._refuse("uploads")

    def delete_file(self, work: Work, name: str, filename: str) -> list[str]:
        self._refuse("deletions")

    def delete_version(self, work: Work, name: str, version: str) -> list[str]:
        self._refuse("deletions")

    def set_yanked(self, work: Work, name: str, version: str, yanked: bool,
                   reason: str | None) -> list[str]:
        self._refuse("yanks")

    def release_files(self, work: Work, name: str, version: str) -> tuple[Repository, list]:
        """(the repository that holds them, the File rows of a release): what a promotion
        copies. Raises NotFound."""
        raise NotFound(f"{name} {version}")

    def accept(self, work: Work, name: str) -> Repository:
        """The hosted repository a promotion into this one writes to."""
        self._refuse("promoted files")
