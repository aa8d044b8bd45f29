"""Where the time goes: cProfile of pypirepo's hot paths, in-process, on the benchmark data.

    python -m benchmarks.profile requests [--n 2000]   # simple pages, WSGI app called directly
    python -m benchmarks.profile startup               # main() with an empty / populated DB
    python -m benchmarks.profile upload [--n 200]      # the upload view, as twine posts

Each prints the in-process cost per operation (no HTTP server, no client), the share of
time per package (pypirepo, pyramid, webob, sqlalchemy, ...) and the top functions.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from . import generate

JSON = "application/vnd.pypi.simple.v1+json"


def settings_for(storage: Path, db: Path, **extra) -> dict:
    return {
        "sqlalchemy.url": f"sqlite:///{db}",
        "pypirepo.auto_migrate": "true",
        "pypirepo.storage": "local",
        "storage.dir": str(storage),
        "pypi.default_read": "everyone",
        "pypi.default_write": "authenticated",
        "pypi.fallback": "none",
        **extra,
    }


def environ(path: str, headers: dict | None = None, method="GET", body=b"") -> dict:
    env = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "6543", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.version": (1, 0), "HTTP_HOST": "127.0.0.1:6543",
        "HTTP_USER_AGENT": "wrk", "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for k, v in (headers or {}).items():
        key = k.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = v
    return env


def call(app, env: dict) -> tuple[str, int]:
    env = dict(env, **{"wsgi.input": io.BytesIO(env["wsgi.input"].getvalue())})
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    body = app(env, start_response)
    size = 0
    try:
        for chunk in body:
            size += len(chunk)
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    return seen["status"], size


PACKAGES = ("pypirepo", "pyramid", "webob", "sqlalchemy", "jinja2", "zope", "passlib",
            "venusian", "sqlite3", "json", "alembic", "webtest", "waitress", "hashlib")


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time per package, so 'SQLAlchemy took 40%' can be read off directly."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        name = "other (stdlib, builtins)"
        path = filename.replace("\\", "/")
        for pkg in PACKAGES:
            if f"/{pkg}/" in path or path.endswith(f"/{pkg}.py"):
                name = pkg
                break
        else:
            if "sqlite3" in func or "Cursor" in func or "Connection" in func:
                name = "sqlite3 (C)"
        totals[name] += tottime
    total = sum(totals.values()) or 1.0
    return sorted(((k, v / total) for k, v in totals.items()), key=lambda kv: -kv[1])


def profile(label: str, fn, n: int, top: int = 25, per_op: bool = True):
    fn()  # warm: page caches, connections, lazy imports
    started = time.perf_counter()
    for _ in range(n):
        fn()
    plain = (time.perf_counter() - started) / n
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    stats = pstats.Stats(prof)
    print(f"\n=== {label}: {plain * 1000:.3f} ms per call in-process "
          f"(≈ {1 / plain:,.0f}/s on one core, no server) ===")
    for name, share in by_package(stats):
        if share >= 0.005:
            print(f"  {share * 100:5.1f}%  {name}")
    if per_op:
        stats.sort_stats("tottime").print_stats(top)
    return plain, stats


def populated_app(tmp: Path, storage: Path, **extra):
    from pypirepo import main

    db = tmp / "db.sqlite"
    app = main({}, **settings_for(storage, db, **extra))
    return app


def cmd_requests(args):
    storage = generate.store_dataset() / "storage"
    big = generate.canonicalize_name(generate.BIG_PROJECT)
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        from pypirepo.access import PASSWORDS

        app = populated_app(Path(tmp), storage, **{"user.bench": PASSWORDS.hash("pw")})
        auth = "Basic " + base64.b64encode(b"bench:pw").decode()
        cases = {
            "root page /simple/ (HTML)": environ("/simple/"),
            "project page (HTML)": environ(f"/simple/{big}/"),
            "project page (JSON)": environ(f"/simple/{big}/", {"Accept": JSON}),
            "project page (HTML, Basic auth)": environ(f"/simple/{big}/",
                                                       {"Authorization": auth}),
            "project page, If-None-Match (304)": None,
            "bare Pyramid view": "bare",
        }
        from .bare_app import make_app

        bare = make_app()
        # The 304 case needs the ETag the page answers with.
        seen = {}

        def grab_etag(status, headers, exc_info=None):
            seen.update(dict(headers))

        list(app(environ(f"/simple/{big}/"), grab_etag))
        cases["project page, If-None-Match (304)"] = environ(
            f"/simple/{big}/", {"If-None-Match": seen.get("ETag", "")})
        for label, env in cases.items():
            if args.only and args.only not in label:
                continue
            if env == "bare":
                benv = environ("/")
                profile(label, lambda: call(bare, benv), args.n, args.top)
                continue
            status, size = call(app, env)
            print(f"\n{label}: {status}, {size} bytes")
            profile(label, lambda env=env: call(app, env), args.n, args.top)


def cmd_startup(args):
    storage = generate.store_dataset() / "storage"
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        started = time.perf_counter()
        import pypirepo  # noqa: F401 - the import cost is part of a start-up
        from pypirepo import main

        print(f"import pypirepo: {time.perf_counter() - started:.3f}s (more imports follow "
              "inside main())")
        for state in ("empty", "populated"):
            prof = cProfile.Profile()
            started = time.perf_counter()
            prof.enable()
            app = main({}, **settings_for(storage, Path(tmp) / "db.sqlite"))
            built = time.perf_counter() - started
            status, size = call(app, environ("/simple/"))
            prof.disable()
            total = time.perf_counter() - started
            print(f"\n=== start-up, {state} database: main() {built:.2f}s, first /simple/ "
                  f"{total - built:.2f}s ({status}, {size} bytes), in-process under cProfile ===")
            stats = pstats.Stats(prof)
            for name, share in by_package(stats):
                if share >= 0.01:
                    print(f"  {share * 100:5.1f}%  {name}")
            stats.sort_stats("cumtime").print_stats(args.top)
            del app


def cmd_upload(args):
    from webtest import TestApp

    from pypirepo.access import PASSWORDS

    dists = generate.upload_dataset(max(args.n, 10))
    files = sorted(dists.iterdir())[: args.n]
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        storage = Path(tmp) / "storage"
        app = TestApp(populated_app(Path(tmp), storage, **{"user.bench": PASSWORDS.hash("pw")}))
        app.authorization = ("Basic", ("bench", "pw"))
        sys.path.insert(0, str(generate.TESTS))
        import distfactory

        posts = []
        for path in files:
            stem = path.name.removesuffix(".tar.gz").removesuffix(".whl")
            name, version = stem.split("-")[:2]
            posts.append((distfactory.upload_fields(path, name, version),
                          [("content", path.name, path.read_bytes())]))
        it = iter(posts)

        def one():
            fields, upload = next(it)
            app.post("/legacy/", params=fields, upload_files=upload)

        half = len(posts) // 2
        started = time.perf_counter()
        for _ in range(half):
            one()
        plain = (time.perf_counter() - started) / half
        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        for _ in range(len(posts) - half):
            one()
        prof.disable()
        per = (time.perf_counter() - started) / (len(posts) - half)
        print(f"\n=== upload through the WSGI app (WebTest, no server): {plain * 1000:.2f} ms "
              f"per file ({per * 1000:.2f} ms under cProfile), {len(posts)} files ===")
        if args.dump:
            prof.dump_stats(args.dump)
        stats = pstats.Stats(prof)
        for name, share in by_package(stats):
            if share >= 0.005:
                print(f"  {share * 100:5.1f}%  {name}")
        stats.sort_stats("cumtime").print_stats(args.top)
        shutil.rmtree(storage, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("requests", "startup", "upload"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", default="", help="also write the cProfile stats here")
    parser.add_argument("--only", default="", help="requests: only cases containing this")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    {"requests": cmd_requests, "startup": cmd_startup, "upload": cmd_upload}[args.what](args)


if __name__ == "__main__":
    main()
