"""The ceiling: one Pyramid view returning a few bytes, on waitress with the same threads as
pypirepo's servers. Whatever pypirepo's pages cost comes on top of this.

    python -m benchmarks.bare_app PORT
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

    from .harness import SERVER_THREADS

    port = int((argv or sys.argv[1:])[0])
    waitress.serve(make_app(), host="127.0.0.1", port=port, threads=SERVER_THREADS, _quiet=True)


if __name__ == "__main__":
    main()
