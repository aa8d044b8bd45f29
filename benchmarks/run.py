"""One command that measures and writes BENCHMARKS.md (`make bench`).

Each section is a module `benchmarks.bench_<name>` with `run(results) -> str`: it measures,
may keep its raw figures in `results[<name>]`, and returns the Markdown that goes between
`<!-- <name>:begin -->` and `<!-- <name>:end -->`. A run rewrites only the sections it ran
(and the machine header), so sections measured at other times stay as they were.

    python -m benchmarks.run                      # every section whose module exists
    python -m benchmarks.run --only foundation    # one (repeatable)
    python -m benchmarks.run --quick              # shorter runs, to check the harness
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from .generate import DATA
from .harness import (
    BENCHMARKS_MD,
    commit_text,
    machine_facts,
    markers,
    replace_header,
    replace_section,
)

SECTIONS = ("foundation", "storage", "fallback", "copy", "repositories", "access", "ui")


class Results(dict):
    """Shared by the sections of one run: section name -> raw figures, plus the run's facts."""

    def __init__(self, machine: dict, quick: bool):
        super().__init__()
        self.machine = machine
        self.quick = quick


def header(machine: dict) -> str:
    return "\n".join([
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.run`); each section below is rewritten "
        "only when it is run, and says when it was measured.",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu'] or 'unknown CPU'}), "
        f"{machine['memory']} memory, {machine['os']}",
        f"- Python {machine['python']}, {machine['wrk'] or 'wrk missing'}",
        f"- Last run: {machine['date']}, {commit_text(machine)}, load average at start "
        f"{machine['load']}",
    ])


def load_section(name: str):
    module_name = f"benchmarks.bench_{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Measure pypirepo and write BENCHMARKS.md.")
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run only this section (repeatable)")
    parser.add_argument("--quick", action="store_true", help="short runs (harness check)")
    parser.add_argument("--output", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)

    machine = machine_facts()
    results = Results(machine, args.quick)
    wanted = args.only or list(SECTIONS)
    failed = []
    for name in wanted:
        module = load_section(name)
        if module is None:
            if args.only:
                print(f"no benchmarks/bench_{name}.py yet", file=sys.stderr)
                failed.append(name)
            else:
                print(f"[{name}] skipped: no benchmarks/bench_{name}.py yet")
            continue
        started = time.monotonic()
        print(f"[{name}] running...", flush=True)
        try:
            body = module.run(results)
        except Exception:  # noqa: BLE001 - report it, keep the other sections' results
            traceback.print_exc()
            failed.append(name)
            continue
        if not isinstance(body, str) or not body.strip():
            print(f"[{name}] returned no Markdown", file=sys.stderr)
            failed.append(name)
            continue
        # Written after each section, so a later failure keeps what was measured.
        document = args.output.read_text() if args.output.exists() else ""
        document = replace_header(document, header(machine))
        for other in SECTIONS:  # placeholders keep the sections in a fixed order
            if markers(other)[0] not in document:
                document = replace_section(document, other, "_Not measured yet._")
        document = replace_section(document, name, body)
        args.output.write_text(document)
        print(f"[{name}] done in {time.monotonic() - started:.0f}s, written to {args.output}")

    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "last-results.json").write_text(
        json.dumps({"machine": machine, **results}, indent=2, default=str) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
