"""Issue 2's figures: start-up, simple pages under wrk, a 100 MiB download, a twine upload.

Every figure comes from pypirepo started with `pserve` as its own process on loopback, on
storage that the app's own upload path filled (benchmarks.generate).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from . import generate
from .harness import (
    SERVER_THREADS,
    commit_text,
    compile_bytecode,
    VENV_BIN,
    Pypirepo,
    fmt_int,
    fmt_ms,
    free_port,
    http_get,
    load_average,
    proc_status,
    reset_peak_rss,
    spawn,
    verdict,
    wrk,
)

NAME = "foundation"
STARTS = 3  # start-ups timed per database state; the median is reported
PAGE_ROUNDS = 3  # wrk runs per page, interleaved; the median is reported
UPLOADS = 200
DOWNLOAD_SIZE = 100 * 1024 * 1024
JSON = "application/vnd.pypi.simple.v1+json"
USER = "bench"

TARGETS = {
    "start_empty": 3.0,  # seconds
    "start_populated": 1.0,
    "root_rps": 2000,
    "project_rps": 3000,
    "project_p99": 15.0,  # ms
    "upload_fps": 120,
    "download_growth": 20 * 1000 * 1000,  # bytes
}


def _per_round(duration: float) -> int:
    """Seconds of each of a page's wrk runs: its share of `duration`, plus one."""
    return max(2, round(duration / PAGE_ROUNDS) + 1)


def _log(msg):
    print(f"[foundation] {msg}", flush=True)


def run(results) -> str:
    quick = getattr(results, "quick", False)
    duration = 3 if quick else 10
    spec = generate.Spec()
    store = generate.store_dataset(spec, log=_log) / "storage"
    download_set, download_item = generate.download_dataset(DOWNLOAD_SIZE, log=_log)
    upload_dir = generate.upload_dataset(UPLOADS, log=_log)
    password = "bench-" + os.urandom(8).hex()
    from pypirepo.access import PASSWORDS

    # A real passlib hash, so the upload pays what a configured user costs (the credential
    # cache is what keeps that off the per-request path).
    users = {f"user.{USER}": PASSWORDS.hash(password)}
    figures: dict = {"load_before": load_average(), "spec": vars(spec)}
    compile_bytecode()

    with tempfile.TemporaryDirectory(prefix="bench-foundation-") as tmp:
        work = Path(tmp)
        server = Pypirepo(work / "main", store, app=users)

        # 1. Start-up to the first /simple/ answer: empty database (migrate + reconcile
        #    15,000 records), then populated (reconcile finds nothing to do).
        empty, populated = [], []
        proc = None
        for state, times in (("empty", empty), ("populated", populated)):
            for i in range(STARTS):
                if state == "empty":
                    server.drop_database()
                proc = server.spawn()
                times.append(proc.wait_for("/simple/"))
                _log(f"start-up, {state} database: {times[-1]:.2f}s")
                if not (state == "populated" and i == STARTS - 1):
                    proc.stop()
        figures["start_empty"], figures["start_populated"] = empty, populated

        try:
            _check_pages(proc.port, spec)
            big = generate.canonicalize_name(generate.BIG_PROJECT)
            # 2. Pages under load: wrk and the server share the two cores. The bare Pyramid
            #    ceiling is measured before and after them, so a busy machine shows in both.
            bare_runs = [_bare(work, duration)]
            runs = {
                "root": (f"{proc.url}/simple/", {}),
                "project": (f"{proc.url}/simple/{big}/", {}),
                "project_json": (f"{proc.url}/simple/{big}/", {"Accept": JSON}),
                "project_auth": (f"{proc.url}/simple/{big}/",
                                 {"Authorization": _basic(USER, password)}),
            }
            # Rounds, each page in turn: a spell of load from elsewhere on the shared
            # machine then weighs on every page alike, and the median drops it.
            measured: dict = {key: [] for key in runs}
            for _round in range(PAGE_ROUNDS):
                for key, (url, headers) in runs.items():
                    result = wrk(url, headers, duration=_per_round(duration), warmup=1)
                    measured[key].append(result.as_dict())
                    _log(f"{key}: {result.rps:.0f} req/s, p99 {result.p99:.1f} ms, "
                         f"{result.errors} errors")
            for key, rounds in measured.items():
                figures[key] = {k: statistics.median(r[k] for r in rounds)
                                for k in ("rps", "p50", "p90", "p99")}
                figures[key].update(errors=sum(r["errors"] for r in rounds),
                                    runs=[r["rps"] for r in rounds])
            bare_runs.append(_bare(work, duration))
            figures["bare"] = {k: statistics.mean(r[k] for r in bare_runs)
                               for k in ("rps", "p50", "p90", "p99")}
            figures["bare"].update(errors=sum(r["errors"] for r in bare_runs),
                                   runs=[r["rps"] for r in bare_runs])
            figures["sizes"] = {
                "root": len(http_get(proc.port, "/simple/")[1]),
                "project": len(http_get(proc.port, f"/simple/{big}/")[1]),
                "project_json": len(http_get(proc.port, f"/simple/{big}/", {"Accept": JSON})[1]),
            }
            figures["rss_after_load"] = proc_status(proc.pid).get("VmRSS", 0)
        finally:
            proc.stop()

        # 3. A 100 MiB download and the server's memory while it streams, then 4. uploads
        #    with twine, on a fresh server holding only the big file.
        storage = work / "dl-storage"
        _link_tree(download_set / "storage", storage)
        server = Pypirepo(work / "dl", storage, app=users)
        proc = server.spawn()
        try:
            proc.wait_for("/simple/")
            figures["download"] = _download(proc, download_item, storage)
            _log(f"download: {figures['download']['seconds']:.2f}s, peak RSS growth "
                 f"{figures['download']['growth'] / 1e6:.1f} MB")
            figures["upload"] = _twine_upload(proc, upload_dir, password, work)
            _log(f"upload: {figures['upload']['files_per_s']:.1f} files/s")
        finally:
            proc.stop()

    figures["load_after"] = load_average()
    results[NAME] = figures
    return report(figures, results)


