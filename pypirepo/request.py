"""The request class: what a view can ask of a request, each computed once.

Reified properties on a subclass cost nothing until used; Pyramid's add_request_method
re-applies its properties to every request, a visible share of a cached page's time.
"""

from __future__ import annotations

from pyramid.decorator import reify
from pyramid.request import Request as BaseRequest

from .access.identity import INVALID_LOGIN, resolve_credentials


class Request(BaseRequest):
    @reify
    def pypirepo_auth(self):
        """(user or None, error message or None) from the Authorization header."""
        return resolve_credentials(self, self.registry.access)

    @reify
    def pypirepo_user(self):
        return self.pypirepo_auth[0]

    @reify
    def pypirepo_bad_credentials(self):
        # A wrong password only matters when permission is needed; a malformed header
        # always does.
        err = self.pypirepo_auth[1]
        return err if err and err != INVALID_LOGIN else None

    @reify
    def index(self):
        service = self.environ.pop(INDEX_SERVICE_KEY, None) or index_service(self.registry)
        self.add_finished_callback(lambda _request: service.close())
        return service


# Where CachedPages leaves the service it used when it hands a request on to the views.
INDEX_SERVICE_KEY = "pypirepo.index"


def index_service(registry):
    """The request's IndexService (its database session is opened only if needed)."""
    from .index import IndexService

    return IndexService(registry.session_factory, registry.serials, registry.storage,
                        registry.app_config, registry.page_cache, registry.render,
                        registry.fallback.check_new_project)

