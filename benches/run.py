"""edgerelay's benchmarks: `make bench` runs this after building the worker.

Each section measures a figure and its baseline in the same run, round by
round, and BENCHMARKS.md is rewritten from the results: the machine, the
date, the command, the median of every figure beside its baseline, the target
and whether it is met. A section that fails is reported as failed in the file
and makes the command exit non-zero.

    .venv/bin/python benches/run.py [--rounds N] [--only accept,smtp,...] [--output FILE]

Python puts this script's directory first on the import path, which is how
`runner` (benches/runner) is found; the shared parts come from the
edgerelay_harness package that `make setup-bench` installs.
"""
import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path

from edgerelay_harness.paths import ROOT
from runner import accept, batch, bdat, cpu, dkim, e2e, memory, native, size, smtp, tracking
from runner.report import Row, load_average, machine, render

SECTIONS = {
    "accept": ("1. Accept path vs the no-op route", accept.run),
    "dkim": ("2. DKIM signing inside workerd", dkim.run),
    "smtp": ("3. SMTP over one connection, 20 ms RTT, vs worker-mailer", smtp.run),
    "batch": ("4. A queue batch of 100, accept to the server's 250", batch.run),
    "size": ("5. Size and start-up", size.run),
    "native": ("6. Native core throughput (criterion)", native.run),
    "tracking": ("7. Tracking routes vs the no-op route", tracking.run),
    "bdat": ("8. Pipelined BDAT against Postfix, 20 ms RTT, vs DATA and worker-mailer",
             bdat.run),
    "memory": ("9. Memory of one consumer invocation", memory.run),
    "cpu": ("10. CPU per accepted message inside workerd", cpu.run),
    "e2e": ("11. End to end: 1,000 messages, D1 cost per message", e2e.run),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")

    info, load_before = machine(), load_average()
    results, failed = [], False
    with tempfile.TemporaryDirectory(prefix="edgerelay-bench-") as tmp:
        os.chmod(tmp, 0o755)  # smtp-sink drops to `nobody` and writes its dumps below
        for name in chosen:
            title, run = SECTIONS[name]
            print(f"[bench] {title} ...", flush=True)
            try:
                rows, text = run(Path(tmp), args.rounds)
            except Exception as e:  # a failed section is reported, never hidden
                traceback.print_exc()
                failed = True
                rows = [Row(figure=title, value=None, unit="", met=False,
                            note=f"FAILED: {e}".splitlines()[0][:300])]
                text = "This section failed in this run; see the note below."
            for r in rows:
                print(f"[bench]   {r.figure}: {r.value} {r.unit} (baseline {r.baseline})", flush=True)
            results.append((title, rows, text))
    command = "make bench" if len(chosen) == len(SECTIONS) and args.rounds == 5 else \
        f"make bench BENCH_ARGS='--rounds {args.rounds} --only {','.join(chosen)}'"
    output = Path(args.output)
    # The reliability soak's section (benches/reliability_soak.py) is its own: keep it.
    previous = output.read_text() if output.exists() else ""
    soak = previous.partition("\n## Reliability soak\n")
    kept = "\n## Reliability soak\n" + soak[2] if soak[1] else ""
    output.write_text(render(results, info, command, load_before, load_average()).rstrip("\n")
                      + "\n" + kept)
    print(f"[bench] wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