def _bare(work: Path, duration: float) -> dict:
    """The ceiling on this machine: a bare Pyramid view on waitress."""
    port = free_port()
    folder = work / "bare"
    folder.mkdir(exist_ok=True)
    bare = spawn([str(VENV_BIN / "python"), "-m", "benchmarks.bare_app", str(port)],
                 folder, port, {"PYTHONPATH": str(generate.REPO)})
    try:
        bare.wait_for("/", timeout=30)
        result = wrk(f"{bare.url}/", duration=duration)
    finally:
        bare.stop()
    _log(f"bare pyramid: {result.rps:.0f} req/s, p99 {result.p99:.1f} ms")
    return result.as_dict()


def _basic(user, password) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _check_pages(port: int, spec) -> None:
    """The server must serve the whole data set, or its speed means nothing."""
    status, body = http_get(port, "/simple/")
    anchors = body.count(b"<a ")
    if status != 200 or anchors != spec.projects:
        raise RuntimeError(f"/simple/ lists {anchors} projects, expected {spec.projects}")
    big = generate.canonicalize_name(generate.BIG_PROJECT)
    status, body = http_get(port, f"/simple/{big}/", {"Accept": JSON})
    files = json.loads(body)["files"] if status == 200 else []
    if len(files) != spec.big_files:
        raise RuntimeError(f"/simple/{big}/ lists {len(files)} files, expected {spec.big_files}")


def _link_tree(source: Path, target: Path) -> None:
    # Hard links: the server only ever replaces files, never writes into them.
    for folder, _dirs, files in os.walk(source):
        dest = target / Path(folder).relative_to(source)
        dest.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder) / name, dest / name)
            except OSError:
                import shutil

                shutil.copy2(Path(folder) / name, dest / name)


def _download(proc, item, storage: Path) -> dict:
    project = item.project
    path = f"/packages/{project}/{item.filename}"
    record = json.loads((storage / "packages" / project / (item.filename + ".json")).read_bytes())
    # Warm the download view (ORM, statement caches) with a one-byte range, so what follows
    # measures streaming and not first use.
    status, _ = http_get(proc.port, path, {"Range": "bytes=0-0"})
    if status != 206:
        raise RuntimeError(f"a ranged download answered {status}")
    peak_reset = reset_peak_rss(proc.pid)
    before = proc_status(proc.pid)
    status, size, seconds = _stream(proc.port, path)
    after = proc_status(proc.pid)
    if status != 200 or size != record["size"]:
        raise RuntimeError(f"download answered {status} with {size} bytes")
    # Memory kept after one download per server thread: each thread may keep its own.
    for _ in range(SERVER_THREADS):
        _stream(proc.port, path)
    retained = proc_status(proc.pid)["VmRSS"] - before["VmRSS"]
    # The bytes must be the right ones too (checked after timing, off the clock).
    _status, body = http_get(proc.port, path, timeout=60)
    if hashlib.sha256(body).hexdigest() != record["sha256"]:
        raise RuntimeError("downloaded bytes do not match the stored sha256")
    del body
    baseline = before["VmRSS"] if peak_reset else before["VmHWM"]
    return {
        "size": size,
        "seconds": seconds,
        "mib_per_s": size / seconds / 2**20,
        "rss_before": before["VmRSS"],
        "hwm_before": before["VmHWM"],
        "hwm_after": after["VmHWM"],
        "rss_after": after["VmRSS"],
        "peak_reset": peak_reset,
        "growth": max(0, after["VmHWM"] - baseline),
        "retained_after": SERVER_THREADS + 1,
        "retained": retained,
    }


