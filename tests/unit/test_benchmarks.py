"""The benchmark harness's own logic: data it generates, wrk output it reads, and how it
rewrites one section of BENCHMARKS.md without touching the others."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import generate, harness  # noqa: E402

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:6543/simple/x/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.65ms    1.02ms  20.00ms   80.00%
    Req/Sec     3.05k   200.00     3.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.00ms
     90%    3.50ms
     99%    1.20s
  60000 requests in 10.00s, 100.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   6000.50
Transfer/sec:     10.00MB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors():
    r = harness.parse_wrk(WRK_OUTPUT)
    assert r.rps == 6000.5
    assert r.p50 == pytest.approx(0.812)
    assert r.p99 == pytest.approx(1200.0)
    assert r.requests == 60000
    assert r.errors == 8


def test_parse_wrk_refuses_output_without_figures():
    with pytest.raises(ValueError):
        harness.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_replace_section_keeps_the_other_sections_and_the_order():
    doc = "# old header\n"
    doc = harness.replace_header(doc, "# Benchmarks\nmachine A")
    for name in ("foundation", "storage", "fallback"):
        doc = harness.replace_section(doc, name, f"{name} v1")
    doc = harness.replace_section(doc, "storage", "storage v2\nwith $1 and \\1 kept")
    doc = harness.replace_header(doc, "# Benchmarks\nmachine B")
    assert doc.startswith("# Benchmarks\nmachine B\n\n<!-- foundation:begin -->")
    assert "old header" not in doc and "machine A" not in doc
    assert "foundation v1" in doc and "fallback v1" in doc
    assert "storage v1" not in doc and "storage v2\nwith $1 and \\1 kept" in doc
    assert doc.index("foundation:end") < doc.index("storage:begin") < doc.index("fallback:begin")


def test_plan_spreads_files_and_gives_the_big_project_its_files():
    spec = generate.Spec(projects=4, files=20, big_files=8)
    items = generate.plan(spec)
    assert len(items) == 20
    assert len({i.filename for i in items}) == 20
    by_project = {}
    for i in items:
        by_project.setdefault(i.project, []).append(i)
    assert len(by_project) == 4
    assert len(by_project["bench-big"]) == 8
    assert sorted(len(v) for k, v in by_project.items() if k != "bench-big") == [4, 4, 4]


def test_populate_stores_what_an_upload_stores(tmp_path):
    storage = tmp_path / "storage"
    items = [generate.Item("Gen.Check", "1.0", "wheel"), generate.Item("Gen.Check", "1.0", "sdist")]
    assert generate.populate(generate.local_storage(storage), items) == 2
    folder = storage / "packages" / "gen-check"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["gen_check-1.0-py3-none-any.whl", "gen_check-1.0-py3-none-any.whl.json",
                     "gen_check-1.0-py3-none-any.whl.metadata", "gen_check-1.0.tar.gz",
                     "gen_check-1.0.tar.gz.json"]
    record = json.loads((folder / "gen_check-1.0-py3-none-any.whl.json").read_text())
    assert record["uploader"] == generate.UPLOADER
    assert record["size"] == (folder / "gen_check-1.0-py3-none-any.whl").stat().st_size
