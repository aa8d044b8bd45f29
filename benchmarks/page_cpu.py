"""CPU per cached index page inside one process, without a server or a network: the
share of a page's cost that is pypirepo's own, measured the same way for any checkout.

    python -m benchmarks.page_cpu STORAGE_DIR PATH CALLS      # prints microseconds

Run with PYTHONPATH=<a baseline checkout> to measure that code instead (bench_repositories
does both, interleaved). The app is built as pserve builds it (pypirepo.main) on a fresh
SQLite database over the storage; WSGI calls go straight to it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time


def main(argv=None) -> None:
    store, path, calls = (argv or sys.argv[1:])[:3]
    calls = int(calls)
    tmp = tempfile.mkdtemp(prefix="page-cpu-")
    try:
        from pypirepo import main as make_app

        app = make_app({}, **{
            "sqlalchemy.url": f"sqlite:///{tmp}/db.sqlite", "pypirepo.auto_migrate": "true",
            "pypirepo.reindex_on_start": "sync", "pypirepo.storage": "local",
            "storage.dir": store, "pypi.default_read": "everyone", "pypi.fallback": "none"})
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "",
                   "QUERY_STRING": "", "SERVER_NAME": "bench", "SERVER_PORT": "80",
                   "wsgi.url_scheme": "http", "HTTP_HOST": "bench"}

        def start_response(status, headers):
            if not status.startswith("200"):
                raise RuntimeError(f"{path} answered {status}")

        for _ in range(min(calls, 500)):  # warm: the page cached, the code paths hot
            b"".join(app(dict(environ), start_response))
        started = time.process_time()
        for _ in range(calls):
            b"".join(app(dict(environ), start_response))
        print(f"{(time.process_time() - started) / calls * 1e6:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
