"""edgerelay's benchmark runner: measures each figure beside its baseline in
the same run and writes BENCHMARKS.md. Entry point: benches/run.py."""
