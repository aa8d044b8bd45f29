"""Every URL in one place."""

from .resources import ProjectResource, Root

UPLOAD_PATHS = ("/", "/legacy/", "/legacy", "/simple/", "/simple")
READS = ("GET", "HEAD")
# The JSON API: its writes take application/json only (security.CrossSiteGuard).
JSON_API_PREFIXES = ("/api/",)


def includeme(config):
    # The busiest URLs first: routes are tried in order, a regular expression each. Reads
    # only, so that a POST to /simple/ reaches the upload routes below.
    config.add_route("simple_project", "/simple/{project}/", factory=ProjectResource,
                     request_method=READS)
    config.add_route("file", "/packages/{project}/{filename}", factory=ProjectResource)
    config.add_route("simple_index", "/simple/", factory=Root, request_method=READS)

    # Uploads answer on every URL a client may have been given, never with a redirect
    # (twine, poetry and pdm refuse redirects on upload).
    for i, path in enumerate(UPLOAD_PATHS):
        config.add_route(f"upload{i}", path, request_method="POST", factory=Root)

    config.add_route("simple_index_noslash", "/simple", factory=Root)
    config.add_route("simple_project_noslash", "/simple/{project}", factory=ProjectResource)
    # hatch publish pre-checks <upload-url>/+simple/<name>/ (it assumes devpi).
    config.add_route("hatch_simple", "/legacy/+simple/{project}/", factory=ProjectResource)

    config.add_route("json_project", "/pypi/{project}/json", factory=ProjectResource)
    config.add_route("json_project_slash", "/pypi/{project}/json/", factory=ProjectResource)
    config.add_route("json_release", "/pypi/{project}/{version}/json", factory=ProjectResource)
    config.add_route("json_release_slash", "/pypi/{project}/{version}/json/",
                     factory=ProjectResource)

    config.add_route("api_file", "/api/projects/{project}/files/{filename}",
                     factory=ProjectResource)
    config.add_route("api_version", "/api/projects/{project}/versions/{version}",
                     factory=ProjectResource)
    config.add_route("api_yank", "/api/projects/{project}/versions/{version}/{action:yank|unyank}",
                     factory=ProjectResource)
    config.add_route("api_events", "/api/projects/{project}/events", factory=ProjectResource)

    config.add_route("health", "/_health")

    # The web UI (views/ui/): pages for browsers, and the static files they load.
    config.add_route("home", "/", request_method=READS)
    config.add_route("search", "/search", factory=Root, request_method=READS)
    config.add_route("static", "/static/{token}/{name:.+}", request_method=READS)
