#!/usr/bin/env python3
"""CPU per DKIM signature inside workerd: WebCrypto RSA-2048, pure-Rust
RSA-2048 and Ed25519.

Starts the built worker (run `make build` first) under `wrangler dev` with
BENCH_ROUTES=on and fresh keys, calls `GET /bench/signing` for each signer,
and prints a table. Two measures per signer:

- in-worker: the worker's own clock around the signing loop. workerd may
  advance its clock only at I/O, so this can read 0 for pure CPU work;
- wall: request time with n signatures minus request time with none (the
  floor of routing and HTTP), divided by n; median of several runs.

    .venv/bin/python benches/signing.py [--n 50] [--runs 5]
"""
import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from edgerelay_harness.keys import DkimKey, api_key_entry, new_api_key, relay_vars
from edgerelay_harness.paths import DIAGNOSTICS_BUILD
from edgerelay_harness.wrangler import WranglerDev, worker_config

SIGNERS = ["webcrypto-rsa", "rust-rsa", "ed25519"]


def get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = json.loads(resp.read())
    return (time.perf_counter() - started) * 1000, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="signatures per request (at most 500)")
    parser.add_argument("--runs", type=int, default=5, help="requests per signer; the median is kept")
    args = parser.parse_args()

    vars_ = relay_vars([api_key_entry(new_api_key("er_bench_"), "bench")],
                       [DkimKey.rsa("rsa"), DkimKey.ed25519("ed")],
                       "smtp+insecure://127.0.0.1:9", BENCH_ROUTES="on")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = worker_config(directory, vars_, build_dir=DIAGNOSTICS_BUILD)
        worker = WranglerDev([config], directory, state_dir=directory / "state")
        try:
            worker.wait_ready(timeout=60)
            rows = []
            for signer in SIGNERS:
                url = f"{worker.url}/bench/signing?signer={signer}"
                get(url + "&n=1")  # warm-up: key import, JIT
                floors = [get(url + "&n=0")[0] for _ in range(args.runs)]
                loads = [get(url + f"&n={args.n}") for _ in range(args.runs)]
                wall = (statistics.median(t for t, _ in loads) - statistics.median(floors)) / args.n
                inside = statistics.median(b["per_signature_ms"] for _, b in loads)
                rows.append((signer, wall, inside))
        finally:
            worker.stop()

    print(f"DKIM signing in workerd (wrangler dev), {args.n} signatures x {args.runs} runs, median")
    print(f"{'signer':<15} {'wall ms/sig':>12} {'in-worker ms/sig':>17}")
    for signer, wall, inside in rows:
        print(f"{signer:<15} {wall:>12.3f} {inside:>17.3f}")


if __name__ == "__main__":
    main()
