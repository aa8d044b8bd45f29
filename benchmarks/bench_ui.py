"""The web UI's browsing pages (issue 12): each ≤ 50 ms median on this machine.

1. A repository page of 100,000 projects: the default repository (a group of the hosted
   `local`, which holds them, and the proxy `pypi`), by name and by last upload, pages
   spread over the whole list; and the hosted repository itself at /r/local/.
2. Search over the same 100,000 projects (names and summaries).
3. A project page with 200 files and a long README (about 40 kB of Markdown).

Every URL is asked twice in a row: the first answer ("cold") is built from the database
(its list, count or page was never asked before in this process), the second is the
process's kept answer ("warm"). Sequential requests on one kept-alive connection; the
time is the client's, from sending the request to the last byte of the answer.

The data set is written as records straight into local storage (what the rebuild reads:
generating 100,000 real uploads would take an hour), and the server's start-up reconcile
fills its database from them, as after a lost database.

    python -m benchmarks.run --only ui [--quick]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from . import generate
from .harness import (
    Pypirepo,
    commit_text,
    compile_bytecode,
    fmt_int,
    load_average,
    machine_facts,
    section_main,
    verdict,
)

NAME = "ui"
PROJECTS = 100_000
BIG = "bench-big"
BIG_VERSIONS = 100  # a wheel and an sdist each: 200 files
TARGET_MS = 50.0
DATASET_VERSION = 1
WORDS = ("async", "parser", "client", "toolkit", "cloud", "image", "yaml", "graph",
         "testing", "crypto", "widget", "queue", "schema", "logger", "cache", "stream",
         "vector", "audio", "geo", "matrix")


def _log(msg):
    print(f"[{NAME}] {msg}", flush=True)


def readme_text() -> str:
    """A long README in Markdown: headings, prose, code, a table, lists (about 40 kB)."""
    parts = ["# bench-big\n\nA project with many releases and a long description.\n"]
    for i in range(60):
        parts.append(f"## Section {i}\n\nSome *prose* about feature {i}, with `inline code`, "
                     "a [link](https://docs.example/feature) and **emphasis**. " * 3 + "\n")
        parts.append(f"```python\nimport bench_big\nbench_big.feature_{i}(x=1, y=[1, 2, 3])\n"
                     "```\n")
        if i % 10 == 0:
            parts.append("| option | meaning |\n| --- | --- |\n" +
                         "".join(f"| `opt{j}` | what option {j} does |\n" for j in range(8)))
            parts.append("".join(f"- item {j}\n" for j in range(6)))
    return "\n".join(parts)


def _record(project: str, display: str, filename: str, version: str, packagetype: str,
            when: dt.datetime, info: dict) -> bytes:
    digest = hashlib.sha256(filename.encode()).hexdigest()
    return json.dumps({
        "project": project, "display_name": display, "filename": filename,
        "version": version, "canonical_version": version, "packagetype": packagetype,
        "python_version": "py3" if packagetype == "bdist_wheel" else "source",
        "size": 20_000 + len(filename), "sha256": digest, "md5": digest[:32],
        "blake2_256": digest, "upload_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "requires_python": ">=3.9", "metadata_sha256": None, "uploader": "bench",
        "yanked": False, "yanked_reason": None, "origin": "private", "info": info,
        "format": 1,
    }, separators=(",", ":")).encode()


def write_dataset(root: Path, projects: int) -> None:
    """Records of `projects` projects under root/storage/packages/: one wheel each, and
    bench-big with BIG_VERSIONS releases of a wheel and an sdist, a long README in each."""
    rng = random.Random(12)
    base = dt.datetime(2024, 1, 1)
    packages = root / "storage" / "packages"
    for i in range(projects - 1):
        name = f"bench-proj-{i:06d}"
        words = " ".join(rng.sample(WORDS, 3))
        folder = packages / name
        folder.mkdir(parents=True)
        filename = f"bench_proj_{i:06d}-1.{i % 7}.0-py3-none-any.whl"
        info = {"name": name, "version": f"1.{i % 7}.0", "summary": f"A {words} library",
                "license_expression": "MIT"}
        when = base + dt.timedelta(seconds=rng.randrange(60 * 86400))
        (folder / (filename + ".json")).write_bytes(
            _record(name, name, filename, f"1.{i % 7}.0", "bdist_wheel", when, info))
    folder = packages / BIG
    folder.mkdir(parents=True)
    readme = readme_text()
    for v in range(BIG_VERSIONS):
        version = f"{v // 10}.{v % 10}.0"
        info = {"name": "Bench-Big", "version": version, "summary": "The big one",
                "description": readme, "description_content_type": "text/markdown",
                "license_expression": "MIT", "author": "Bench",
                "classifiers": ["Programming Language :: Python :: 3"],
                "requires_dist": ["requests>=2"], "requires_python": ">=3.9",
                "project_urls": ["Documentation, https://docs.example/big"]}
        when = base + dt.timedelta(days=v)
        for filename, kind in ((f"bench_big-{version}-py3-none-any.whl", "bdist_wheel"),
                               (f"bench_big-{version}.tar.gz", "sdist")):
            (folder / (filename + ".json")).write_bytes(
                _record(BIG, "Bench-Big", filename, version, kind, when, info))


def dataset(projects: int) -> Path:
    folder = generate.DATA / f"ui-p{projects}-v{DATASET_VERSION}"
    if (folder / "done.json").exists():
        return folder
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    _log(f"writing the records of {projects:,} projects...")
    write_dataset(folder, projects)
    (folder / "done.json").write_text(json.dumps(
        {"projects": projects, "seconds": round(time.monotonic() - started, 1)}))
    return folder


class Client:
    """One kept-alive connection; each GET timed to its last byte."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers={"Accept": "text/html"})
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
        return elapsed, body


