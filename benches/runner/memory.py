"""Memory of one queue consumer invocation: a batch of 100 x 10 KB and one of
100 x 1 MB messages, each posted through the API and delivered to smtp-sink.
The diagnostics build counts the Rust heap with a counting allocator
(src/edge/heap.rs) and logs, per invocation, the heap held when it began,
its peak, and the wasm linear memory's size; this section reads those lines
from the worker's log. The consumer's batch timeout is raised to 30 s here so
that the 100 messages land in one invocation (wrangler.toml has 1 s); the
batch size stays 100."""
import json
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.smtp_sink import SmtpSink
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config

from . import relay
from .report import Row

MESSAGES = 100
CLIENTS = 8
# (label, text of the message)
SIZES = (("10 KB", ("Order details and everything else you asked for. " * 205)[:10_000]),
         ("1 MB", ("All the news that fits, and then some more of it. " * 21_000)[:1_000_000]))
# The isolate's memory limit.
ISOLATE_BYTES = 128 * 1024 * 1024


def _queues(batch_timeout_s: int) -> dict:
    with open(ROOT / "wrangler.toml", "rb") as f:
        queues = tomllib.load(f)["queues"]
    for consumer in queues.get("consumers", []):
        if consumer.get("queue") == "edgerelay-jobs":
            consumer["max_batch_timeout"] = batch_timeout_s
    return queues


def _heap_lines(log: str) -> list[dict]:
    found = []
    for line in log.splitlines():
        start = line.find('{"')
        if start < 0 or '"consumer_heap"' not in line:
            continue
        try:
            found.append(json.loads(line[start:]))
        except json.JSONDecodeError:
            continue
    return found


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = relay.workdir(base, "memory")
    sink = SmtpSink(*relay.SINK_OPTIONS, backlog=1024, dump_dir=directory / "sink")
    config = worker_config(directory, relay.vars_for(sink.port), build_dir=DIAGNOSTICS_BUILD,
                           overrides={"queues": _queues(30)})
    state = migrate(config, directory / "state")
    worker = WranglerDev([config], directory, state_dir=state, log_level="info")
    results = {}
    try:
        worker.wait_ready()
        for label, text in SIZES:
            message = {**relay.MESSAGE, "text": text, "html": f"<p>{text[:2000]}</p>"}
            before_lines = len(_heap_lines(worker.log()))
            seen = sink.dumped()
            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(
                    lambda _: request(worker.url + "/v1/messages", "POST", message, relay.AUTH,
                                      timeout=300).status, range(MESSAGES)))
            if statuses.count(202) != MESSAGES:
                raise RuntimeError(f"not every POST was accepted: {sorted(set(statuses))}")
            wait_for(lambda: sink.dumped() >= seen + MESSAGES, timeout=600, interval=0.05,
                     what=f"the {label} batch at the server")
            lines = wait_for(
                lambda: (lambda new: new if sum(x["messages"] for x in new) >= MESSAGES
                         else None)(_heap_lines(worker.log())[before_lines:]),
                timeout=60, interval=0.05, what="the consumer's heap lines")
            results[label] = (lines, time.monotonic() - started)
    finally:
        worker.stop()
        sink.stop()
    rows = []
    for label, _ in SIZES:
        lines, _elapsed = results[label]
        peak = max(x["heap_peak"] for x in lines)
        at_start = max(x["heap_at_start"] for x in lines)
        linear = max(x["linear_memory"] for x in lines)
        batches = [x["messages"] for x in lines]
        rows.append(Row(
            figure=f"Consumer invocation heap peak, {MESSAGES} × {label}",
            value=peak / 1e6, unit="MB", target="< 128 MB isolate",
            met=linear < ISOLATE_BYTES, runs=1, samples=[x["heap_peak"] / 1e6 for x in lines],
            note=(f"batches {batches}; heap {at_start / 1e6:.1f} MB when it began; wasm linear "
                  f"memory {linear / 1e6:.1f} MB (it never shrinks)")))
    text = (f"{MESSAGES} POSTs of one message from {CLIENTS} clients, into one queue batch "
            "(the consumer's max_batch_timeout raised to 30 s for this section only), "
            "delivered to smtp-sink on loopback; then the same with 1 MB messages (kept in R2 "
            "between accept and delivery). The diagnostics build's counting allocator "
            "reports the Rust heap's peak per consumer invocation (bytes held by the "
            "JavaScript side, such as R2 reads and socket buffers in flight, are not in it) "
            "and the wasm linear memory, which only grows. The consumer loads bodies in groups "
            "of at most 16 MiB (delivery::plan::MAX_GROUP_BODY_BYTES). One run per size; "
            f"`--rounds` does not apply ({rounds} asked).")
    return rows, text
