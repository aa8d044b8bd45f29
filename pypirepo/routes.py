"""Every URL in one place.

A repository's URLs come twice: under `/r/<name>/` for every repository, and at the
classic places (`/simple/`, `/legacy/`, `/packages/`, `/pypi/`, `/api/projects/`) for the
default one, so existing client configurations keep working. REPOSITORY_ROUTES lists the
route names that have both forms; the `/r/` form of a route `x` is named `r:x`.
"""

from .resources import ProjectResource, RepositoryResource, Root

UPLOAD_PATHS = ("/", "/legacy/", "/legacy", "/simple/", "/simple")
READS = ("GET", "HEAD")
# The JSON API: its writes take application/json only (security.CrossSiteGuard).
JSON_API_PREFIXES = ("/api/",)

# name, path (after the repository's own prefix), factory, route predicates. In order:
# the busiest URLs first (routes are tried in order, a regular expression each).
REPOSITORY_ROUTES = [
    # Reads only, so that a POST to /simple/ reaches the upload routes below.
    ("simple_project", "/simple/{project}/", ProjectResource, {"request_method": READS}),
    ("file", "/packages/{project}/{filename}", ProjectResource, {}),
    ("simple_index", "/simple/", RepositoryResource, {"request_method": READS}),
    # Uploads answer on every URL a client may have been given, never with a redirect
    # (twine, poetry and pdm refuse redirects on upload).
    *((f"upload{i}", path, RepositoryResource, {"request_method": "POST"})
      for i, path in enumerate(UPLOAD_PATHS)),
    ("simple_index_noslash", "/simple", RepositoryResource, {}),
    ("simple_project_noslash", "/simple/{project}", ProjectResource, {}),
    # hatch publish pre-checks <upload-url>/+simple/<name>/ (it assumes devpi).
    ("hatch_simple", "/legacy/+simple/{project}/", ProjectResource, {}),
    ("json_project", "/pypi/{project}/json", ProjectResource, {}),
    ("json_project_slash", "/pypi/{project}/json/", ProjectResource, {}),
    ("json_release", "/pypi/{project}/{version}/json", ProjectResource, {}),
    ("json_release_slash", "/pypi/{project}/{version}/json/", ProjectResource, {}),
]
# The writers' API: /api/projects/... for the default repository, /api/r/<name>/projects/...
API_ROUTES = [
    ("api_file", "/projects/{project}/files/{filename}"),
    ("api_version", "/projects/{project}/versions/{version}"),
    ("api_yank", "/projects/{project}/versions/{version}/{action:yank|unyank}"),
    ("api_promote", "/projects/{project}/versions/{version}/promote"),
    ("api_events", "/projects/{project}/events"),
]

# A project's owners and its own grants (views/admin.py, access/owners.py): at
# /api/projects/... for the default repository and /api/r/<name>/projects/... as above.
PROJECT_ACCESS_ROUTES = [
    ("api_project_owners", "/projects/{project}/owners"),
    ("api_project_owner", "/projects/{project}/owners/{user}"),
    ("api_project_grants", "/projects/{project}/grants"),
    ("api_project_grant", "/projects/{project}/grants/{id}"),
]


# Managing access (views/admin.py), described by the OpenAPI document at api_openapi:
# route name, path. A user's own API tokens under /api/tokens; the rest for admins.
ACCESS_API_ROUTES = [
    ("api_openapi", "/api/openapi.json"),
    ("api_tokens", "/api/tokens"),
    ("api_token", "/api/tokens/{id}"),
    ("api_admin_users", "/api/admin/users"),
    ("api_admin_user", "/api/admin/users/{name}"),
    ("api_admin_groups", "/api/admin/groups"),
    ("api_admin_group", "/api/admin/groups/{name}"),
    ("api_admin_grants", "/api/admin/grants"),
    ("api_admin_grant", "/api/admin/grants/{id}"),
    ("api_admin_tokens", "/api/admin/tokens"),
]


def repository_routes(name: str) -> tuple[str, str]:
    """The two route names of a repository route: the classic one and its /r/ form."""
    return name, "r:" + name


