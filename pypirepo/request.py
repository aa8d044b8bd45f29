"""The request class: what a view can ask of a request, each computed once.

Reified properties on a subclass cost nothing until used; Pyramid's add_request_method
re-applies its properties to every request, a visible share of a cached page's time.
"""

from __future__ import annotations

from pyramid.decorator import reify
from pyramid.request import Request as BaseRequest

from .access.identity import INVALID_LOGIN, resolve_credentials
from .interfaces import IAccess, IAppConfig, IDatabase, IRenderer, IRepositories, ISessions
from .repositories import Work
from .repositories.proxy import ProxyRepository

# Where the fast path leaves the Work it used when it hands a request on to the views
# (the freshness reads it made are not made again).
WORK_KEY = "pypirepo.work"


class Request(BaseRequest):
    # --- the server's services -----------------------------------------------------------

    @reify
    def access(self):
        return self.registry.getUtility(IAccess)

    @reify
    def app_config(self):
        return self.registry.getUtility(IAppConfig)

    @reify
    def repositories(self):
        return self.registry.getUtility(IRepositories)

    @reify
    def render(self):
        return self.registry.getUtility(IRenderer)

    @reify
    def sessions(self):
        return self.registry.queryUtility(ISessions)

    # --- who is asking ---------------------------------------------------------------------

    @reify
    def pypirepo_auth(self):
        """(Identity or None, error or None) from the Authorization header; without one,
        from a trusted proxy's user header or the session cookie (access.session)."""
        found = resolve_credentials(self, self.access)
        if found == (None, None) and self.sessions is not None:
            return self.sessions.identify(self), None
        return found

    @reify
    def identity(self):
        """Who is asking (pypirepo.access.Identity), None: nobody logged in."""
        return self.pypirepo_auth[0]

    @reify
    def pypirepo_user(self):
        identity = self.identity
        return identity.user if identity is not None else None

    @reify
    def pypirepo_bad_credentials(self):
        # A wrong password only matters when permission is needed; a malformed header
        # always does.
        err = self.pypirepo_auth[1]
        return err if err and err != INVALID_LOGIN else None

    # --- the repository the URL names, and this request's work with it --------------------

    @reify
    def repository(self):
        return self.context.repository

    @reify
    def work(self) -> Work:
        work = self.environ.pop(WORK_KEY, None)
        if work is None:
            work = Work(self.registry.getUtility(IDatabase), access=self.access)
        work.identity = self.identity
        work.looped = ProxyRepository.is_own_request(self.environ.get("HTTP_VIA"))
        self.add_finished_callback(lambda _request: work.close())
        return work
