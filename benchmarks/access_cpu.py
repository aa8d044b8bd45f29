"""CPU per cached index page inside one process, anonymous and with credentials: the share
of an authenticated page's cost that is pypirepo's own, which the machine's other work
disturbs far less than a rate through a server (bench_access runs it).

    python -m benchmarks.access_cpu STORAGE_DIR CALLS ROUNDS     # prints JSON

The app is built as pserve builds it (pypirepo.main) on a fresh SQLite database over the
storage, with bench_access's users, groups and grants; WSGI calls go straight to it, each
(page, credentials) in turn for ROUNDS rounds; the median per page and credentials.
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import sys
import tempfile
import time


def main(argv=None) -> None:
    store, calls, rounds = (argv or sys.argv[1:])[:3]
    calls, rounds = int(calls), int(rounds)
    tmp = tempfile.mkdtemp(prefix="access-cpu-")
    try:
        from passlib.hash import pbkdf2_sha256

        from pypirepo import main as make_app
        from pypirepo.access.tokens import scope_of
        from pypirepo.interfaces import IAccess

        from .bench_access import PAGE_GRANTS, PRIVATE_PAGE

        password = "bench-cpu"
        app = make_app({}, **{
            "sqlalchemy.url": f"sqlite:///{tmp}/db.sqlite", "pypirepo.auto_migrate": "true",
            "pypirepo.reindex_on_start": "sync", "pypirepo.storage": "local",
            "storage.dir": store, "pypi.default_read": "everyone", "pypi.fallback": "none",
            "user.bench": pbkdf2_sha256.hash(password), "group.team": "bench",
            "group.others": "nobody-here", "grants": PAGE_GRANTS})
        secret, _info = app.registry.getUtility(IAccess).tokens.create("bench", scope_of())
        credentials = {"anonymous": None, "password": ("bench", password),
                       "token": ("__token__", secret)}
        pages = {"project": "/simple/bench-big/", "private": f"/simple/{PRIVATE_PAGE}/",
                 "root": "/simple/"}

        def environ(path, pair):
            found = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "",
                     "QUERY_STRING": "", "SERVER_NAME": "bench", "SERVER_PORT": "80",
                     "wsgi.url_scheme": "http", "HTTP_HOST": "bench",
                     "REMOTE_ADDR": "127.0.0.1"}
            if pair:
                found["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(
                    ":".join(pair).encode()).decode()
            return found

        def start_response(status, headers):
            if not status.startswith("200"):
                raise RuntimeError(f"answered {status}")

        cases = {f"{page}_{who}": environ(path, pair) for page, path in pages.items()
                 for who, pair in credentials.items()
                 if not (page == "private" and pair is None)}
        for env in cases.values():  # warm: pages cached, credentials checked, code hot
            for _ in range(min(calls, 300)):
                b"".join(app(dict(env), start_response))
        runs: dict[str, list[float]] = {key: [] for key in cases}
        for _round in range(rounds):
            for key, env in cases.items():
                started = time.process_time()
                for _ in range(calls):
                    b"".join(app(dict(env), start_response))
                runs[key].append((time.process_time() - started) / calls * 1e6)
        print(json.dumps({key: {"us": statistics.median(r), "runs": r}
                          for key, r in runs.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
