"""SMTP throughput over one connection with 20 ms of round-trip time: edgerelay
pipelined, edgerelay forced lock-step, and worker-mailer, all in one workerd
(one `wrangler dev` with two configs: worker-mailer's worker on the port,
edgerelay behind its service binding), all sending the same message to the
same smtp-sink through the same delaying proxy, interleaved run by run."""
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.delay_proxy import DelayProxy
from edgerelay_harness.paths import ROOT
from edgerelay_harness.smtp_sink import SmtpSink
from edgerelay_harness.wrangler import companion_config

from . import relay
from .report import Row, median

MESSAGES = 50
ONE_WAY_MS = 10
WORKER_MAILER = ROOT / "benches" / "worker-mailer"


def _edgerelay(url: str, pipelining: bool) -> dict:
    switch = "on" if pipelining else "off"
    status, body, _ = request(
        f"{url}/bench/smtp?count={MESSAGES}&pipelining={switch}&chunking={switch}",
        "POST", relay.MESSAGE, relay.AUTH, timeout=120)
    if status != 200:
        raise RuntimeError(f"/bench/smtp answered {status}: {body}")
    return body


def _worker_mailer(url: str) -> dict:
    status, body, _ = request(f"{url}/worker-mailer/smtp?count={MESSAGES}", "POST",
                              relay.WORKER_MAILER_MESSAGE, timeout=120)
    if status != 200:
        raise RuntimeError(f"/worker-mailer/smtp answered {status}: {body}")
    return body


def _rate(body: dict) -> float:
    if body["delivered"] != MESSAGES:
        raise RuntimeError(f"only {body['delivered']} of {MESSAGES} delivered: {body}")
    return MESSAGES / (max(body["elapsed_ms"], 1) / 1000.0)


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = relay.workdir(base, "smtp")
    sink = SmtpSink(*relay.SINK_OPTIONS, backlog=1024)
    proxy = DelayProxy(sink.port, ONE_WAY_MS).start()
    wm_config = companion_config(directory, WORKER_MAILER / "wrangler.toml",
                                 WORKER_MAILER / "index.js", {"SMTP_PORT": str(proxy.port)})
    worker = relay.start(directory, relay.vars_for(proxy.port), before=(wm_config,))
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
