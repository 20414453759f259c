"""The API contract, checked by a schema-driven fuzzer.

Schemathesis reads openapi.json as the worker serves it, generates requests
from it (ones the document says are valid, and ones it says are not), sends
them to the built worker, and checks every answer against the document with
all its checks: a documented status, content type, headers and body; valid
requests accepted and invalid ones refused; 405 with an Allow header for a
method a path does not take; no answer without auth where auth is required.
Accepted messages go to a real SMTP server. The runs are bounded (examples
per operation) and seeded, so they are the same runs every time."""
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from edgerelay_harness.keys import SENDER_DOMAIN
from edgerelay_harness.poll import wait_for

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")
# Bounded and seeded for `make test`; raise or reseed by hand to search deeper.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("CONTRACT_SEED", "20261129"))
FORM_ROUTE = "/v1/forms/submit"
PUBLISHABLE_KEY = "pk_test_contract_0123456789"
ORIGIN = "http://127.0.0.1:9"


def contact_form() -> str:
    return json.dumps([{
        "id": "contact", "key": PUBLISHABLE_KEY, "origins": [ORIGIN],
        "from": f"Site <forms@{SENDER_DOMAIN}>", "to": [f"owner@{SENDER_DOMAIN}"],
        "subject": "Contact: {{name}}", "text": "From {{name}} <{{email}}>\n\n{{message}}",
        "fields": {"name": {"required": True, "max_length": 100},
                   "email": {"kind": "email", "required": True},
                   "message": {"kind": "multiline", "required": True, "max_length": 5000}},
        "reply_to_field": "email",
    }])


def roomy_rate_limits() -> list:
    """wrangler.toml's form limits, raised so the fuzzer meets the form
    route's rules rather than its rate limit."""
    return [{"name": name, "namespace_id": ns, "simple": {"limit": 10_000, "period": 60}}
            for name, ns in (("FORM_KEY_LIMITER", "1001"), ("FORM_IP_LIMITER", "1002"))]


def schemathesis(url: str, env: dict, workdir: Path, *selection: str) -> tuple[int, str, float]:
    """One seeded `st run` with every check; returns (exit code, report, seconds)."""
    started = time.monotonic()
    run = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run",
         f"{url}/openapi.json", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
         "--seed", str(SEED), "--workers", "1", "--output-truncate", "false", *selection],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=600,
    )
    return run.returncode, run.stdout + run.stderr, time.monotonic() - started


def test_every_answer_keeps_the_published_contract(start_worker, upstream, api_key, tmp_path):
    server = upstream().start()
    worker = start_worker(server.url, PUBLISHABLE_KEYS=contact_form(),
                          config_overrides={"ratelimits": roomy_rate_limits()})
    env = dict(
        os.environ,
        EDGERELAY_API_KEY=api_key,
        EDGERELAY_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        # A cursor of the shape the API gives out (created at 0, id "0"):
        # valid, and past every message.
        EDGERELAY_CURSOR=base64.urlsafe_b64encode(b"0.0").decode().rstrip("="),
        # The suppression list's: created at 0, past every entry.
        EDGERELAY_SUPPRESSION_CURSOR=base64.urlsafe_b64encode(
            b'[0,"a@example.net","all"]').decode().rstrip("="),
        # The inbound reports': received at 0, past every record.
        EDGERELAY_INBOUND_REPORTS_CURSOR=base64.urlsafe_b64encode(
            b'[0,"rpt_' + b"0" * 32 + b'"]').decode().rstrip("="),
    )
    runs = {
        "server routes": schemathesis(worker.url, env, tmp_path, "--exclude-path", FORM_ROUTE),
        # A browser sends Origin with every call to the form route.
        "form route": schemathesis(worker.url, env, tmp_path, "--include-path", FORM_ROUTE,
                                   "-H", f"Origin: {ORIGIN}",
                                   # Its operations link to nothing: no stateful phase.
                                   "--phases", "examples,coverage,fuzzing"),
    }
    for name, (code, report, took) in runs.items():
        print(f"--- {name}: exit {code} in {took:.1f}s\n{report}")
    failed = {name: report for name, (code, report, _) in runs.items() if code != 0}
    assert not failed, "\n\n".join(f"--- {name}\n{report[-20000:]}" for name, report in failed.items())
    # Some generated messages were accepted, and reach the server.
    wait_for(lambda: server.messages, what="an accepted message at the server")


# Method probes, beyond what the fuzzer sends: HEAD, OPTIONS where there is no
# preflight, and methods the runtime's own method type does not know (which
# it would read as GET).
METHOD_PROBES = [
    ("HEAD", "/health", "GET"),
    ("TRACE", "/openapi.json", "GET"),
    ("QUERY", "/v1/messages", "GET, POST"),
    ("OPTIONS", "/v1/messages", "GET, POST"),
    ("GET", "/v1/messages/batch", "POST"),
    ("DELETE", "/v1/messages/0123456789abcdef0123456789abcdef", "GET, PATCH"),
    ("PURGE", "/v1/forms/submit", "POST, OPTIONS"),
    ("PUT", "/v1/suppressions", "GET, POST"),
    ("GET", "/v1/suppressions/bob@example.net", "DELETE"),
]


def test_a_method_a_path_does_not_take_is_405_with_the_methods_it_takes(start_worker, upstream):
    worker = start_worker(upstream().start().url)
    for method, path, allowed in METHOD_PROBES:
        status, body, headers = worker.request(method, path, headers=worker.auth)
        assert (status, headers["Allow"]) == (405, allowed), (method, path, status, body)
        if method != "HEAD":
            assert body["error"]["rule"] == "method_not_allowed", (method, path, body)
    status, body, headers = worker.request("TRACE", "/nowhere")
    assert status == 404 and headers["Allow"] is None, body
