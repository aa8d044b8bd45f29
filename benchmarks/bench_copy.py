"""Copies inside the store: what promoting a release (issue 10) costs the storage layer.

A release of 100 files is 300 objects: each distribution (about 100 KB), its .metadata
and its record. `Storage.copy_many` copies them into another repository's prefix, on a
real local server per backend (tests/emulators.py): moto for S3 (the target's store),
fake-gcs-server for GCS, Azurite for Azure, and local storage (hard links) for reference.
Each round copies into a fresh prefix; the median of the rounds is reported, and beside
it the same objects moved the way a copy must never go: read into pypirepo and written
back (read_many, then put_bytes in parallel).

    python -m benchmarks.bench_copy [--quick]     # or: python -m benchmarks.run --only copy
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .bench_storage import storage_of
from .harness import BENCHMARKS_MD, cpu_seconds, load_average, run_alone

from emulators import EMULATORS, missing_component  # noqa: E402 - tests/ is on sys.path through .harness

NAME = "copy"
FILES = 100
DIST_SIZE = 100 * 1000
ROUNDS = 5
PROMOTE_TARGET = 2.0  # seconds for the whole promote of 100 files on the local S3 server
KINDS = ("local", "s3", "gcs", "azure")
LABELS = {"local": "local (reference)", "s3": "S3 (moto)", "gcs": "GCS (fake-gcs-server)",
          "azure": "Azure (Azurite)"}


def release(files: int) -> dict[str, bytes]:
    """The objects of one release of one project (a wheel per build tag, as a release
    with many platform wheels has): per file a ~100 KB wheel, its .metadata and record."""
    objects = {}
    for i in range(files):
        dist = f"packages/bench-copy/bench_copy-1.0-{i}-py3-none-any.whl"
        data = hashlib.shake_256(dist.encode()).digest(DIST_SIZE)
        objects[dist] = data
        objects[dist + ".metadata"] = ("Metadata-Version: 2.1\nName: bench-copy\nVersion: 1.0\n"
                                       + "Summary: a benchmark package\n" * 20).encode()
        objects[dist + ".json"] = (
            '{"filename": "%s", "sha256": "%s", "size": %d, "uploaded_by": "bench"}'
            % (dist.rsplit("/", 1)[1], hashlib.sha256(data).hexdigest(), len(data))).encode()
    return objects


def measure(kind: str, settings: dict, objects: dict[str, bytes], rounds: int,
            server_pid: int | None) -> dict:
    store = storage_of(settings)
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda item: store.put_bytes(f"dev/{item[0]}", item[1]),
                          objects.items()))
        copies, cpus = [], []
        for n in range(rounds):
            pairs = [(f"dev/{key}", f"release-{n}/{key}") for key in objects]
            cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
            started = time.perf_counter()
            infos = store.copy_many(pairs)
            copies.append(time.perf_counter() - started)
            cpus.append(cpu_seconds(server_pid) - cpu_before if server_pid else 0.0)
            if [i.size for i in infos] != [len(objects[k]) for k in objects]:
                raise RuntimeError(f"{kind}: a copy reported the wrong size")
        # Every byte of the last round, read back.
        last = [dst for _src, dst in pairs]
        for (key, data), (_dst, got) in zip(objects.items(), store.read_many(last)):
            if got != data:
                raise RuntimeError(f"{kind}: the copy of {key} differs")

        # For comparison: the bytes through pypirepo, as parallel as copy_many is.
        throughs = []
        for n in range(rounds):
            started = time.perf_counter()
            got = dict(store.read_many([f"dev/{key}" for key in objects]))
            workers = max(1, store.parallelism)
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda key: store.put_bytes(f"through-{n}/{key}",
                                                          got[f"dev/{key}"]), objects))
            throughs.append(time.perf_counter() - started)
        return {"objects": len(objects), "parallelism": store.parallelism,
                "copy_s": statistics.median(copies), "copy_runs": copies,
                "server_cpu_s": statistics.median(cpus) if server_pid else None,
                "through_s": statistics.median(throughs), "through_runs": throughs}
    finally:
        store.close()


def run(results) -> str:
    quick = getattr(results, "quick", False)
    rounds = 2 if quick else ROUNDS
    missing = [k for k in KINDS if k != "local" and missing_component(k)]
    if missing:
        raise RuntimeError("; ".join(missing_component(k) for k in missing))
    objects = release(FILES)
    figures: dict = {"files": FILES, "rounds": rounds, "load_before": load_average(),
                     "backends": {}}
    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
        for kind in KINDS:
            try:
                if kind == "local":
                    settings = {"pypirepo.storage": "local",
                                "storage.dir": str(Path(tmp) / "local-store")}
                    found = measure(kind, settings, objects, rounds, None)
                else:
                    with EMULATORS[kind]() as emulator:
                        settings = emulator.settings(emulator.create_bucket(), prefix="bench")
                        found = measure(kind, settings, objects, rounds, emulator.pid)
            except Exception as exc:  # noqa: BLE001 - keep the other backends' figures
                figures.setdefault("errors", {})[kind] = f"{type(exc).__name__}: {exc}"[:2000]
                print(f"[copy] {kind} failed: {exc}", file=sys.stderr, flush=True)
                continue
            figures["backends"][kind] = found
            print(f"[copy] {kind}: {found}", flush=True)
    figures["load_after"] = load_average()
    results[NAME] = figures
    return markdown(figures, quick)


def markdown(f: dict, quick: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "## Copies inside the store (promote, issue 10)",
        "",
        f"Measured {when}{' (quick run)' if quick else ''} by `python -m benchmarks.bench_copy`;"
        f" load average {f['load_before']} before, {f['load_after']} after (the machine is "
        "shared with other work).",
        "",
        f"A release of {f['files']} files, {f['files'] * 3} objects (a {DIST_SIZE // 1000} KB "
        "wheel, its .metadata and its record each), copied into another prefix with "
        "`Storage.copy_many`, `storage.parallelism` (32) at a time: on S3 one listing of "
        "the project's folder and a CopyObject per object; on GCS a rewrite; on Azure a "
        "HEAD and a Copy Blob From URL; on local storage a hard link each, one after the "
        "other. *store CPU* is the store server's own CPU time during the copies. Median of "
        f"{f['rounds']} rounds, each into a fresh prefix; *through pypirepo* is the same "
        "objects read into the process and written back, as parallel, for comparison.",
        "",
        "| backend | copy_many | per object | store CPU | through pypirepo |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, r in f["backends"].items():
        cpu = f"{r['server_cpu_s']:.2f} s" if r["server_cpu_s"] is not None else "-"
        lines.append(
            f"| {LABELS[kind]} | {r['copy_s']:.2f} s | {r['copy_s'] / r['objects'] * 1000:.1f} ms "
            f"| {cpu} | {r['through_s']:.2f} s |")
    s3 = f["backends"].get("s3")
    if s3:
        ok = s3["copy_s"] <= PROMOTE_TARGET
        lines += ["", f"Target: a promote of a {f['files']}-file release on the local S3 server "
                  f"in ≤ {PROMOTE_TARGET:.0f} s, database work included. The copies take "
                  f"{s3['copy_s']:.2f} s of it (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in s3['copy_runs'])}), "
                  f"{'within' if ok else '**over**'} the whole budget on their own, with "
                  f"moto (Python, on the same 2 cores) using {s3['server_cpu_s']:.2f} s of "
                  "CPU."]
    for kind, error in f.get("errors", {}).items():
        lines += ["", f"**{LABELS[kind]} failed:** `{error.splitlines()[0][:300]}`"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)
    # A stop by signal still stops the store servers we started (context managers).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_alone(run, NAME, args.output, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
