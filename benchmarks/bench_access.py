"""Access's figures (issue 11), each measured side by side in one run:

- Index pages on a repository that holds public and private projects (pattern grants),
  5,000 projects (benchmarks.generate's data set), wrk in interleaved rounds on one
  server: a project page (200 files) for a user who may read it, with a password and
  with an API token (`__token__`), against the anonymous rate of the same public page:
  target >= 90 %; `/simple/` for that user, who may read half of the projects: target
  >= 2,000 req/s. Beside them, the CPU each page costs inside one process
  (benchmarks.access_cpu), anonymous, with the password and with the token: what the
  machine's other work disturbs least.
- twine uploading 200 files with an API token (user `__token__`), against the same
  upload with a password, each on a fresh server: target >= 150 files/s.

More figures join by adding a function to MEASUREMENTS (it gets the run's Context and
returns its figures) and its rows to ROWS.

    python -m benchmarks.run --only access [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import generate
from .bench_foundation import _basic, _twine_upload
from .harness import (
    BENCHMARKS_MD,
    Pypirepo,
    _clean_env,
    commit_text,
    compile_bytecode,
    cpu_seconds,
    fmt_int,
    http_get,
    load_average,
    run_alone,
    verdict,
    wrk,
)

NAME = "access"
UPLOADS = 200
ROUNDS = 3
USER = "bench"
PAGE_ROUNDS = 15
PAGE_SECONDS = 1
TARGETS = {"upload_token_fps": 150, "auth_page_ratio": 0.90, "root_half_rps": 2000}
# Who reads what on the pages' server: the projects named bench-proj-NNNNN by their last
# digit. Everyone reads bench-big and the 2s, 4s, 6s and 8s; the 1s are the user's
# group's alone; the 0s, 3s, 5s, 7s and 9s are someone else's. The user reads 2,501 of
# the 5,000 projects, anonymous clients 2,001.
TEAM_DIGITS, OTHERS_DIGITS = "1", "03579"
PAGE_GRANTS = "\n".join(
    [f"default bench-proj-*{d} read group:team" for d in TEAM_DIGITS]
    + [f"default bench-proj-*{d} read group:others" for d in OTHERS_DIGITS])
# Measured in turn within a round, each group's first the one the others are held against.
PAGE_GROUPS = (("project_anonymous", "project_password", "project_token"),
               ("root_anonymous", "root_password", "root_token"),
               ("small_anonymous", "private_password", "private_token"))
# Which rate each is held against (round by round).
RATIOS = {"project_password": "project_anonymous", "project_token": "project_anonymous",
          "private_password": "small_anonymous", "private_token": "small_anonymous",
          "root_password": "root_anonymous", "root_token": "root_anonymous"}
PRIVATE_PAGE = "bench-proj-00001"  # the team's, 3 files
PUBLIC_SMALL_PAGE = "bench-proj-00002"  # everyone's, 3 files


def _log(msg):
    print(f"[{NAME}] {msg}", flush=True)


@dataclass
class Context:
    """What every measurement of one run shares."""

    work: Path  # a temporary folder, removed after the run
    quick: bool
    user: str
    password: str  # the user's, configured in the ini with a real passlib hash
    users: dict  # the ini lines that declare the user


def _server(ctx: Context, name: str, **app) -> Pypirepo:
    return Pypirepo(ctx.work / name, ctx.work / name / "storage", app={**ctx.users, **app})


def _make_token(url: str, ctx: Context, **scope) -> str:
    request = urllib.request.Request(
        f"{url}/api/tokens", data=json.dumps(scope).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": _basic(ctx.user, ctx.password)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


def measure_uploads(ctx: Context) -> dict:
    """twine upload of the same 200 files with a password and with an upload token, each
    into an empty server; ROUNDS rounds of both in turn (a spell of load from elsewhere on
    the shared machine then weighs on both alike), the median reported."""
    upload_dir = generate.upload_dataset(UPLOADS, log=_log)
    runs: dict = {"password": [], "token": []}
    for round_ in range(1 if ctx.quick else ROUNDS):
        for how in runs:
            proc = _server(ctx, f"upload-{how}-{round_}").spawn()
            try:
                proc.wait_for("/simple/")
                if how == "token":
                    secret = _make_token(proc.url, ctx, permission="upload", note="bench")
                    result = _twine_upload(proc, upload_dir, secret, ctx.work,
                                           user="__token__")
                else:
                    result = _twine_upload(proc, upload_dir, ctx.password, ctx.work,
                                           user=ctx.user)
            finally:
                proc.stop()
            runs[how].append(result)
            _log(f"twine upload with a {how}: {result['files_per_s']:.1f} files/s")
    figures = {}
    for how, results in runs.items():
        middle = sorted(results, key=lambda r: r["files_per_s"])[len(results) // 2]
        figures[how] = {**middle, "runs": [r["files_per_s"] for r in results]}
    return figures


def measure_pages(ctx: Context) -> dict:
    """Pages of one server, each URL in turn, PAGE_ROUNDS times (a spell of load from
    elsewhere weighs on all alike), the median of the rounds kept."""
    spec = generate.Spec()
    store = generate.store_dataset(spec, log=_log) / "storage"
    big = generate.canonicalize_name(generate.BIG_PROJECT)
    server = Pypirepo(ctx.work / "pages", store, app={
        **ctx.users, "group.team": ctx.user, "group.others": "nobody-here",
        "grants": PAGE_GRANTS})
    proc = server.spawn()
    try:
        proc.wait_for("/simple/", timeout=300)
        token = _make_token(proc.url, ctx, permission="read", note="bench pages")
        password = {"Authorization": _basic(ctx.user, ctx.password)}
        with_token = {"Authorization": _basic("__token__", token)}
        expected = _expected_counts(spec)
        _check_pages(proc, big, password, with_token, expected)
        pages = {
            "project_anonymous": (f"/simple/{big}/", {}),
            "project_password": (f"/simple/{big}/", password),
            "project_token": (f"/simple/{big}/", with_token),
            "root_anonymous": ("/simple/", {}),
            "root_password": ("/simple/", password),
            "root_token": ("/simple/", with_token),
            "small_anonymous": (f"/simple/{PUBLIC_SMALL_PAGE}/", {}),
            "private_password": (f"/simple/{PRIVATE_PAGE}/", password),
            "private_token": (f"/simple/{PRIVATE_PAGE}/", with_token),
        }
        for path, headers in pages.values():  # the warm-up: every page and credential once
            wrk(proc.url + path, headers, duration=1, warmup=0)
        runs: dict = {key: [] for key in pages}
        cpu: dict = {key: [] for key in pages}
        loads = []
        for round_ in range(2 if ctx.quick else PAGE_ROUNDS):
            loads.append(load_average())
            for group in PAGE_GROUPS:
                # Every other round backwards: a trend within a round favours neither.
                for key in group if round_ % 2 == 0 else reversed(group):
                    path, headers = pages[key]
                    before = cpu_seconds(proc.pid)
                    result = wrk(proc.url + path, headers, duration=PAGE_SECONDS, warmup=0)
                    if result.errors:
                        raise RuntimeError(f"{key}: {result.errors} errors from {path}")
                    runs[key].append(result.rps)
                    # The server's own CPU per answer: what other work on the shared
                    # machine disturbs least.
                    cpu[key].append((cpu_seconds(proc.pid) - before) / result.requests * 1e6)
            _log(f"round {round_ + 1}: " + ", ".join(
                f"{key} {r[-1]:.0f}/s {cpu[key][-1]:.0f} µs" for key, r in runs.items()))
    finally:
        proc.stop()
    figures = {key: {"rps": statistics.median(r), "runs": r,
                     "cpu_us": statistics.median(cpu[key])} for key, r in runs.items()}
    # Ratios round by round (each page right after the one it is held against), their
    # median: a spell of load from elsewhere, longer than a few seconds, weighs on both.
    for key, base in RATIOS.items():
        figures[key]["ratios"] = [a / b for a, b in zip(runs[key], runs[base])]
        figures[key]["ratio"] = statistics.median(figures[key]["ratios"])
    return {**figures, "counts": expected, "round_loads": loads, "busy": _busy_elsewhere()}


def _expected_counts(spec) -> dict:
    names = [f"bench-proj-{i:05d}" for i in range(spec.projects - 1)]
    public = 1 + sum(n[-1] not in TEAM_DIGITS + OTHERS_DIGITS for n in names)
    team = sum(n[-1] in TEAM_DIGITS for n in names)
    return {"projects": spec.projects, "anonymous": public, "user": public + team}


def _check_pages(proc, big: str, password: dict, with_token: dict, expected: dict) -> None:
    """Every page measured answers what it should, or its speed means nothing: the root
    lists what each may read, the private page is the user's alone."""
    for who, headers in (("anonymous", {}), ("user", password), ("user", with_token)):
        status, body = http_get(proc.port, "/simple/", headers)
        if status != 200 or body.count(b"<a ") != expected[who]:
            raise RuntimeError(f"/simple/ for {who}: {status}, {body.count(b'<a ')} "
                               f"projects, expected {expected[who]}")
        for path in (f"/simple/{big}/", f"/simple/{PRIVATE_PAGE}/"):
            status, _body = http_get(proc.port, path, headers)
            wanted = 401 if who == "anonymous" and path.endswith(f"{PRIVATE_PAGE}/") else 200
            if status != wanted:
                raise RuntimeError(f"{path} for {who}: {status}, expected {wanted}")


