"""A queue batch of 100: from the first POST to the 100th message written by
the server, and how many SMTP connections carried them. The baseline is the
time the same 100 POSTs took to be accepted (202): what is left is the queue
and delivery. Each round is a fresh batch into the same worker."""
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import relay, workerd
from .delay_proxy import DelayProxy
from .report import Row, median
from .sink import SmtpSink

MESSAGES = 100
CLIENTS = 8
TIMEOUT_S = 120


def _post(url: str) -> int:
    status, _ = workerd.post_json(url + "/v1/messages", relay.MESSAGE, relay.AUTH)
    return status


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = workerd.fresh_directory(base, "batch")
    sink = SmtpSink(workerd.free_port(), directory, dump=True)
    counter = DelayProxy(sink.port, 0).start()  # counts connections; adds no delay
    config = workerd.edgerelay_config(directory, relay.vars_for(counter.port))
    state = workerd.migrate(directory, config)
    worker = workerd.Wrangler([config], directory, state)
    walls, accepts, sockets = [], [], []
    try:
        worker.wait_ready()
        # Warm-up: one message end to end, untimed.
        if _post(worker.url) != 202:
            raise RuntimeError(f"POST /v1/messages failed:\n{worker.log()}")
        _wait(lambda: sink.messages() >= 1)
        for _ in range(rounds):
            seen, conns = sink.messages(), counter.connections
            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(lambda _: _post(worker.url), range(MESSAGES)))
            accepted = time.monotonic()
            if statuses.count(202) != MESSAGES:
                raise RuntimeError(f"not every POST was accepted: {sorted(set(statuses))}")
            done = _wait(lambda: sink.messages() >= seen + MESSAGES)
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


def _wait(predicate) -> float:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the batch at the server")
        time.sleep(0.01)
    return time.monotonic()
