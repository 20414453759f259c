"""Tracking routes: requests/s of the open pixel (GET /t/o/<token>) and a
tracked link's redirect (GET /t/c/<token>, a 302) against GET /health (a
route that does nothing) in the same workerd, with the same load tool,
alternating round by round. The tokens come from a real tracked message
with consent, so every hit checks its token, answers, and then (after the
answer, under waitUntil) records its count and its `email.opened` /
`email.clicked` event in D1."""
import email
import email.policy
import re
import shutil
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.paths import RELEASE_BUILD
from edgerelay_harness.poll import wait_for
from edgerelay_harness.smtp_sink import SmtpSink

from . import relay
from .accept import _wrk
from .report import Row, median

MESSAGE = {
    **relay.MESSAGE,
    "html": '<p>Your order has shipped: <a href="https://shop.example.org/orders/42">track it</a>.</p>',
    "tracking": {"opens": True, "clicks": True, "consent": True},
}


def _links(raw: bytes) -> tuple[str, str]:
    html = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",)).get_content()
    (pixel,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)
    click = next(h for h in re.findall(r'href="([^"]*)"', html) if "/t/c/" in h)
    return pixel, click


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (scripts/setup.sh bench installs it)")
    directory = relay.workdir(base, "tracking")
    sink = SmtpSink(*relay.SINK_OPTIONS, dump_dir=directory / "sink")
    worker = relay.start(directory, relay.vars_for(sink.port), build_dir=RELEASE_BUILD)
    try:
        worker.wait_ready()
        status, body, _ = request(worker.url + "/v1/messages", "POST", MESSAGE, relay.AUTH,
                                  timeout=120)
        if status != 202:
            raise RuntimeError(f"POST /v1/messages answered {status}: {body}")
        wait_for(lambda: sink.dumped() >= 1, timeout=60, what="the tracked message at the server")
        pixel, click = _links(sink.dumps()[0])
        # The links point at the host the request came in on: this worker.
        if not (pixel.startswith(worker.url) and click.startswith(worker.url)):
            raise RuntimeError(f"tracking links on another host: {pixel} {click}")
        # Warm-up: each route once, untimed.
        for url in (worker.url + "/health", pixel, click):
            _wrk(url, None)
        health, opens, clicks, errors = [], [], [], 0
        for _ in range(rounds):
            for url, into in ((worker.url + "/health", health), (pixel, opens), (click, clicks)):
                rps, _, bad = _wrk(url, None)
                into.append(rps)
                errors += bad
    finally:
        worker.stop()
        sink.stop()
    rows = []
    for figure, samples in (("Tracking: GET /t/o/<token> (open pixel)", opens),
                            ("Tracking: GET /t/c/<token> (302 redirect)", clicks)):
        ratio = median(samples) / median(health)
        rows.append(Row(
            figure=figure, value=median(samples), unit="req/s",
            baseline=median(health), baseline_label="GET /health",
            target="≥ 0.5× no-op route", met=ratio >= 0.5 and errors == 0,
            runs=rounds, samples=samples, baseline_samples=health,
            note=(f"{errors} answers other than 2xx or 3xx" if errors else
                  "every answer 200 (pixel) or 302 (redirect)"),
        ))
    text = ("wrk, 1 thread, 8 connections, 5 s per round; each round runs GET /health, the "
            "pixel and the redirect in turn after one untimed warm-up each. The tokens are a "
            "real tracked message's, with consent: every hit verifies its token and answers, "
            "then records its count and its event in D1 after the answer (waitUntil), so the "
            "figures include that work sharing the isolate.")
    return rows, text
