"""Where the web UI's pages are, and the addresses a client is told to use: shared by the
browsing pages (home.py) and the writers' forms (manage.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ...interfaces import IUIPages

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def ui_pages(request):
    return request.registry.getUtility(IUIPages)


def server_url(request) -> str:
    """This server's address as clients reach it: pypirepo.public_url when set, else as
    the visitor reached it."""
    return (request.app_config.public_url or request.application_url).rstrip("/")


def client_urls(request, context=None) -> dict:
    """The URLs a client is given for a repository (the default one at the classic
    URLs unless the page is one of /r/<name>/), as the visitor reached this server."""
    base = server_url(request)
    if context is not None:
        base += context.base[len(request.script_name):]
    host = urlsplit(base).hostname or ""
    return {
        "index_url": base + "/simple/",
        "upload_url": base + "/legacy/",
        # pip ignores a plain-http index on any host but this one unless told to trust it.
        "trusted_host": host if base.startswith("http:") and host not in LOCAL_HOSTS
        else None,
    }


def ui_base(request, context) -> str:
    """Where the repository's pages are: /r/<name> for a named one, "" (the classic
    URLs: /projects/, /project/<name>/) for the default one."""
    return context.base if request.matchdict and "repo" in request.matchdict \
        else request.script_name


def repository_page_url(request, context) -> str:
    base = ui_base(request, context)
    return base + "/" if base != request.script_name else base + "/projects/"