def _busy_elsewhere() -> str:
    """The busiest other processes now: what the shared machine was doing meanwhile."""
    out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                         capture_output=True, text=True).stdout.splitlines()
    busy = [line.split(None, 1) for line in out[:12]]
    return ", ".join(f"{comm.strip()} {cpu}%" for cpu, comm in busy
                     if float(cpu) >= 5 and comm.strip() not in ("ps", "wrk"))


def measure_cpu(ctx: Context) -> dict:
    """CPU per cached page inside one process (benchmarks.access_cpu), anonymous, with the
    password and with a token, in interleaved rounds: pypirepo's own share of the cost,
    which the machine's other work disturbs far less than wrk's rates."""
    store = generate.store_dataset(generate.Spec(), log=_log) / "storage"
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.access_cpu", str(store),
         "2000" if ctx.quick else "10000", "2" if ctx.quick else "5"],
        cwd=generate.REPO, env=_clean_env(), capture_output=True, text=True, check=True,
        timeout=900)
    found = json.loads(out.stdout.splitlines()[-1])
    _log("cpu per page in the process (µs): " + ", ".join(
        f"{key} {value['us']:.1f}" for key, value in found.items()))
    return found


MEASUREMENTS = [("pages", measure_pages), ("cpu", measure_cpu), ("upload", measure_uploads)]


