"""CPU per accepted message inside workerd: the accept path's compute only
(validate, compose, sign, serialize and seal the queue body and the row's
job; no storage call), for 1 KB, 10 KB and 100 KB messages, signed with
RSA-2048 (WebCrypto) alone and with an Ed25519 signature beside it (every
sending domain has an RSA key; Ed25519 is only ever a second signature).

Calls the worker's own `POST /bench/accept?n=...` (BENCH_ROUTES=on), which
runs that compute n times on the posted send request. workerd advances its
clock only at I/O, so the worker's in-loop time can read 0 for pure CPU
work; the figure is therefore wall time: a request with N runs minus a
request with none (routing, HTTP, one untimed warm-up run), divided by N,
per round, cases interleaved round by round."""
import json
import time
import urllib.request
from pathlib import Path

from edgerelay_harness.keys import DkimKey, api_key_entry, relay_vars
from edgerelay_harness.net import free_port

from . import relay
from .report import Row, median

SIZES = [(1024, "1 KB"), (10 * 1024, "10 KB"), (100 * 1024, "100 KB")]
SIGNERS = [("rsa", "rsa.example.com", "RSA-2048 WebCrypto"),
           ("both", "both.example.com", "RSA-2048 + Ed25519")]
RUNS = {1024: 50, 10 * 1024: 50, 100 * 1024: 10}
TARGET_MS = 1.0
# One more case: 10 KB, RSA-2048, with open and click tracking on.
TRACKED = (10 * 1024, "rsa", "tracked")
LINKS = 20


def message(size: int, domain: str) -> dict:
    """A send request whose text and HTML parts add up to about `size` bytes."""
    line = "Your order has shipped and is on its way to you. "
    text = (line * (size // 2 // len(line) + 1))[: size // 2]
    return {"from": f"Bench <bench@{domain}>", "to": "rcpt@example.net",
            "subject": "Your order has shipped", "text": text, "html": f"<p>{text}</p>"}


def tracked_message(size: int, domain: str) -> dict:
    """`message`, its HTML carrying LINKS links, with opens and clicks tracked."""
    m = message(size, domain)
    per = len(m["html"]) // LINKS
    m["html"] = "".join(f'<p>{m["text"][i * per:(i + 1) * per]} '
                        f'<a href="https://shop.example.com/item/{i}?ref=mail">item {i}</a></p>'
                        for i in range(LINKS))
    m["tracking"] = {"opens": True, "clicks": True, "consent": True}
    return m


def _timed_post(url: str, body: dict) -> tuple[float, dict]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={**relay.AUTH, "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        answer = json.loads(resp.read())
    return (time.perf_counter() - started) * 1000, answer


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = relay.workdir(base, "cpu")
    domains = [domain for _, domain, _ in SIGNERS]
    vars_ = relay_vars([api_key_entry(relay.API_KEY, "bench", domains=domains)],
                       [DkimKey.rsa("rsa", domain="rsa.example.com"),
                        DkimKey.rsa("both-rsa", domain="both.example.com"),
                        DkimKey.ed25519("both-ed", domain="both.example.com")],
                       f"smtp+insecure://127.0.0.1:{free_port()}",
                       EHLO_NAME="relay.bench.test", BENCH_ROUTES="on",
                       TRACKING_BASE_URL="https://t.bench.example")
    worker = relay.start(directory, vars_, migrated=False)
    cases = [(size, signer) for size, _ in SIZES for signer in SIGNERS]
    tracked_signer = next(s for s in SIGNERS if s[0] == TRACKED[1])
    cases.append((TRACKED[0], (TRACKED[2], tracked_signer[1], tracked_signer[2])))
    per_message = {(size, signer[0]): [] for size, signer in cases}

    def body_for(size: int, name: str, domain: str) -> dict:
        return tracked_message(size, domain) if name == TRACKED[2] else message(size, domain)
    sizes_seen = {}
    try:
        worker.wait_ready()
        for size, (name, domain, _) in cases:  # warm-up: key import, JIT
            _, answer = _timed_post(f"{worker.url}/bench/accept?n=1", body_for(size, name, domain))
            sizes_seen[(size, name)] = answer["serialized_bytes"]
        for _ in range(rounds):
            for size, (name, domain, _) in cases:
                body = body_for(size, name, domain)
                url = f"{worker.url}/bench/accept"
                floor, _ = _timed_post(url + "?n=0", body)
                n = RUNS[size]
                loaded, _ = _timed_post(url + f"?n={n}", body)
                per_message[(size, name)].append(max(loaded - floor, 0.0) / n)
    finally:
        worker.stop()
    rows = []
    for size, size_label in SIZES:
        for name, _, label in SIGNERS:
            samples = per_message[(size, name)]
            value = median(samples)
            is_target = size == 10 * 1024
            rows.append(Row(
                figure=f"Accept CPU in workerd: {size_label}, {label}", value=value,
                unit="ms/message", runs=rounds, samples=samples,
                target="≤ 1 ms" if is_target else "",
                met=(value <= TARGET_MS) if is_target else None,
                note=("queue body and stored job: "
                      f"{sizes_seen.get((size, name), 0) // 1024} KB serialized")))
    samples = per_message[(TRACKED[0], TRACKED[2])]
    rows.append(Row(
        figure=f"Accept CPU in workerd: 10 KB, RSA-2048 WebCrypto, open and click tracking "
               f"({LINKS} links)",
        value=median(samples), unit="ms/message", runs=rounds, samples=samples,
        baseline=median(per_message[(TRACKED[0], TRACKED[1])]),
        baseline_label="10 KB, RSA-2048, untracked",
        note=("queue body and stored job: "
              f"{sizes_seen.get((TRACKED[0], TRACKED[2]), 0) // 1024} KB serialized; a signed "
              "token per link and one for the pixel")))
    text = ("`POST /bench/accept?n=N` runs the accept path's compute N times on the posted send "
            "request: parse and validate the JSON, compose the MIME, DKIM-sign it, place the body, "
            "serialize and seal the queue body and serialize the job the row stores (no D1, queue "
            "or R2 call). Per round and case: one request with N=0 and one with N (50; 10 for "
            "100 KB); the difference over N is the figure, so routing, HTTP and the untimed "
            "warm-up run cancel out. workerd's clock does not advance during pure CPU work, hence "
            f"wall time. {rounds} rounds after one warm-up request per case (key import, JIT).")
    return rows, text
