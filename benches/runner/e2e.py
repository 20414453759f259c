"""End to end: 1,000 messages from the first POST to the 1,000th message
written by the server, with the SMTP connections that carried them and what
each message asked of D1 (statements, batches, rows written), counted by the
worker itself (`GET /bench/d1`, diagnostics build). A second run has a
webhook endpoint and open/click tracking on. These counts are the measured
per-message costs behind docs/scaling.md's load model."""
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.delay_proxy import DelayProxy
from edgerelay_harness.poll import wait_for
from edgerelay_harness.smtp_sink import SmtpSink
from edgerelay_harness.webhook_receiver import WebhookReceiver

from . import relay
from .report import Row
from .tracking import MESSAGE as TRACKED

MESSAGES = 1000
CLIENTS = 8
TIMEOUT_S = 600


def _post(url: str, message: dict) -> int:
    return request(url + "/v1/messages", "POST", message, relay.AUTH, timeout=120).status


def _counts(url: str) -> dict:
    status, body, _ = request(url + "/bench/d1", "GET", None, {}, timeout=30)
    if status != 200:
        raise RuntimeError(f"GET /bench/d1 answered {status}: {body}")
    return body


def _database_bytes(directory: Path) -> int:
    """The local D1 database's files (SQLite keeps freed pages: an upper bound)."""
    return sum(p.stat().st_size for p in (directory / "state").rglob("*.sqlite*")
               if "D1DatabaseObject" in str(p))


def one_run(base: Path, name: str, with_events: bool) -> dict:
    directory = relay.workdir(base, name)
    sink = SmtpSink(*relay.SINK_OPTIONS, backlog=1024, dump_dir=directory / "sink")
    counter = DelayProxy(sink.port, 0).start()  # counts connections; adds no delay
    receiver = WebhookReceiver().start() if with_events else None
    vars_ = relay.vars_for(counter.port)
    if with_events:
        vars_["WEBHOOK_ALLOW_LOCAL_URLS"] = "on"
    worker = relay.start(directory, vars_)
    message = TRACKED if with_events else relay.MESSAGE
    try:
        worker.wait_ready()
        if receiver:
            status, body, _ = request(worker.url + "/v1/webhooks", "POST",
                                      {"url": receiver.url("/hook")}, relay.AUTH, timeout=60)
            if status != 201:
                raise RuntimeError(f"POST /v1/webhooks answered {status}: {body}")
        # Warm-up: one message end to end, untimed.
        if _post(worker.url, message) != 202:
            raise RuntimeError(f"POST /v1/messages failed:\n{worker.log()}")
        wait_for(lambda: sink.dumped() >= 1, timeout=TIMEOUT_S, what="the warm-up message")
        if receiver:
            wait_for(lambda: receiver.to("/hook"), timeout=TIMEOUT_S, what="a webhook")
        before, conns, size = _counts(worker.url), counter.connections, _database_bytes(directory)
        hooks = len(receiver.to("/hook")) if receiver else 0
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(lambda _: _post(worker.url, message), range(MESSAGES)))
        accepted = time.monotonic()
        if statuses.count(202) != MESSAGES:
            raise RuntimeError(f"not every POST was accepted: {sorted(set(statuses))}")
        done = wait_for(lambda: sink.dumped() >= MESSAGES + 1 and time.monotonic(),
                        timeout=TIMEOUT_S, interval=0.02, what="1,000 messages at the server")
        if receiver:
            # Each message makes at least one event its endpoint wants.
            wait_for(lambda: len(receiver.to("/hook")) >= hooks + MESSAGES,
                     timeout=TIMEOUT_S, interval=0.05, what="the webhooks")
            # Let the fan-out's bookkeeping settle before counting.
            settled = [-1]
            wait_for(lambda: settled.append(_counts(worker.url)["statements_written"])
                     or settled[-1] == settled[-2], timeout=60, interval=1.0,
                     what="D1 writes to settle")
        after = _counts(worker.url)
        print(f"[bench]   {name}: {after} after, {before} before", flush=True)
        return {
            "wall_ms": (done - started) * 1000,
            "accept_ms": (accepted - started) * 1000,
            "connections": counter.connections - conns,
            "webhooks": (len(receiver.to("/hook")) - hooks) if receiver else 0,
            "per_message": {k: (after[k] - before[k]) / MESSAGES for k in after},
            "database_bytes_per_message": (_database_bytes(directory) - size) / MESSAGES,
        }
    finally:
        worker.stop()
        counter.stop()
        sink.stop()
        if receiver:
            receiver.stop()


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    rows = []
    for name, with_events, label in (("e2e", False, "plain"),
                                     ("e2e-events", True, "webhook + tracking on")):
        r = one_run(base, name, with_events)
        per = r["per_message"]
        rows += [
            Row(figure=f"End to end, {label}: {MESSAGES} messages, first POST → last at server",
                value=r["wall_ms"], unit="ms", baseline=r["accept_ms"],
                baseline_label=f"{MESSAGES} POSTs accepted", runs=1,
                samples=[r["wall_ms"]], baseline_samples=[r["accept_ms"]],
                note=(f"{r['connections']} SMTP connections"
                      + (f"; {r['webhooks']} webhooks received" if with_events else ""))),
            Row(figure=f"End to end, {label}: D1 statements per message", runs=1,
                value=per["statements_read"] + per["statements_written"], unit="statements",
                samples=[per["statements_read"] + per["statements_written"]],
                note=(f"{per['statements_written']:.1f} writes, {per['statements_read']:.1f} "
                      f"reads; {per['batches']:.1f} batches; rows written by batches "
                      f"{per['batch_rows_written']:.1f}; database grew "
                      f"{r['database_bytes_per_message'] / 1024:.1f} KB/message")),
        ]
    text = (f"{MESSAGES} POSTs from {CLIENTS} concurrent clients into one worker (diagnostics "
            "build), smtp-sink behind a connection-counting proxy, one untimed message first. "
            "D1 figures are the worker's own counts (`GET /bench/d1`) before and after, over "
            f"{MESSAGES}: statements prepared (reads are SELECTs), batches run and the rows "
            "D1's result metadata says those batches wrote; single statements outside batches "
            "are counted as statements only. The second run adds one webhook endpoint "
            "(loopback receiver) and open/click tracking; it waits for a webhook per message "
            "and for D1 writes to settle. One run each (a run is 1,000 messages).")
    return rows, text