def measure(client: Client, paths: list[str], check: bytes | None = None) -> dict:
    cold, warm = [], []
    for path in paths:
        ms, body = client.get(path)
        if check is not None and check not in body:
            raise RuntimeError(f"{path}: the answer lacks {check!r}")
        cold.append(ms)
        warm.append(client.get(path)[0])
    return {"requests": len(paths), "first": cold[0], "cold": statistics.median(cold),
            "cold_p90": _p90(cold), "warm": statistics.median(warm), "warm_p90": _p90(warm)}


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


def run(results) -> str:
    quick = getattr(results, "quick", False)
    projects = 5_000 if quick else PROJECTS
    figures: dict = {"load_before": load_average(), "projects": projects}
    data = dataset(projects)
    compile_bytecode()
    pages = max(1, (projects - 1) // 50)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        server = Pypirepo(Path(tmp) / "server", data / "storage")
        proc = server.spawn()
        try:
            figures["start_seconds"] = proc.wait_for("/_health", timeout=900)
            proc.wait_for("/projects/", timeout=60)
            client = Client(proc.port)
            n = 10 if quick else 40
            spread = [1, 2] + [rng.randrange(1, pages + 1) for _ in range(n - 3)] + [pages]
            figures["group_name"] = measure(client, [f"/projects/?page={p}" for p in spread])
            _log(f"group by name: {figures['group_name']}")
            figures["group_updated"] = measure(
                client, [f"/projects/?sort=updated&page={p}" for p in spread])
            _log(f"group by last upload: {figures['group_updated']}")
            figures["hosted_name"] = measure(client, [f"/r/local/?page={p}" for p in spread])
            _log(f"hosted by name: {figures['hosted_name']}")
            # Names as people look for them: a fragment of a name (a few matches).
            fragments = [f"proj-{rng.randrange(projects - 1):06d}"[:-1] for _ in range(n)]
            figures["search_names"] = measure(client, [f"/search?q={q}" for q in fragments])
            _log(f"search, name fragments: {figures['search_names']}")
            # The worst case: a word in 15 % of the summaries (15,000 matches to rank and
            # count), or two words in a row.
            words = (list(WORDS) + [f"{a}+{b}" for a, b in zip(WORDS, WORDS[1:])])[:n]
            figures["search_words"] = measure(client, [f"/search?q={q}" for q in words])
            _log(f"search, common words: {figures['search_words']}")
            versions = [f"{v // 10}.{v % 10}.0" for v in range(BIG_VERSIONS)]
            figures["project"] = measure(
                client, [f"/project/{BIG}/"] + [f"/project/{BIG}/{v}/"
                                               for v in rng.sample(versions, n - 1)],
                check=b"Section 59")
            _log(f"project page: {figures['project']}")
            size = len(client.get(f"/project/{BIG}/")[1])
            figures["project_bytes"] = size
        finally:
            proc.stop()
    figures["load_after"] = load_average()
    results[NAME] = figures
    return report(figures, results)


def report(figures: dict, results) -> str:
    machine = getattr(results, "machine", None) or machine_facts()
    rows = [
        ("repository page, default group, by name", "group_name"),
        ("repository page, default group, by last upload", "group_updated"),
        ("repository page, hosted `/r/local/`, by name", "hosted_name"),
        ("search, a fragment of a name", "search_names"),
        ("search, a word in 15 % of the summaries", "search_words"),
        ("project page, 200 files, 40 kB README", "project"),
    ]
    lines = [
        "## Web UI (issue 12)",
        "",
        f"Measured {machine['date']}, {commit_text(machine)}; load average "
        f"{figures['load_before']} before, {figures['load_after']} after (the machine is "
        "shared: other sessions' tests ran meanwhile). "
        f"{fmt_int(figures['projects'])} projects (one wheel each, and `bench-big`: 200 "
        "files, a long Markdown README in each), records written straight into local "
        f"storage and reconciled into an empty SQLite database at start-up "
        f"({figures['start_seconds']:.1f} s). Sequential GETs on one kept-alive "
        "connection, the client's time to the last byte; each URL asked twice: *cold* is "
        "the first answer (built from the database: that list, count, search or release "
        "never asked before in the process), *warm* the second (the process's kept "
        "answer, after one freshness read).",
        "",
        "| page | URLs | cold median (p90) | warm median (p90) | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, key in rows:
        f = figures[key]
        lines.append(
            f"| {label} | {f['requests']} | {f['cold']:.1f} ms ({f['cold_p90']:.1f}) | "
            f"{f['warm']:.1f} ms ({f['warm_p90']:.1f}) | ≤ {TARGET_MS:.0f} ms | "
            f"{verdict(f['cold'] <= TARGET_MS)} |")
    lines += [
        "",
        "Pages asked for: by name and by last upload, pages 1, 2, the last and random ones "
        "between; searches for fragments of names (about ten matches each), and for words "
        "each in about 15 % of the summaries, or two of them (every match ranked and "
        "counted); the project page's latest release and random older "
        f"ones (their README rendered once, then kept by its digest). The project page is "
        f"{figures['project_bytes'] / 1024:.0f} KiB; its very first answer, the README "
        f"rendered then, took {figures['project']['first']:.1f} ms.",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    section_main(run, NAME, __doc__, argv)


if __name__ == "__main__":
    main()