def includeme(config):
    for name, path, factory, predicates in REPOSITORY_ROUTES:
        config.add_route(name, path, factory=factory, **predicates)
    for name, path in API_ROUTES:
        config.add_route(name, "/api" + path, factory=ProjectResource)
    # The same, per repository: after the classic ones, which most requests use.
    for name, path, factory, predicates in REPOSITORY_ROUTES:
        config.add_route("r:" + name, "/r/{repo}" + path, factory=factory, **predicates)
    for name, path in API_ROUTES:
        config.add_route("r:" + name, "/api/r/{repo}" + path, factory=ProjectResource)
    # After the busy ones: a page of a repository's does not try these first.
    for name, path in PROJECT_ACCESS_ROUTES:
        config.add_route(name, "/api" + path, factory=ProjectResource)
        config.add_route("r:" + name, "/api/r/{repo}" + path, factory=ProjectResource)

    config.add_route("api_repositories", "/api/repositories", factory=Root)
    for name, path in ACCESS_API_ROUTES:
        config.add_route(name, path, factory=Root)
    config.add_route("health", "/_health")

    # The web UI (views/ui/): pages for browsers, and the static files they load.
    config.add_route("home", "/", request_method=READS)
    config.add_route("search", "/search", factory=Root, request_method=READS)
    config.add_route("static", "/static/{token}/{name:.+}", request_method=READS)
    # A repository's page (/projects/ for the default one, /r/<name>/ for each) and a
    # project's (the URLs the JSON API gives as project_url and release_url).
    config.add_route("ui_repository", "/projects/", factory=RepositoryResource,
                     request_method=READS)
    config.add_route("r:ui_repository", "/r/{repo}/", factory=RepositoryResource,
                     request_method=READS)
    config.add_route("r:ui_repository_noslash", "/r/{repo}", factory=RepositoryResource,
                     request_method=READS)
    for name, path in (("ui_project", "/project/{project}/"),
                       ("ui_release", "/project/{project}/{version}/")):
        config.add_route(name, path, factory=ProjectResource, request_method=READS)
        config.add_route("r:" + name, "/r/{repo}" + path, factory=ProjectResource,
                         request_method=READS)
    # Writers' forms (views/ui/manage.py): upload a file; yank, unyank, delete or promote a
    # release, delete a file (GET: the confirmation page, POST: the action).
    for name, path, factory in (
            ("ui_upload", "/upload", RepositoryResource),
            ("ui_release_action",
             "/project/{project}/{version}/{action:yank|unyank|delete|promote}",
             ProjectResource),
            ("ui_file_delete", "/project/{project}/files/{filename}/delete", ProjectResource)):
        config.add_route(name, path, factory=factory)
        config.add_route("r:" + name, "/r/{repo}" + path, factory=factory)
    # Signing in and out, and one's account (views/ui/account.py).
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_route("account", "/account", request_method=READS)
    config.add_route("account_password", "/account/password", request_method="POST")
    config.add_route("account_tokens", "/account/tokens", request_method="POST")
    config.add_route("account_token_revoke", r"/account/tokens/{id:\d+}/revoke",
                     request_method="POST")
    # The administration pages (views/ui/admin.py): users, groups, grants, repositories.
    for name, path in ADMIN_UI_ROUTES:
        config.add_route(name, "/admin" + path)


# route name, path after /admin. The forms post to the page they are on; a destructive
# action's GET is its confirmation page (for browsers without JavaScript).
ADMIN_UI_ROUTES = [
    ("admin", "/"),
    ("admin_noslash", ""),
    ("admin_users", "/users"),
    ("admin_user", "/users/{name}"),
    ("admin_user_action", "/users/{name}/{action:password|admin|remove}"),
    ("admin_groups", "/groups"),
    ("admin_group", "/groups/{name}"),
    ("admin_group_action", "/groups/{name}/{action:members|remove}"),
    ("admin_grants", "/grants"),
    ("admin_grant_remove", r"/grants/{id:\d{1,10}}/remove"),
]
