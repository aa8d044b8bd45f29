"""The server of the shipped ini files: `use = egg:pypirepo#waitress` in [server:main].

It is waitress, configured by the same [server:main] keys, with three things added:

- The port can be chosen without editing the ini: `pserve development.ini http_port=7000`
  or PYPIREPO_HTTP_PORT=7000 replace the port of every address of the `listen` line
  (PasteDeploy gives the ini's [DEFAULT] precedence over pserve's `key=value` arguments,
  so an ini variable with a default could not be overridden from the command line).
- Once the app is built and the sockets are bound, one line says where to point the
  clients and how to log in: "pypirepo: ready at http://localhost:6543/simple/ (...)".
- The app learns how many request threads there are, so that waiting on the upstream
  never takes all of them (pypi.upstream_max_waiting).
"""

from __future__ import annotations

import logging
import re

from .settings import ConfigError, Settings, one_line_exit

_WILDCARDS = {"", "*", "0.0.0.0", "::", "[::]"}


def as_port(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def chosen_port(global_conf: dict, settings: Settings) -> int | None:
    """pserve's `http_port=N` argument, else PYPIREPO_HTTP_PORT, else None (the ini's)."""
    given = global_conf.get("http_port")
    if given is None:
        return settings.get_value("http_port", as_port, None)
    try:
        return as_port(given)
    except ValueError as exc:
        raise ConfigError("http_port", str(exc)) from None


def with_port(kw: dict, port: int) -> dict:
    """The server keys with every listen address moved to `port`."""
    kw = dict(kw)
    if "listen" in kw:
        kw["listen"] = " ".join(f"{_host(entry)}:{port}" for entry in kw["listen"].split())
    else:  # waitress' older host/port keys
        kw["port"] = str(port)
    return kw


def _host(entry: str) -> str:
    """'localhost:6543' -> 'localhost', '[::1]:6543' -> '[::1]', 'example' -> 'example'."""
    host, sep, port = entry.rpartition(":")
    if not sep or "]" in port:
        return entry
    return host


def server_factory(global_conf, **kw):
    """PasteDeploy calls this while pserve reads the ini, before the app is built, so a bad
    port stops the start at once, with one line."""
    with one_line_exit():
        port = chosen_port(global_conf, Settings({}))
    if port is not None:
        kw = with_port(kw, port)

    def serve(app):
        from .hardening import create_server

        logging.basicConfig()  # what waitress.serve does: its own messages have a handler
        server = create_server(app, **kw)
        tell_threads(app, server.adj.threads)
        server.print_listen("Serving on http://{}:{}")
        print(f"pypirepo: ready at {index_url(server, kw)}{_who(app)}", flush=True)
        server.run()

    return serve


def tell_threads(app, threads: int) -> None:
    """The fallback keeps some of the request threads from waiting on the upstream; it
    can only know how many there are from here."""
    told = getattr(app, "server_threads", None)  # fastpath.FastPath: the repositories'
    if told is not None:
        told(threads)


def index_url(server, kw: dict) -> str:
    """The URL a client should use: the ini's host name (not the addresses it resolved to;
    'localhost' for a wildcard, which includes it), the port actually bound (so port 0
    works), and waitress' url_prefix."""
    if kw.get("unix_socket"):
        return f"unix socket {kw['unix_socket']}"
    entries = kw.get("listen", "").split() or [kw.get("host", "")]
    host = _host(entries[0])
    if host in _WILDCARDS:
        host = "localhost"
    listening = getattr(server, "effective_listen", None)
    port = listening[0][1] if listening else server.effective_port
    prefix = re.sub(r"/+$", "", kw.get("url_prefix", "").strip())
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return f"http://{host}:{port}{prefix}/simple/"


def _who(app) -> str:
    logins = getattr(app, "login_summary", None)  # fastpath.FastPath: who can log in
    return f" ({logins})" if logins else ""
