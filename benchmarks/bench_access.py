"""Access's figures (issue 11), each measured side by side in one run:

- twine uploading 200 files with an API token (user `__token__`), against the same
  upload with a password, each on a fresh server: target >= 150 files/s.

More figures join by adding a function to MEASUREMENTS (it gets the run's Context and
returns its figures) and its rows to ROWS.

    python -m benchmarks.run --only access [--quick]
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import generate
from .bench_foundation import _basic, _twine_upload
from .harness import (
    BENCHMARKS_MD,
    Pypirepo,
    commit_text,
    compile_bytecode,
    load_average,
    run_alone,
    verdict,
)

NAME = "access"
UPLOADS = 200
ROUNDS = 3
USER = "bench"
TARGETS = {"upload_token_fps": 150}


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


MEASUREMENTS = [("upload", measure_uploads)]


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


ROWS = [_upload_rows]


def report(f: dict, results) -> str:
    machine = getattr(results, "machine", {})
    commit = commit_text(machine) if machine else "this tree"
    lines = [
        "## Access",
        "",
        f"Measured {machine.get('date', 'now')} ({commit}), "
        f"load average {f['load_before']} before, {f['load_after']} after. Each upload into "
        "an empty server (pserve, SQLite, local storage); twine's own start-up included.",
        "",
        "| what | measured | target | met | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rows in ROWS:
        for row in rows(f):
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    run_alone(run, NAME, BENCHMARKS_MD, parser.parse_args().quick)
