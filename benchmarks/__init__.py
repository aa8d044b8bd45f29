"""The benchmark harness: `make bench` runs benchmarks.run and rewrites BENCHMARKS.md."""
