"""SMTP throughput over one connection with 20 ms of round-trip time: edgerelay
pipelined, edgerelay forced lock-step, and worker-mailer, all in one workerd
(one `wrangler dev` with two configs: worker-mailer's worker on the port,
edgerelay behind its service binding), all sending the same message to the
same smtp-sink through the same delaying proxy, interleaved run by run."""
from pathlib import Path

from . import relay, workerd
from .delay_proxy import DelayProxy
from .report import Row, median
from .sink import SmtpSink

MESSAGES = 50
ONE_WAY_MS = 10


def _edgerelay(url: str, pipelining: bool) -> dict:
    switch = "on" if pipelining else "off"
    status, body = workerd.post_json(
        f"{url}/bench/smtp?count={MESSAGES}&pipelining={switch}&chunking={switch}",
        relay.MESSAGE, relay.AUTH)
    if status != 200:
        raise RuntimeError(f"/bench/smtp answered {status}: {body}")
    return body


def _worker_mailer(url: str) -> dict:
    status, body = workerd.post_json(f"{url}/worker-mailer/smtp?count={MESSAGES}",
                                     relay.WORKER_MAILER_MESSAGE)
    if status != 200:
        raise RuntimeError(f"/worker-mailer/smtp answered {status}: {body}")
    return body


def _rate(body: dict) -> float:
    if body["delivered"] != MESSAGES:
        raise RuntimeError(f"only {body['delivered']} of {MESSAGES} delivered: {body}")
    return MESSAGES / (max(body["elapsed_ms"], 1) / 1000.0)


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = workerd.fresh_directory(base, "smtp")
    sink = SmtpSink(workerd.free_port(), directory)
    proxy = DelayProxy(sink.port, ONE_WAY_MS).start()
    er_config = workerd.edgerelay_config(directory, relay.vars_for(proxy.port),
                                         workerd.DIAGNOSTICS_BUILD)
    wm_config = workerd.worker_mailer_config(directory, proxy.port)
    state = workerd.migrate(directory, er_config)
    worker = workerd.Wrangler([wm_config, er_config], directory, state)
    pipelined, lockstep, baseline, connections = [], [], [], []
    try:
        worker.wait_ready("/worker-mailer/health")
        worker.wait_ready("/health")  # edgerelay, through the service binding
        # Warm-up, untimed: each sender once.
        _edgerelay(worker.url, True)
        _worker_mailer(worker.url)
        for _ in range(rounds):
            before = proxy.connections
            pipelined.append(_rate(_edgerelay(worker.url, True)))
            lockstep.append(_rate(_edgerelay(worker.url, False)))
            baseline.append(_rate(_worker_mailer(worker.url)))
            connections.append(proxy.connections - before)
    finally:
        worker.stop()
        proxy.stop()
        sink.stop()
    if any(c != 3 for c in connections):
        raise RuntimeError(f"expected one connection per sender per round, saw {connections}")
    wm = median(baseline)
    rows = [
        Row(figure=f"SMTP, 20 ms RTT: pipelined, {MESSAGES} msgs / 1 connection",
            value=median(pipelined), unit="msg/s", baseline=wm, baseline_label="worker-mailer",
            target="≥ 2× worker-mailer", met=median(pipelined) >= 2 * wm, runs=rounds,
            samples=pipelined, baseline_samples=baseline),
        Row(figure=f"SMTP, 20 ms RTT: lock-step, {MESSAGES} msgs / 1 connection",
            value=median(lockstep), unit="msg/s", baseline=wm, baseline_label="worker-mailer",
            runs=rounds, samples=lockstep, baseline_samples=baseline,
            note="PIPELINING and CHUNKING switched off: shows what pipelining buys"),
    ]
    text = (f"Each run sends {MESSAGES} copies of the same ~2 KB message over one connection "
            "(connect, greeting, EHLO, the transactions, QUIT), timed inside the worker. "
            f"The server is smtp-sink (no AUTH, no TLS, offers PIPELINING, not CHUNKING, so "
            f"edgerelay uses DATA) behind an asyncio proxy on loopback adding {ONE_WAY_MS} ms to "
            "each chunk in each direction. edgerelay's messages are composed and DKIM-signed "
            "(Ed25519) before the clock starts; worker-mailer builds its MIME (unsigned) while "
            "sending. One `wrangler dev` with two configs runs worker-mailer's worker "
            "(benches/worker-mailer, worker-mailer pinned in package.json) and edgerelay "
            f"in one workerd. {rounds} rounds after an untimed warm-up; within a round the three "
            "senders run one after another.")
    return rows, text