def run(results) -> str:
    from pypirepo.access import PASSWORDS

    password = "bench-" + os.urandom(8).hex()
    figures: dict = {"load_before": load_average()}
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        ctx = Context(Path(tmp), getattr(results, "quick", False), USER, password,
                      {f"user.{USER}": PASSWORDS.hash(password)})
        for key, measure in MEASUREMENTS:
            figures[key] = measure(ctx)
    figures["load_after"] = load_average()
    results[NAME] = figures
    return report(figures, results)


# --- the report ---------------------------------------------------------------------------


def _upload_rows(f: dict) -> list[tuple]:
    up = f["upload"]
    token, password = up["token"], up["password"]

    def text(r):
        runs = ", ".join(f"{x:.0f}" for x in r["runs"])
        return (f"{r['files_per_s']:.0f} files/s ({r['files']} files in {r['seconds']:.2f} s; "
                f"runs: {runs})")

    return [
        ("twine upload, 200 files, **API token** (`__token__`)", text(token),
         f"≥ {TARGETS['upload_token_fps']} files/s",
         verdict(token["files_per_s"] >= TARGETS["upload_token_fps"]),
         f"{token['files_per_s'] / password['files_per_s']:.0%} of the password's rate, "
         "medians of the same run"),
        ("twine upload, 200 files, password (same run)", text(password), "", "", ""),
    ]


