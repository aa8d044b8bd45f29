"""A group: an ordered list of member repositories served as one index.

A project is answered by the first member that holds it. Members are asked in order and
the first one with an answer gives it, so a private project in a hosted member shadows the
same name upstream (the dependency-confusion guard made general: a public project can
never stand in for a private one), and the upstream is not even asked. A name on the
group's merge list (`repository.<name>.merge`; `*` for every name) is answered by every
member that holds it, files merged (on a filename held twice, the earlier member's file).

Files in the group's pages point at the group's own URLs, so a lock file written against a
group keeps working when the member that holds a file changes; a download asks the
members the same way. Uploads go to the hosted member named by `upload_to` (the first
hosted member by default).
"""

from __future__ import annotations

import logging

from ..errors import FallbackDenied, Hidden, NotFound, UpstreamFailed
from ..pages import API_VERSION, Page, PageCache, make_page
from ..settings import ConfigError, as_bool, as_list, as_str
from .base import DELETE, READ, UPLOAD, ProjectDetail, Repository, Work, entries_page
from .config import names_list

log = logging.getLogger(__name__)


class GroupRepository(Repository):
    kind = "group"

    def __init__(self, name: str, member_names: list[str], upload_to: str | None = None,
                 merge: frozenset[str] = frozenset()):
        super().__init__(name)
        self._member_names = list(member_names)
        self._upload_to = upload_to
        self.merge = merge
        self.members: list[Repository] = []
        self.upload_target: Repository | None = None
        self.pages = PageCache(1024)  # merged pages and the root page, keyed by members'

    @classmethod
    def from_spec(cls, spec, deps) -> GroupRepository:
        s = spec.settings
        merge = names_list(s.get_value("pypi.upstream_allow", as_list, []))
        if s.get_value("pypi.always_show_upstream", as_bool, False):
            merge = merge | {"*"}
        return cls(spec.name, spec.members,
                   upload_to=s.get_value("pypi.upload_to", as_str, None), merge=merge)

    def link(self, registry) -> None:
        self.members = [registry[n] for n in self._member_names]
        if self._upload_to is not None:
            target = registry.get(self._upload_to)
            if target is None or target.kind != "hosted" or \
                    self._upload_to not in self.member_names():
                raise ConfigError(f"repository.{self.name}.upload_to",
                                  f"{self._upload_to!r} is not a hosted member of the group")
            self.upload_target = target
        else:
            self.upload_target = next((m for m in self._flat() if m.kind == "hosted"), None)

    def describe(self) -> dict:
        return {"members": [m.name for m in self.members],
                "upload_to": self.upload_target.name if self.upload_target else None,
                "merge": sorted(self.merge)}

    def member_names(self) -> list[str]:
        names = [self.name]
        for member in self.members:
            names += [n for n in member.member_names() if n not in names]
        return names

    def _flat(self):
        """Every repository the group answers from, in order (nested groups unfolded)."""
        seen = set()
        for member in self.members:
            for repo in ([member] if member.kind != "group" else member._flat()):
                if repo.name not in seen:
                    seen.add(repo.name)
                    yield repo

    def merges(self, name: str) -> bool:
        return "*" in self.merge or name in self.merge

    # --- reads -----------------------------------------------------------------------------

    def holds(self, work: Work, name: str) -> bool | None:
        unknown = False
        for member in self.members:
            held = member.holds(work, name)
            if held:
                return True
            unknown = unknown or held is None
        return None if unknown else False

    def local_page(self, work: Work, name: str, base: str) -> tuple[bool, Page | None]:
        if self.merges(name) or not work.may(self, name, READ):
            return False, None
        for member in self.members:
            if member.holds(work, name) is False:
                continue  # asked before its rights: a member without it says nothing
            decided, page = member.local_page(work, name, base)
            if not decided:
                return False, None
            if page is not None:
                return True, page
        return True, None

    def project_page(self, work: Work, name: str, base: str, merging: bool = False
                     ) -> Page | None:
        """The first member's that holds the project, which must let the caller read it
        there too (a project hidden in a member is hidden here: never a later member's
        look-alike)."""
        work.require(self, name, READ)
        if merging or self.merges(name):
            return self._merged_page(work, name, base)
        for member in self.members:
            if member.holds(work, name) is False:
                continue
            page = member.project_page(work, name, base)
            if page is not None:
                return page
        return None

    def _merged_page(self, work: Work, name: str, base: str) -> Page | None:
        pages, failure = [], None
        for member in self.members:
            if member.holds(work, name) is False:
                continue
            try:
                page = member.project_page(work, name, base, merging=True)
            except (UpstreamFailed, FallbackDenied) as exc:
                # The upstream failed, or only someone else may ask it: merging goes on
                # with what the other members hold.
                failure = failure or exc
                continue
            if page is not None:
                pages.append(page)
        if not pages:
            if failure is not None:
                raise failure
            return None
        if len(pages) == 1:
            return pages[0]
        version = tuple(p.etag for p in pages)
        page = self.pages.get(("project", name, base), version)
        if page is None:
            files: dict[str, dict] = {}
            for p in pages:
                for entry in p.data["files"]:
                    files.setdefault(entry["filename"], entry)
            page = entries_page(max(p.serial for p in pages), name,
                                [files[k] for k in sorted(files)])
            self.pages.put(("project", name, base), page, version)
        return page

    def root_page(self, work: Work, base: str) -> Page:
        # Each member's page as the caller may see it, the union as the group lets them.
        return work.visible_page(self, self._union(work, base))

    def full_root_page(self, work: Work, base: str) -> Page:
        return self._union(work, base, full=True)

    def _union(self, work: Work, base: str, full: bool = False) -> Page:
        pages = [m.full_root_page(work, base) if full else m.root_page(work, base)
                 for m in self.members]
        version = tuple(p.etag for p in pages)
        page = self.pages.get(("root", base), version)
        if page is None:
            projects: dict[str, str] = {}
            for p in pages:
                for project in p.data["projects"]:
                    projects.setdefault(project["_normalized"], project["name"])
            serial = max(p.serial for p in pages)
            page = make_page(serial, {
                "meta": {"api-version": API_VERSION, "_last-serial": serial},
                "projects": [{"name": projects[n], "_normalized": n} for n in sorted(projects)],
            }, "index")
            self.pages.put(("root", base), page, version)
        return page

    def listing_ids(self) -> list[int]:
        return [r.id for r in self._flat() if r.stores]

    def project_detail(self, work: Work, name: str) -> ProjectDetail | None:
        """The first member's that holds files of the project; for a name the group
        merges, every holder's files too (on a filename held twice, the earlier one's).
        Hidden from the caller by the group or by the first member that holds it: Hidden
        (as a file would be)."""
        work.require(self, name, READ)
        found = None
        for repo in self._flat():
            detail = repo.project_detail(work, name)
            if detail is None:
                continue
            if found is None:
                found = detail
                if not self.merges(name):
                    break
                continue
            have = {f.filename for f in found.files}
            found = ProjectDetail(
                name, found.display_name, found.version + detail.version,
                sorted(found.files + [f for f in detail.files if f.filename not in have],
                       key=lambda f: f.filename),
                {**found.holders, **detail.holders})
        return found

    def _answering(self, work: Work, name: str):
        """The members to ask for one of the project's files or its JSON, in order, each
        with whether it holds the project for certain (then nothing after it is asked)."""
        merging = self.merges(name)
        for member in self.members:
            held = member.holds(work, name)
            if held is False:
                continue
            yield member, bool(held) and not merging

    def file(self, work: Work, name: str, filename: str, head: bool = False):
        work.require(self, name, READ)
        for member, last in self._answering(work, name):
            try:
                return member.file(work, name, filename, head)
            except Hidden:
                raise
            except NotFound:
                if last:
                    raise
        raise NotFound(filename)

    def json_api(self, work: Work, name: str, version: str | None, base: str) -> dict:
        work.require(self, name, READ)
        for member, last in self._answering(work, name):
            try:
                return member.json_api(work, name, version, base)
            except Hidden:
                raise
            except NotFound:
                if last:
                    raise
        raise NotFound(name)

    def events(self, work: Work, name: str) -> list:
        """Its own and its members' events of the project, from the members the caller
        may read it in."""
        work.require(self, name, READ)
        names = [self.name] + [m for m in self.member_names()[1:]
                               if work.may(self._registry_of(m), name, READ)]
        return work.metadata.events(names, name)

    def _registry_of(self, name: str) -> Repository:
        return next(r for r in self._flat() if r.name == name) if name != self.name else self

    # --- writes: to the upload target, or to the member that holds the project ------------

    def upload(self, work: Work, form) -> str:
        if self.upload_target is None:
            self._refuse("uploads (it has no hosted member)")
        return self.upload_target.upload(work, form, via=self)

    def _holder(self, work: Work, name: str) -> Repository:
        for member in self.members:
            if member.holds(work, name):
                return member
        raise NotFound(name)

    def delete_file(self, work: Work, name: str, filename: str) -> list[str]:
        work.require(self, name, DELETE)
        for member, _last in self._answering(work, name):
            try:
                return member.delete_file(work, name, filename)
            except NotFound:
                continue
        raise NotFound(filename)

    def delete_version(self, work: Work, name: str, version: str) -> list[str]:
        work.require(self, name, DELETE)
        return self._holder(work, name).delete_version(work, name, version)

    def set_yanked(self, work: Work, name: str, version: str, yanked: bool,
                   reason: str | None) -> list[str]:
        work.require(self, name, DELETE)
        return self._holder(work, name).set_yanked(work, name, version, yanked, reason)

    def release_files(self, work: Work, name: str, version: str):
        work.require(self, name, DELETE)
        return self._holder(work, name).release_files(work, name, version)

    def accept(self, work: Work, name: str) -> Repository:
        if self.upload_target is None:
            self._refuse("promoted files (it has no hosted member)")
        work.require(self, name, UPLOAD)
        return self.upload_target.accept(work, name)
