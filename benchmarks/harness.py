"""What every benchmark section needs: servers as real processes, wrk, /proc figures, and
the BENCHMARKS.md section markers. Shared by bench_foundation, bench_storage, bench_fallback.
"""

from __future__ import annotations

import configparser
import datetime as dt
import http.client
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .generate import REPO, TESTS

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from servers import free_port, stop  # noqa: E402

VENV_BIN = Path(sys.executable).parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def development_server_settings() -> dict[str, str]:
    """development.ini's [server:main]: the benchmarks measure the server users run."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "development.ini")
    found = dict(parser["server:main"]) if parser.has_section("server:main") else {}
    found.pop("listen", None)
    found.setdefault("use", "egg:waitress#main")
    return found


SERVER_THREADS = int(development_server_settings().get("threads", 4))  # waitress' default: 4


def write_ini(directory: Path, app: dict, port: int, server: dict | None = None,
              use: str = "egg:pypirepo") -> Path:
    """An ini with app's settings and development.ini's server, on 127.0.0.1:port."""
    server = dict(development_server_settings(), **(server or {}), listen=f"127.0.0.1:{port}")
    lines = ["[app:main]", f"use = {use}"]
    lines += [ini_line(k, v) for k, v in app.items()]
    lines += ["", "[server:main]"] + [ini_line(k, v) for k, v in server.items()]
    # Warnings only: per-request logging would be measured too.
    lines += ["", "[loggers]", "keys = root", "", "[handlers]", "keys = console", "",
              "[formatters]", "keys = generic", "", "[logger_root]", "level = WARNING",
              "handlers = console", "", "[handler_console]", "class = StreamHandler",
              "args = (sys.stderr,)", "level = NOTSET", "formatter = generic", "",
              "[formatter_generic]", "format = %(asctime)s %(levelname)s [%(name)s] %(message)s",
              ""]
    ini = directory / "server.ini"
    ini.write_text("\n".join(lines))
    return ini


def ini_line(key: str, value) -> str:
    """`key = value`; a value of several lines (`grants`) as configparser reads one back:
    the first on the key's line, the others indented below it."""
    first, *more = str(value).splitlines() or [""]
    return "\n".join([f"{key} = {first}".rstrip(), *(f"    {line}" for line in more)])


# --- the machine -----------------------------------------------------------------------------


def machine_facts() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    # The tree is shared with work in progress: say so when the measured code differs.
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "pypirepo", "templates",
                            "migrations", "development.ini", "setup.cfg"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    wrk_version = ""
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        wrk_version = (out.stdout + out.stderr).split("[")[0].strip()
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "dirty": bool(dirty),
        "wrk": wrk_version,
        "load": load_average(),
    }


def commit_text(machine: dict) -> str:
    text = f"commit `{machine.get('commit', '?')}`"
    return text + " + uncommitted changes" if machine.get("dirty") else text


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- /proc figures of a server process ---------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            found[key] = int(value.split()[0]) * 1024
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, own processes), so a later VmHWM is
    the peak of what happened in between rather than of the start-up."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- servers -----------------------------------------------------------------------------------


def http_get(port: int, path: str, headers=None, timeout=5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def compile_bytecode() -> None:
    """Byte-compile pypirepo, as installing its wheel does. The checkout is installed in
    editable mode, and where PYTHONDONTWRITEBYTECODE is set (as on these machines) every
    start would compile the changed modules again: 0.1 s of a 0.8 s start-up that an
    installed server never pays."""
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q", str(REPO / "pypirepo")],
                   check=True, timeout=120)


def _clean_env(extra=None) -> dict:
    # Settings from the caller's shell must not change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYPIREPO_", "TWINE_"))}
    env.update(extra or {})
    return env