def _stream(port: int, path: str) -> tuple[int, int, float]:
    """(status, bytes, seconds) of a GET read in 1 MiB pieces and thrown away."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    conn.request("GET", path)
    response = conn.getresponse()
    size = 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
    seconds = time.monotonic() - started
    conn.close()
    return response.status, size, seconds


def _twine_upload(proc, upload_dir: Path, password: str, work: Path, user: str = USER) -> dict:
    files = sorted(str(p) for p in upload_dir.iterdir())
    pypirc = work / "empty.pypirc"
    pypirc.write_text("")
    twine = str(VENV_BIN / "twine")
    started = time.monotonic()
    subprocess.run([twine, "--version"], capture_output=True, check=True)
    twine_start = time.monotonic() - started
    cmd = [twine, "upload", "--non-interactive", "--disable-progress-bar",
           "--config-file", str(pypirc), "--repository-url", f"{proc.url}/legacy/",
           "-u", user, "-p", password, *files]
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    env = {k: v for k, v in env.items() if not k.startswith("TWINE_")}
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    seconds = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"twine upload failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    # Every file must be listed on the very next index request.
    listed = 0
    for p in range(10):
        status, body = http_get(proc.port, f"/simple/bench-upload-{p:02d}/", {"Accept": JSON})
        listed += len(json.loads(body)["files"]) if status == 200 else 0
    if listed != len(files):
        raise RuntimeError(f"{listed} of {len(files)} uploaded files are listed")
    return {"files": len(files), "seconds": seconds, "files_per_s": len(files) / seconds,
            "twine_start": twine_start}


# --- the report ---------------------------------------------------------------------------------


def report(f: dict, results) -> str:
    t = TARGETS
    se, sp = statistics.median(f["start_empty"]), statistics.median(f["start_populated"])
    runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    root, proj, pjson, pauth, bare = f["root"], f["project"], f["project_json"], \
        f["project_auth"], f["bare"]
    dl, up = f["download"], f["upload"]
    machine = getattr(results, "machine", {})
    per_round = _per_round(3 if getattr(results, "quick", False) else 10)

    def page(r, ratio=True):
        errs = f", {r['errors']} errors" if r["errors"] else ""
        # The share of the bare ceiling measured in the same minutes is steadier than the
        # absolute rate on a machine that other work shares.
        share = f", {r['rps'] / bare['rps']:.0%} of bare" if ratio and bare["rps"] else ""
        rounds = (" (runs: " + ", ".join(fmt_int(x) for x in r["runs"]) + ")"
                  if ratio and r.get("runs") else "")
        return (f"{fmt_int(r['rps'])} req/s, p99 {fmt_ms(r['p99'])} "
                f"(p50 {fmt_ms(r['p50'])}){share}{errs}{rounds}")

    rows = [
        ("Start-up to first `/simple/`, 15,000 files, **empty** DB",
         f"{se:.2f} s (runs: {runs(f['start_empty'])})", f"≤ {t['start_empty']:.0f} s",
         verdict(se <= t["start_empty"]), "pypicloud: 5.4 s first start"),
        ("Start-up to first `/simple/`, 15,000 files, **populated** DB",
         f"{sp:.2f} s (runs: {runs(f['start_populated'])})", f"≤ {t['start_populated']:.0f} s",
         verdict(sp <= t["start_populated"]), ""),
        ("`/simple/` (5,000 projects), HTML", page(root), f"≥ {fmt_int(t['root_rps'])} req/s",
         verdict(root["rps"] >= t["root_rps"] and not root["errors"]),
         "pypicloud: 19 req/s"),
        ("Project page (200 files), HTML", page(proj),
         f"≥ {fmt_int(t['project_rps'])} req/s, p99 ≤ {t['project_p99']:.0f} ms",
         verdict(proj["rps"] >= t["project_rps"] and proj["p99"] <= t["project_p99"]
                 and not proj["errors"]),
         "devpi: 138 req/s, p99 184 ms"),
        ("Project page (200 files), JSON (PEP 691)", page(pjson),
         f"≥ {fmt_int(t['project_rps'])} req/s, p99 ≤ {t['project_p99']:.0f} ms",
         verdict(pjson["rps"] >= t["project_rps"] and pjson["p99"] <= t["project_p99"]
                 and not pjson["errors"]), ""),
        ("Project page (200 files), HTML, with Basic auth", page(pauth), "—", "", ""),
        ("Bare Pyramid view on waitress (the ceiling here)",
         page(bare, ratio=False) + " (runs: "
         + ", ".join(fmt_int(x) for x in bare.get("runs", [])) + ")", "—", "",
         "the issue: about 6,000 req/s"),
        ("Download of a 100 MiB wheel",
         f"{dl['seconds']:.2f} s ({dl['mib_per_s']:.0f} MiB/s), peak RSS growth "
         f"{dl['growth'] / 1e6:.1f} MB; RSS kept after {dl['retained_after']} downloads: "
         f"+{dl['retained'] / 1e6:.0f} MB", f"growth ≤ {t['download_growth'] / 1e6:.0f} MB",
         verdict(dl["growth"] <= t["download_growth"]), ""),
        (f"`twine upload` of {up['files']} files, password auth",
         f"{up['files_per_s']:.1f} files/s ({up['seconds']:.2f} s)",
         f"≥ {t['upload_fps']} files/s", verdict(up["files_per_s"] >= t["upload_fps"]),
         "devpi: 9 uploads/s"),
    ]
    lines = [
        "## Foundation (issue 2)",
        "",
        f"Measured {machine.get('date', '')} at {commit_text(machine)}; "
        f"load average {f['load_before']} before the run, {f['load_after']} after "
        "(other work on this shared machine shows up as noise).",
        "",
        "| What | Measured | Target | Met | Peers (same machine, as the issue gives them) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [
        "",
        "How:",
        "",
        "- Data: `benchmarks/generate.py` pushes real wheels and sdists through the app's own "
        "upload service in-process, so storage holds exactly what uploads leave: 5,000 "
        "projects, 15,000 files, one project (`bench-big`) with 200 files (100 versions, "
        "wheel + sdist).",
        f"- Server: `pserve` with development.ini's waitress settings ({SERVER_THREADS} "
        "threads, `send_bytes` 512 KiB), SQLite, local storage, anonymous "
        "read, fallback off; spawned as a process, `/simple/` polled every 5 ms from the "
        f"spawn. Start-ups are the median of {STARTS}. pypirepo is byte-compiled first, as "
        "installing its wheel does (the checkout is an editable install, and these machines "
        "set PYTHONDONTWRITEBYTECODE).",
        f"- Pages: `wrk -t2 -c16 -d{per_round}s --latency` on loopback after a 1 s warm-up, "
        f"{PAGE_ROUNDS} rounds with each page in turn; the median of the rounds is reported "
        "(rate, p50 and p99 each), the rounds' rates in brackets. wrk and the server share the "
        "2 cores. The bare view "
        "(`benchmarks/bare_app.py`, same waitress threads) runs before and after the pages; "
        "its mean is the ceiling the pages are compared with. Page sizes: "
        f"`/simple/` {f['sizes']['root'] / 1024:.0f} KiB, project page "
        f"{f['sizes']['project'] / 1024:.0f} KiB (HTML) / "
        f"{f['sizes']['project_json'] / 1024:.0f} KiB (JSON). Server RSS after the page runs: "
        f"{f['rss_after_load'] / 1e6:.0f} MB.",
        "- Download: one streaming GET with peak RSS reset first "
        f"(`/proc/<pid>/clear_refs`{'' if dl['peak_reset'] else ', not permitted here'}); "
        f"growth = VmHWM after − VmRSS before ({dl['rss_before'] / 1e6:.0f} → "
        f"peak {dl['hwm_after'] / 1e6:.0f} MB), after a one-byte ranged GET warmed the "
        f"view. Then {dl['retained_after'] - 1} more downloads, one per server thread, and "
        "the RSS kept at the end; the bytes are checked against the stored sha256.",
        f"- Upload: one `twine upload` of {up['files']} files (10 projects) to `/legacy/` as a "
        "user with a pbkdf2 hash in the ini; wall time of the command, which includes "
        f"twine's own start ({up['twine_start']:.2f} s for `twine --version`). Every file is "
        "then checked to be listed.",
        "- Run it again with `make bench` (or `python -m benchmarks.run --only foundation`).",
    ]
    return "\n".join(lines)
