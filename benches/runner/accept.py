"""Accept path: requests/s of POST /v1/messages (validate, compose, sign,
store in D1, enqueue) against GET /health (a route that does nothing) in the
same workerd, with the same load tool, alternating round by round. Twice:
with the queue consumer delivering to smtp-sink in the background (under
delivery load), and with no consumer (the jobs wait on the queue), which is
the accept path's own cost."""
import json
import re
import shutil
import subprocess
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.paths import RELEASE_BUILD
from edgerelay_harness.smtp_sink import SmtpSink

from . import relay
from .report import Row, median

SECONDS = 5
CONNECTIONS = 8


def _wrk(url: str, script: Path | None) -> tuple[float, int, int]:
    """Returns (requests/s, requests, non-2xx responses)."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def _post_script(directory: Path) -> Path:
    body = json.dumps(relay.MESSAGE).replace("\\", "\\\\").replace('"', '\\"')
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "{relay.AUTH["Authorization"]}"\n')
    return script


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (scripts/setup.sh bench installs it)")
    rows = [_measure(base, rounds, consumers=False), _measure(base, rounds, consumers=True)]
    text = (f"wrk, 1 thread, {CONNECTIONS} connections, {SECONDS} s per round; {rounds} rounds "
            "alternating the two routes after one untimed warm-up round each. One `wrangler dev`"
            " of the built worker, local D1 and Queues; an Ed25519 DKIM key signs each message. "
            "\"Consumer paused\": the worker runs without its queue consumers (the jobs wait on "
            "the queue), so only the accept path shares the isolate. \"Under delivery load\": the "
            "queue consumer delivers to smtp-sink in the same workerd while the load runs.")
    return rows, text


def _measure(base: Path, rounds: int, consumers: bool) -> Row:
    directory = relay.workdir(base, "accept" if consumers else "accept-paused")
    sink = SmtpSink(*relay.SINK_OPTIONS, backlog=1024)
    worker = relay.start(directory, relay.vars_for(sink.port), build_dir=RELEASE_BUILD,
                         consumers=consumers)
    try:
        worker.wait_ready()
        script = _post_script(directory)
        status, body, _ = request(worker.url + "/v1/messages", "POST", relay.MESSAGE, relay.AUTH,
                                  timeout=120)
        if status != 202:
            raise RuntimeError(f"POST /v1/messages answered {status}: {body}")
        # Warm-up: both routes once, untimed.
        _wrk(worker.url + "/health", None)
        _wrk(worker.url + "/v1/messages", script)
        health, accept, errors = [], [], 0
        for _ in range(rounds):
            rps, _, bad = _wrk(worker.url + "/health", None)
            health.append(rps)
            errors += bad
            rps, _, bad = _wrk(worker.url + "/v1/messages", script)
            accept.append(rps)
            errors += bad
    finally:
        worker.stop()
        sink.stop()
    ratio = median(accept) / median(health)
    return Row(
        figure="Accept: POST /v1/messages, " + (
            "under delivery load" if consumers else "consumer paused"),
        value=median(accept), unit="req/s",
        baseline=median(health), baseline_label="GET /health",
        target="≥ 0.5× no-op route", met=ratio >= 0.5 and errors == 0,
        runs=rounds, samples=accept, baseline_samples=health,
        note=(f"{errors} non-2xx responses" if errors else "every response 2xx"),
    )
