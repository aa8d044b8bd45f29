"""The ceiling: one Pyramid view returning a few bytes, on waitress with the same threads
(and send_bytes) as pypirepo's servers. Whatever pypirepo's pages cost comes on top of this.

    python -m benchmarks.bare_app PORT [THREADS]
"""

from __future__ import annotations

import sys

from pyramid.config import Configurator
from pyramid.response import Response


def hello(request):
    return Response(body=b"hello\n", content_type="text/plain", charset="utf-8")


def make_app():
    config = Configurator()
    config.add_route("hello", "/")
    config.add_view(hello, route_name="hello")
    return config.make_wsgi_app()


def main(argv=None):
    import waitress

    from .harness import SERVER_THREADS, development_server_settings

    args = argv or sys.argv[1:]
    port = int(args[0])
    threads = int(args[1]) if len(args) > 1 else SERVER_THREADS
    # The same hand-off of responses to the main loop as pypirepo's servers get.
    tuning = {k: int(v) for k, v in development_server_settings().items() if k == "send_bytes"}
    waitress.serve(make_app(), host="127.0.0.1", port=port, threads=threads, _quiet=True,
                   **tuning)


if __name__ == "__main__":
    main()
