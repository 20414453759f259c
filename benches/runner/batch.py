"""A queue batch of 100: from the first POST to the 100th message written by
the server, and how many SMTP connections carried them. The baseline is the
time the same 100 POSTs took to be accepted (202): what is left is the queue
and delivery. Each round is a fresh batch into the same worker."""
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.delay_proxy import DelayProxy
from edgerelay_harness.paths import RELEASE_BUILD
from edgerelay_harness.poll import wait_for
from edgerelay_harness.smtp_sink import SmtpSink

from . import relay
from .report import Row, median

MESSAGES = 100
CLIENTS = 8
TIMEOUT_S = 120


def _post(url: str) -> int:
    return request(url + "/v1/messages", "POST", relay.MESSAGE, relay.AUTH, timeout=120).status


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = relay.workdir(base, "batch")
    sink = SmtpSink(*relay.SINK_OPTIONS, backlog=1024, dump_dir=directory / "sink")
    counter = DelayProxy(sink.port, 0).start()  # counts connections; adds no delay
    worker = relay.start(directory, relay.vars_for(counter.port), build_dir=RELEASE_BUILD)
    walls, accepts, sockets = [], [], []
    try:
        worker.wait_ready()
        # Warm-up: one message end to end, untimed.
        if _post(worker.url) != 202:
            raise RuntimeError(f"POST /v1/messages failed:\n{worker.log()}")
        _wait(lambda: sink.dumped() >= 1, "the warm-up message at the server")
        for _ in range(rounds):
            seen, conns = sink.dumped(), counter.connections
            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(lambda _: _post(worker.url), range(MESSAGES)))
            accepted = time.monotonic()
            if statuses.count(202) != MESSAGES:
                raise RuntimeError(f"not every POST was accepted: {sorted(set(statuses))}")
            done = _wait(lambda: sink.dumped() >= seen + MESSAGES, "the batch at the server")
            walls.append((done - started) * 1000)
            accepts.append((accepted - started) * 1000)
            sockets.append(counter.connections - conns)
    finally:
        worker.stop()
        counter.stop()
        sink.stop()
    rows = [
        Row(figure=f"Queue batch: {MESSAGES} messages, first POST → 100th at server",
            value=median(walls), unit="ms", baseline=median(accepts),
            baseline_label=f"{MESSAGES} POSTs accepted", runs=rounds, samples=walls,
            baseline_samples=accepts),
        Row(figure=f"Queue batch: SMTP connections for {MESSAGES} messages",
            value=median(sockets), unit="connections", target="≤ 5",
            met=max(sockets) <= 5, runs=rounds, samples=sockets,
            note="met only if every run stayed within the target"),
    ]
    text = (f"{MESSAGES} POSTs from {CLIENTS} concurrent clients, then polling smtp-sink's "
            "one-file-per-message dump until all have arrived; connections are counted by a "
            "pass-through proxy in front of smtp-sink. The consumer's batch settings are "
            f"wrangler.toml's (max_batch_size 100, max_batch_timeout 1 s). {rounds} rounds after "
            "one untimed message.")
    return rows, text


def _wait(predicate, what: str) -> float:
    """Polls until `predicate` holds; returns the time it was seen to."""
    return wait_for(lambda: predicate() and time.monotonic(), timeout=TIMEOUT_S, interval=0.01,
                    what=what)
