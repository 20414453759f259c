"""Native core throughput: `cargo bench --bench core` (criterion) and its
medians, as messages per second. Compose-only is the baseline for signing."""
import json
import os
import subprocess
from pathlib import Path

from edgerelay_harness.paths import ROOT

from .report import Row

CASES = [("ed25519", "Ed25519"), ("rsa2048", "RSA-2048")]


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def _median_ns(case: str) -> tuple[float, int]:
    new = _target_dir() / "criterion" / "core" / case / "new"
    median = json.loads((new / "estimates.json").read_text())["median"]["point_estimate"]
    samples = len(json.loads((new / "sample.json").read_text())["times"])
    return median, samples


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    subprocess.run(["cargo", "bench", "--quiet", "--bench", "core"], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    compose_ns, samples = _median_ns("compose_only")
    rows = [Row(figure="Native: validate + compose, 10 KB (no signing)",
                value=1e9 / compose_ns, unit="msg/s", runs=samples, samples=[1e9 / compose_ns],
                note=f"median {compose_ns / 1000:.1f} µs per message")]
    for case, label in CASES:
        ns, n = _median_ns(case)
        rows.append(Row(
            figure=f"Native: validate + compose + DKIM {label}, 10 KB",
            value=1e9 / ns, unit="msg/s", baseline=1e9 / compose_ns,
            baseline_label="compose only", runs=n, samples=[1e9 / ns],
            note=f"median {ns / 1000:.1f} µs per message"))
    text = ("criterion (benches/core.rs), one core, release profile as shipped (LTO, opt-level "
            "\"z\"). Each figure is criterion's median over its samples (Runs = samples; each "
            "sample times many iterations). The path is the API's own: parse the JSON request, "
            "validate, authorise the From domain, compose the MIME, sign, build the job.")
    return rows, text
