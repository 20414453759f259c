"""DKIM signing CPU per message inside workerd: RSA-2048 through WebCrypto,
RSA-2048 in pure Rust (its baseline: what WebCrypto replaces), and Ed25519.

Calls the worker's own `GET /bench/signing?signer=...&n=...` (BENCH_ROUTES=on).
workerd may advance its clock only at I/O, so the worker's in-loop time can
read 0 for pure CPU work; the figure is therefore wall time: a request with
N signatures minus a request with none (routing and HTTP), divided by N,
per round, signers interleaved round by round."""
import base64
import json
import time
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from . import relay, workerd
from .report import Row, median

SIGNATURES = 50
SIGNERS = [("webcrypto-rsa", "RSA-2048 WebCrypto"), ("rust-rsa", "RSA-2048 pure Rust"),
           ("ed25519", "Ed25519")]


def _pkcs8(key) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode()


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {body}")
    return (time.perf_counter() - started) * 1000


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = workerd.fresh_directory(base, "dkim")
    vars_ = relay.vars_for(workerd.free_port())
    vars_["DKIM_KEYS"] = json.dumps([
        {"domain": "example.com", "selector": "rsa", "algorithm": "rsa",
         "private_key": _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))},
        {"domain": "example.com", "selector": "ed", "algorithm": "ed25519",
         "private_key": _pkcs8(ed25519.Ed25519PrivateKey.generate())},
    ])
    config = workerd.edgerelay_config(directory, vars_, workerd.DIAGNOSTICS_BUILD)
    worker = workerd.Wrangler([config], directory)
    per_signature = {name: [] for name, _ in SIGNERS}
    try:
        worker.wait_ready()
        for name, _ in SIGNERS:  # warm-up: key import, JIT
            _timed_get(f"{worker.url}/bench/signing?signer={name}&n=1")
        for _ in range(rounds):
            for name, _ in SIGNERS:
                url = f"{worker.url}/bench/signing?signer={name}"
                floor = _timed_get(url + "&n=0")
                loaded = _timed_get(url + f"&n={SIGNATURES}")
                per_signature[name].append(max(loaded - floor, 0.0) / SIGNATURES)
    finally:
        worker.stop()
    rust = per_signature["rust-rsa"]
    rows = [
        Row(figure="DKIM in workerd: RSA-2048 WebCrypto", value=median(per_signature["webcrypto-rsa"]),
            unit="ms/signature", baseline=median(rust), baseline_label="RSA-2048 pure Rust",
            runs=rounds, samples=per_signature["webcrypto-rsa"], baseline_samples=rust,
            note="ratio below 1 = WebCrypto is cheaper"),
        Row(figure="DKIM in workerd: RSA-2048 pure Rust", value=median(rust), unit="ms/signature",
            runs=rounds, samples=rust),
        Row(figure="DKIM in workerd: Ed25519", value=median(per_signature["ed25519"]),
            unit="ms/signature", baseline=median(rust), baseline_label="RSA-2048 pure Rust",
            runs=rounds, samples=per_signature["ed25519"], baseline_samples=rust),
    ]
    text = (f"`GET /bench/signing` signs the same prepared DKIM data {SIGNATURES} times per "
            f"request. Per round and signer: one request with none and one with {SIGNATURES}; "
            f"the difference over {SIGNATURES} is the figure. {rounds} rounds after one warm-up "
            "request per signer (the WebCrypto key import). The same route backs "
            "`benches/signing.py`.")
    return rows, text