def _page_rows(f: dict) -> list[tuple]:
    p, t = f["pages"], TARGETS

    def rate(key):
        return f"{fmt_int(p[key]['rps'])} req/s ({p[key]['cpu_us']:.0f} µs CPU)"

    def versus(key):
        return p[key]["ratio"]

    rows = [("project page, 200 files, anonymous (a public project)", rate("project_anonymous"),
             "", "", "the rate the others are held against")]
    for how, key in (("password", "project_password"), ("**API token** (`__token__`)",
                                                         "project_token")):
        by_cpu = p["project_anonymous"]["cpu_us"] / p[key]["cpu_us"]
        rows.append((f"the same page, a user who may read it, {how}",
                     f"{rate(key)}: **{versus(key):.0%}** of anonymous; by CPU per answer "
                     f"{by_cpu:.0%}",
                     f"≥ {t['auth_page_ratio']:.0%}",
                     verdict(versus(key) >= t["auth_page_ratio"]), ""))
    rows.append(("project page, 3 files, anonymous (a public project)",
                 rate("small_anonymous"), "", "", ""))
    for how, key in (("password", "private_password"), ("API token", "private_token")):
        rows.append((f"a private project's page, 3 files, the user's group's, {how}",
                     f"{rate(key)}: {versus(key):.0%} of the public "
                     "3-file page", "", "", "readable through a pattern grant only"))
    counts = p["counts"]
    for how, key in (("password", "root_password"), ("**API token**", "root_token")):
        rows.append((f"`/simple/`, {counts['projects']:,} projects, for a user who may read "
                     f"{counts['user']:,} of them, {how}", rate(key),
                     f"≥ {fmt_int(t['root_half_rps'])} req/s",
                     verdict(p[key]["rps"] >= t["root_half_rps"]),
                     f"{versus(key):.0%} of the anonymous root page "
                     f"({counts['anonymous']:,} projects)"))
    rows.append((f"`/simple/`, anonymous ({counts['anonymous']:,} projects listed)",
                 rate("root_anonymous"), "", "", ""))
    c = f["cpu"]
    for page, what in (("project", "project page, 200 files"),
                       ("private", "the private 3-file page"), ("root", "`/simple/`")):
        rows.append((f"CPU per cached answer in the process, {what}", ", ".join(
            f"{who} {c[f'{page}_{who}']['us']:.1f} µs" for who in
            ("anonymous", "password", "token") if f"{page}_{who}" in c), "", "",
            "pypirepo's own work, no server or client (benchmarks/access_cpu.py)"))
    return rows


ROWS = [_page_rows, _upload_rows]


def _span(loads: list[str]) -> str:
    first = sorted(float(load.split()[0]) for load in loads)
    return f"{first[0]:.1f} to {first[-1]:.1f}"


def report(f: dict, results) -> str:
    machine = getattr(results, "machine", {})
    commit = commit_text(machine) if machine else "this tree"
    lines = [
        "## Access",
        "",
        f"Measured {machine.get('date', 'now')} ({commit}), "
        f"load average {f['load_before']} before, {f['load_after']} after.",
        "",
        "Pages: one server (pserve, development.ini's waitress settings, SQLite, local "
        "storage) with benchmarks/generate.py's 5,000 projects, in the default repository "
        "that everyone may read, where pattern grants (`grants`) keep three in five of the "
        "`bench-proj-*` projects private: a fifth to the user's group, the rest to another. "
        f"wrk (2 threads, 16 connections, on the same 2 cores) in {PAGE_ROUNDS} rounds with "
        f"each URL in turn, {PAGE_SECONDS} s each (after a warm-up of each), every other "
        "round backwards; the rates are medians of the rounds, a ratio is the median of "
        "the rounds' ratios (each page measured right beside the one it is held against), "
        "and in brackets the server's own CPU per answer (from /proc, median of the "
        "rounds). The "
        "user's password is a passlib hash in the ini (`auth.backend = config`), the token "
        "a read token made through `/api/tokens`; every answer is checked first (what "
        "each lists, 401 for the private page without credentials).",
        "",
        "Uploads: each into an empty server (pserve, SQLite, local storage); twine's own "
        "start-up included.",
        "",
        "| what | measured | target | met | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rows in ROWS:
        for row in rows(f):
            lines.append("| " + " | ".join(row) + " |")
    p = f["pages"]
    lines += ["", "Rounds (req/s): " + "; ".join(
        f"{key} {', '.join(f'{r:.0f}' for r in p[key]['runs'])}" + (
            f" (ratios {', '.join(f'{r:.2f}' for r in p[key]['ratios'])})"
            if "ratios" in p[key] else "")
        for key in p if isinstance(p[key], dict) and "runs" in p[key]) + ".",
        f"Load average (1 min) at the rounds' starts: {_span(p['round_loads'])}. "
        f"Busiest other processes at the end: {p['busy'] or 'none above 5 %'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    run_alone(run, NAME, BENCHMARKS_MD, parser.parse_args().quick)
