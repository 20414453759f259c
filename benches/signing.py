#!/usr/bin/env python3
"""CPU per DKIM signature inside workerd: WebCrypto RSA-2048, pure-Rust
RSA-2048 and Ed25519.

Starts the diagnostics build (run `make build-diagnostics` first) under `wrangler dev` with
BENCH_ROUTES=on and fresh keys, calls `GET /bench/signing` for each signer,
and prints a table. Two measures per signer:

- in-worker: the worker's own clock around the signing loop. workerd may
  advance its clock only at I/O, so this can read 0 for pure CPU work;
- wall: request time with n signatures minus request time with none (the
  floor of routing and HTTP), divided by n; median of several runs.

    .venv/bin/python benches/signing.py [--n 50] [--runs 5]
"""
import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402

from conftest import DIAGNOSTICS_BUILD, WRANGLER, test_config, wait_for  # noqa: E402
from upstream import free_port  # noqa: E402

SIGNERS = ["webcrypto-rsa", "rust-rsa", "ed25519"]


def pkcs8(key) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode()


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
    if not (DIAGNOSTICS_BUILD / "index.js").exists():
        sys.exit("build-diagnostics/index.js is missing: run `make build-diagnostics` first")

    keys = [
        {"domain": "example.com", "selector": "rsa", "algorithm": "rsa",
         "private_key": pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))},
        {"domain": "example.com", "selector": "ed", "algorithm": "ed25519",
         "private_key": pkcs8(ed25519.Ed25519PrivateKey.generate())},
    ]
    vars_ = {
        "API_KEYS": json.dumps([{"id": "bench", "sha256": "0" * 64, "domains": ["example.com"]}]),
        "DKIM_KEYS": json.dumps(keys),
        "SMTP_UPSTREAMS": "smtp+insecure://127.0.0.1:9",
        "BENCH_ROUTES": "on",
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = test_config(directory, vars_, build_dir=DIAGNOSTICS_BUILD)
        port = free_port()
        env = dict(os.environ, PATH=f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
                   WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false")
        log = open(directory / "wrangler.log", "wb")
        proc = subprocess.Popen(
            [str(WRANGLER), "dev", "-c", str(config), "--persist-to", str(directory / "state"),
             "--ip", "127.0.0.1", "--port", str(port), "--show-interactive-dev-session=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=directory,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            def ready():
                if proc.poll() is not None:
                    sys.exit((directory / "wrangler.log").read_text())
                try:
                    return get(base + "/health")[1].get("ok")
                except OSError:
                    return False
            wait_for(ready, timeout=60, what="wrangler dev")

            rows = []
            for signer in SIGNERS:
                url = f"{base}/bench/signing?signer={signer}"
                get(url + "&n=1")  # warm-up: key import, JIT
                floors = [get(url + "&n=0")[0] for _ in range(args.runs)]
                loads = [get(url + f"&n={args.n}") for _ in range(args.runs)]
                wall = (statistics.median(t for t, _ in loads) - statistics.median(floors)) / args.n
                inside = statistics.median(b["per_signature_ms"] for _, b in loads)
                rows.append((signer, wall, inside))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)

    print(f"DKIM signing in workerd (wrangler dev), {args.n} signatures x {args.runs} runs, median")
    print(f"{'signer':<15} {'wall ms/sig':>12} {'in-worker ms/sig':>17}")
    for signer, wall, inside in rows:
        print(f"{signer:<15} {wall:>12.3f} {inside:>17.3f}")


if __name__ == "__main__":
    main()
