"""Route factories that carry the ACLs Pyramid checks."""

from __future__ import annotations

from . import names


class Root:
    def __init__(self, request):
        self.request = request

    @property
    def __acl__(self):
        return self.request.registry.access.root_acl()


class ProjectResource:
    """A project named in the URL; `name` is normalized, `raw_name` as requested."""

    def __init__(self, request):
        self.request = request
        self.raw_name = request.matchdict.get("project", "")
        self.name = names.normalize(self.raw_name)
        self.valid = names.is_valid_project_name(self.raw_name)

    @property
    def __acl__(self):
        return self.request.registry.access.project_acl(self.name)
