"""Anonymous index pages answered in front of Pyramid's router: the busiest requests.

The simple pages are most of an index's traffic, and a cached one costs ~15 us of our own
work against ~50 us through the router, security policy and view machinery. FastPath
answers only what it can answer exactly as the views would, with the same repositories
and the same answer code (views.simple.page_answer): a GET or HEAD of `/simple/` or
`/simple/<normalized name>/` (the default repository) or of the same under `/r/<name>/`,
no query string, no Authorization header or cookie, a project everyone may read there,
an Accept header already negotiated once, and a page the repository can give without
asking anyone slow (Repository.local_page: never the upstream). Anything else, a missing
project included, goes to Pyramid untouched. It can be switched off
(`pypirepo.fast_path = false`) to compare, and counts what it answered.
"""

from __future__ import annotations

from . import names
from .interfaces import IAccess, IAppConfig, IBodyGate, IDatabase, IRenderer, IRepositories
from .repositories import Work
from .request import WORK_KEY
from .routes import READS
from .views.simple import HTML, known_accept, page_answer

_STATUS = {200: "200 OK", 304: "304 Not Modified"}


class FastPath:
    def __init__(self, app, registry):
        self.app = app
        self.registry = registry
        self.repositories = registry.getUtility(IRepositories)
        self.db = registry.getUtility(IDatabase)
        self.render = registry.getUtility(IRenderer)
        self.access = registry.getUtility(IAccess)
        self.enabled = registry.getUtility(IAppConfig).fast_path
        self.answered = 0  # pages served here (tests and benchmarks read it)

    # What the server in front asks of the app (pypirepo.server, pypirepo.hardening).
    @property
    def login_summary(self) -> str:
        return self.access.login_summary

    def server_threads(self, threads: int) -> None:
        self.repositories.server_threads(threads)

    @property
    def before_body(self):
        return self.registry.queryUtility(IBodyGate)

    def __call__(self, environ, start_response):
        if self.enabled and environ["REQUEST_METHOD"] in READS \
                and "HTTP_COOKIE" not in environ and not environ.get("QUERY_STRING"):
            answer = self._answer(environ)
            if answer is not None:
                status, headers, app_iter = answer
                self.answered += 1
                start_response(_STATUS[status], headers)
                return app_iter
        return self.app(environ, start_response)

    def _answer(self, environ):
        path = environ.get("PATH_INFO", "")
        base = environ.get("SCRIPT_NAME", "")
        if path.startswith("/simple/"):
            repo, rest = self.repositories.default, path[8:]
        elif path.startswith("/r/"):
            name, _, tail = path[3:].partition("/")
            repo = self.repositories.get(name)
            if repo is None or not tail.startswith("simple/"):
                return None
            rest, base = tail[7:], f"{base}/r/{name}"
        else:
            return None
        accept = environ.get("HTTP_ACCEPT")
        ctype = known_accept(accept) if accept else HTML
        if ctype is None:
            return None  # a new Accept header: the view negotiates it (and remembers)
        if ctype == HTML and ("HTTP_SEC_FETCH_MODE" in environ or "xhtml" in (accept or "")):
            return None  # perhaps a person's browser: the views send it to the UI's page
        if rest and (not rest.endswith("/") or "/" in rest[:-1]):
            return None
        project = rest[:-1]
        if project and (not names.is_valid_project_name(project)
                        or names.normalize(project) != project):
            return None  # the view answers 404 or redirects
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            identity = None
            if not self.access.anonymous_may_read(repo, project or None):
                return None  # the view asks for credentials
        else:
            # Credentials checked lately (the credential cache: the slow hash is not
            # repeated anyway); anything else, the router checks and answers.
            identity = self.access.cached_identity(header, environ.get("REMOTE_ADDR"))
            if identity is None:
                return None
        work = Work(self.db, identity, self.access)
        if identity is not None and not work.may(repo, project or None, "read"):
            return None
        public = self.access.anonymous_may_read(repo, project or None)
        try:
            if project:
                decided, page = repo.local_page(work, project, base)
                if not decided or page is None:
                    # The view takes it from here with this work, which remembers the
                    # freshness reads: the request asks the database once, not twice.
                    environ[WORK_KEY] = work
                    work = None
                    return None
            else:
                page = repo.root_page(work, base)
            return page_answer(environ, page, ctype, self.render, public)
        finally:
            if work is not None:
                work.close()  # its session, if one was opened
