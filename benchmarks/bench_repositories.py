"""Repositories' figures (issue 10), each measured side by side in one run:

1. The default /simple/ and a project page (200 files) of this code against the commit
   before repositories (a baseline exported with `git archive`, served from the same
   data set and the same installed dependencies): target >= 95 % of its rate.
2. A project page through a group of three members, the project held by the last one
   (the others asked first), against the same page of that hosted repository itself:
   target >= 80 %.
3. Promoting a 100-file release between two hosted repositories on the local S3 server
   (moto), over HTTP on a real server: target <= 2 s.

    python -m benchmarks.run --only repositories [--quick] [--baseline <commit>]
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from . import generate
from .generate import distfactory
from .harness import (
    Pypirepo,
    _clean_env,
    baseline_checkout,
    commit_text,
    compile_bytecode,
    fmt_int,
    load_average,
    machine_facts,
    section_main,
    verdict,
    wrk,
)

NAME = "repositories"
ROUNDS = 3
PROMOTE_FILES = 100
PROMOTE_ROUNDS = 3
TARGETS = {"default_ratio": 0.95, "group_ratio": 0.80, "promote_seconds": 2.0}
# The commit the figures compare with: the tip of main before repositories came.
BASELINE = os.environ.get("PYPIREPO_BENCH_BASELINE", "main")
PASSWORD = "bench-" + os.urandom(6).hex()


def _log(msg):
    print(f"[{NAME}] {msg}", flush=True)


def _per_round(duration: float) -> int:
    return max(2, round(duration / ROUNDS) + 1)


def interleaved(pages: dict[str, str], duration: float) -> dict[str, dict]:
    """Each URL measured in turn, ROUNDS times: a spell of load from elsewhere weighs on
    all alike; the median of the rounds is kept."""
    runs: dict[str, list] = {key: [] for key in pages}
    for _round in range(ROUNDS):
        for key, url in pages.items():
            result = wrk(url, duration=_per_round(duration), warmup=1)
            if result.errors:
                raise RuntimeError(f"{key}: {result.errors} errors from {url}")
            runs[key].append(result.rps)
            _log(f"{key}: {result.rps:.0f} req/s")
    return {key: {"rps": statistics.median(r), "runs": r} for key, r in runs.items()}


def run(results) -> str:
    quick = getattr(results, "quick", False)
    duration = 3 if quick else 9
    figures: dict = {"load_before": load_average(), "baseline": BASELINE}
    spec = generate.Spec()
    store = generate.store_dataset(spec, log=_log) / "storage"
    big = generate.canonicalize_name(generate.BIG_PROJECT)
    compile_bytecode()
    baseline = baseline_checkout(BASELINE)
    figures["baseline_dir"] = baseline.name
    with tempfile.TemporaryDirectory(prefix="bench-repositories-") as tmp:
        work = Path(tmp)
        # 1. This code and the baseline, one data set, each its own database.
        new = Pypirepo(work / "new", store).spawn()
        old = Pypirepo(work / "old", store, code=baseline).spawn()
        # 2. A group of three: the data set in the last member (its prefix: packages/).
        grouped = Pypirepo(work / "group", store, app={
            "repositories": "a b c g",
            "repository.a.kind": "hosted", "repository.b.kind": "hosted",
            "repository.c.kind": "hosted", "repository.c.prefix": "packages/",
            "repository.g.kind": "group", "repository.g.members": "a b c",
        }).spawn()
        try:
            for proc in (new, old, grouped):
                proc.wait_for("/simple/" if proc is not grouped else "/r/c/simple/",
                              timeout=300)
            figures["default"] = interleaved({
                "root_new": f"{new.url}/simple/", "root_old": f"{old.url}/simple/",
                "project_new": f"{new.url}/simple/{big}/",
                "project_old": f"{old.url}/simple/{big}/",
            }, duration)
            figures["cpu"] = page_cpu(store, baseline, big, quick)
            figures["group"] = interleaved({
                "hosted": f"{grouped.url}/r/c/simple/{big}/",
                "group": f"{grouped.url}/r/g/simple/{big}/",
            }, duration)
        finally:
            for proc in (new, old, grouped):
                proc.stop()
        # 3. Promote over HTTP, files in moto's S3.
        figures["promote"] = _promote(work, 10 if quick else PROMOTE_FILES,
                                      1 if quick else PROMOTE_ROUNDS)
    figures["load_after"] = load_average()
    results[NAME] = figures
    return report(figures, results)


def page_cpu(store: Path, baseline: Path, big: str, quick: bool) -> dict:
    """Microseconds of CPU per cached page inside the process (benchmarks.page_cpu), this
    code and the baseline in turn, ROUNDS times: wrk's rates carry the machine's noise
    and the server's, this carries pypirepo's own work only."""
    calls = "3000" if quick else "20000"
    runs: dict[str, list] = {}
    for _round in range(ROUNDS):
        for code, env in (("new", {}), ("old", {"PYTHONPATH": str(baseline)})):
            for page, path in (("root", "/simple/"), ("project", f"/simple/{big}/")):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.page_cpu", str(store), path, calls],
                    cwd=generate.REPO, env=_clean_env(env), capture_output=True, text=True,
                    check=True, timeout=600)
                runs.setdefault(f"{page}_{code}", []).append(float(out.stdout.split()[-1]))
    _log("cpu per page (us): " + ", ".join(f"{k} {statistics.median(v):.1f}"
                                          for k, v in runs.items()))
    return {key: {"us": statistics.median(v), "runs": v} for key, v in runs.items()}


def _promote(work: Path, files: int, rounds: int) -> dict:
    from emulators import MotoS3  # tests/: the suite's own servers
    from passlib.hash import pbkdf2_sha256

    with MotoS3() as moto:
        server = Pypirepo(work / "promote", work / "unused", app={
            **moto.settings(moto.create_bucket()),
            "repositories": "dev release", "repository.dev.kind": "hosted",
            "repository.release.kind": "hosted",
            "user.bench": pbkdf2_sha256.hash(PASSWORD), "auth.admins": "bench",
        })
        proc = server.spawn()
        try:
            proc.wait_for("/r/dev/simple/", timeout=120)
            dists = work / "promote-dists"
            seconds = []
            for n in range(rounds):
                version = f"1.{n}"
                for i in range(files):
                    wheel = distfactory.make_wheel(
                        dists, "bench-promote", version, tag=f"py3-none-plat{i}",
                        payload_size=100_000)
                    _upload(proc.url + "/r/dev/legacy/", wheel, "bench-promote", version)
                started = time.perf_counter()
                answer = _post_json(f"{proc.url}/api/r/dev/projects/bench-promote/versions/"
                                    f"{version}/promote", {"to": "release"})
                seconds.append(time.perf_counter() - started)
                if len(answer["copied"]) != files:
                    raise RuntimeError(f"promote copied {len(answer['copied'])} of {files}")
                _log(f"promote of {files} files: {seconds[-1]:.2f}s")
        finally:
            proc.stop()
    return {"files": files, "seconds": statistics.median(seconds), "runs": seconds}


def _auth() -> str:
    return "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()


def _upload(url: str, path: Path, name: str, version: str) -> None:
    import requests
    from distfactory import upload_fields

    res = requests.post(url, data=upload_fields(path, name, version),
                        files={"content": (path.name, path.read_bytes())},
                        headers={"Authorization": _auth()}, timeout=60)
    res.raise_for_status()


def _post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": _auth()})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def report(figures: dict, results) -> str:
    d, g, p, c = figures["default"], figures["group"], figures["promote"], figures["cpu"]
    root = d["root_new"]["rps"] / d["root_old"]["rps"]
    project = d["project_new"]["rps"] / d["project_old"]["rps"]
    group = g["group"]["rps"] / g["hosted"]["rps"]
    t = TARGETS
    machine = getattr(results, "machine", None) or machine_facts()
    lines = [
        "## Repositories",
        "",
        f"Measured {machine['date']}, {commit_text(machine)}; load average "
        f"{figures['load_before']} before, {figures['load_after']} after. Pages by wrk "
        f"(2 threads, 16 connections) in {ROUNDS} interleaved rounds, medians; the baseline "
        f"is `{figures['baseline']}` ({figures['baseline_dir']}), the commit before "
        "repositories, served from the same data set.",
        "",
        "| what | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| default `/simple/` ({fmt_int(d['root_new']['rps'])} vs "
        f"{fmt_int(d['root_old']['rps'])} req/s) | {root:.0%} of before | "
        f"≥ {t['default_ratio']:.0%} | {verdict(root >= t['default_ratio'])} |",
        f"| default project page, 200 files ({fmt_int(d['project_new']['rps'])} vs "
        f"{fmt_int(d['project_old']['rps'])} req/s) | {project:.0%} of before | "
        f"≥ {t['default_ratio']:.0%} | {verdict(project >= t['default_ratio'])} |",
        f"| CPU per cached page in the process, `/simple/` | "
        f"{c['root_new']['us']:.1f} µs vs {c['root_old']['us']:.1f} µs before "
        f"({c['root_old']['us'] / c['root_new']['us']:.0%} of before's rate) | | |",
        f"| CPU per cached page in the process, project page | "
        f"{c['project_new']['us']:.1f} µs vs {c['project_old']['us']:.1f} µs before "
        f"({c['project_old']['us'] / c['project_new']['us']:.0%} of before's rate) | | |",
        f"| project page through a group of three, held by the last member "
        f"({fmt_int(g['group']['rps'])} vs {fmt_int(g['hosted']['rps'])} req/s) | "
        f"{group:.0%} of the hosted repository's | ≥ {t['group_ratio']:.0%} | "
        f"{verdict(group >= t['group_ratio'])} |",
        f"| promote of a {p['files']}-file release on S3 (moto), over HTTP | "
        f"{p['seconds']:.2f} s | ≤ {t['promote_seconds']:.0f} s | "
        f"{verdict(p['seconds'] <= t['promote_seconds'])} |",
        "",
        "Rounds (req/s): " + "; ".join(f"{k} {', '.join(f'{r:.0f}' for r in v['runs'])}"
                                       for k, v in {**d, **g}.items())
        + f". Promote rounds: {', '.join(f'{s:.2f}' for s in p['runs'])} s.",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    section_main(run, NAME, __doc__, argv)


if __name__ == "__main__":
    main()