@dataclass
class Process:
    """A server we spawned, stopped by its own process group."""

    proc: subprocess.Popen
    port: int
    log: Path
    spawned: float  # time.monotonic() just before the spawn

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, path: str = "/", timeout: float = 120.0, interval: float = 0.005) -> float:
        """Poll until path answers 200; seconds since the spawn."""
        deadline = self.spawned + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status, _ = http_get(self.port, path, timeout=timeout)
                if status == 200:
                    return time.monotonic() - self.spawned
            except OSError:
                pass
            time.sleep(interval)
        raise RuntimeError(f"server did not answer {path} in {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def stop(self):
        stop(self.proc)


def spawn(argv: list[str], directory: Path, port: int, env=None) -> Process:
    log = directory / "server.log"
    spawned = time.monotonic()
    proc = subprocess.Popen(argv, cwd=directory, env=_clean_env(env),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return Process(proc, port, log, spawned)


@dataclass
class Pypirepo:
    """A pypirepo served by pserve, configured as the benchmarks need it."""

    directory: Path
    storage_dir: Path
    database: Path | None = None
    app: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)  # [server:main] over development.ini's
    # Another checkout's pypirepo (a baseline commit, see baseline_checkout) instead of
    # this one: imported first through PYTHONPATH, with the same installed dependencies.
    code: Path | None = None

    def settings(self) -> dict:
        db = self.database or (self.directory / "db.sqlite")
        return {
            "sqlalchemy.url": f"sqlite:///{db}",
            "pypirepo.auto_migrate": "true",
            "pypirepo.storage": "local",
            "storage.dir": str(self.storage_dir),
            "pypi.default_read": "everyone",
            "pypi.default_write": "authenticated",
            "pypi.fallback": "none",
            **self.app,
        }

    def drop_database(self):
        db = self.database or (self.directory / "db.sqlite")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(db) + suffix).unlink(missing_ok=True)

    def spawn(self, env=None) -> Process:
        self.directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        if self.code is None:
            ini = write_ini(self.directory, self.settings(), port, self.server)
            return spawn([str(VENV_BIN / "pserve"), str(ini)], self.directory, port, env)
        # The entry points are this checkout's: name the baseline's factories by module.
        server = dict(self.server, use="call:pypirepo.server:server_factory")
        ini = write_ini(self.directory, self.settings(), port, server,
                        use="call:pypirepo:main")
        env = dict(env or {}, PYTHONPATH=str(self.code))
        return spawn([str(VENV_BIN / "pserve"), str(ini)], self.directory, port, env)


def baseline_checkout(commit: str) -> Path:
    """The tree of a commit, exported once into benchmarks/.data (git archive: no work
    tree of git's own), byte-compiled as an install would be; its path."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip()
    target = REPO / "benchmarks" / ".data" / f"baseline-{sha[:12]}"
    if not (target / "pypirepo" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "pypirepo", "templates", "migrations"],
                                 cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q", str(target / "pypirepo")],
                   check=True, timeout=120)
    return target


# --- wrk ---------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    rps: float
    p50: float  # milliseconds
    p90: float
    p99: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx answers
    seconds: float
    output: str

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "output"}


def parse_wrk(output: str) -> WrkResult:
    def grab(pattern):
        m = re.search(pattern, output, re.M)
        if not m:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return m.group(1)

    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        errors += int(m.group(1))
    return WrkResult(
        rps=float(grab(r"^Requests/sec:\s+([\d.]+)")),
        p50=_ms(grab(r"^\s+50%\s+(\S+)")),
        p90=_ms(grab(r"^\s+90%\s+(\S+)")),
        p99=_ms(grab(r"^\s+99%\s+(\S+)")),
        requests=int(grab(r"^\s+(\d+) requests in")),
        errors=errors,
        seconds=float(grab(r"requests in ([\d.]+)s")),
        output=output,
    )


def wrk(url: str, headers: dict | None = None, duration: float = 10, threads: int = 2,
        connections: int = 16, warmup: float = 2) -> WrkResult:
    """wrk -t2 -c16 -d10s --latency on url, after a short unmeasured warm-up."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (make system-deps installs it)")
    args = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "--timeout", "5s"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    if warmup:
        subprocess.run(args + [f"-d{warmup}s", url], capture_output=True, check=True,
                       timeout=warmup + 30)
    out = subprocess.run(args + [f"-d{duration}s", url], capture_output=True, text=True,
                         check=True, timeout=duration + 30)
    return parse_wrk(out.stdout)


# --- BENCHMARKS.md ------------------------------------------------------------------------------


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(document: str, name: str, body: str) -> str:
    """document with the text between name's markers replaced (appended if absent)."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(document):
        return pattern.sub(lambda _m: block, document, count=1)
    return document.rstrip() + "\n\n" + block + "\n"


class _AloneResults(dict):
    """What a section's run(results) gets when it runs on its own: a dict for its figures,
    and whether the run is a quick one (run.py's Results, less the machine facts)."""

    def __init__(self, quick: bool):
        super().__init__()
        self.quick = quick


def run_alone(run, name: str, output: Path, quick: bool) -> None:
    """Run one section outside run.py (`python -m benchmarks.bench_<name>`): its Markdown
    replaces name's section of output (written if missing) and is printed."""
    body = run(_AloneResults(quick))
    document = output.read_text() if output.exists() else ""
    output.write_text(replace_section(document, name, body))
    print(body)


def section_main(run, name: str, description: str, argv=None) -> None:
    """The command line of one section's module (`python -m benchmarks.bench_<name>
    [--quick]`): run_alone into BENCHMARKS.md."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    run_alone(run, name, BENCHMARKS_MD, args.quick)


def replace_header(document: str, header: str) -> str:
    """document with everything before the first section marker replaced."""
    m = re.search(r"<!-- [\w-]+:begin -->", document)
    rest = document[m.start():] if m else ""
    return header.rstrip() + "\n\n" + rest if rest else header.rstrip() + "\n"


# --- formatting ---------------------------------------------------------------------------------


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"
