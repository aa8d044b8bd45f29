"""Route factories: the repository a URL names (and the project in it), which the security
policy asks the access service about (security.SecurityPolicy).

Every repository answers at `/r/<name>/...`; the default one also at the classic URLs
(`/simple/`, `/legacy/`, `/packages/...`, `/pypi/<p>/json`, `/api/projects/...`). A route's
`repo` match names it; an unknown name is a 404 before any permission is asked.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound

from . import names
from .interfaces import IRepositories


class Root:
    """The server itself (health, the repository list, search): asked about as the
    default repository."""

    def __init__(self, request):
        self.request = request
        self.repository = request.registry.getUtility(IRepositories).default
        self.base = request.script_name


class RepositoryResource(Root):
    """A repository named by the URL, or the default one at the classic URLs. `base` is
    where its URLs start (pages link files under it)."""

    def __init__(self, request):
        self.request = request
        repositories = request.registry.getUtility(IRepositories)
        name = request.matchdict.get("repo") if request.matchdict else None
        if name is None:
            self.repository = repositories.default
            self.base = request.script_name
        else:
            self.repository = repositories.get(name)
            if self.repository is None:
                raise HTTPNotFound(f"No repository named {name!r}.")
            self.base = f"{request.script_name}/r/{name}"


class ProjectResource(RepositoryResource):
    """A project named in the URL; `name` is normalized, `raw_name` as requested."""

    def __init__(self, request):
        super().__init__(request)
        self.raw_name = request.matchdict.get("project", "")
        self.name = names.normalize(self.raw_name)
        self.valid = names.is_valid_project_name(self.raw_name)
