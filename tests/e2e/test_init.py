"""The one-step set-up (`scripts/init.mjs --local`) against a fresh local
state: it applies the migrations, makes the API key, the queue secret and
the domain master secret and writes them to .dev.vars; the worker started on
that state and those secrets (wrangler dev, as deployed) takes a sending
domain through the API, verifies it against a real DNS server on loopback
(Unbound behind dnsdist's DoH), and accepts and delivers its first message,
signed with the domain's keys."""
import json
import os
import re
import subprocess

import dkim
import pytest

from edgerelay_harness.client import request
from edgerelay_harness.dns_server import DnsServerMissing, DohServer
from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import NODE_BIN, ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.wrangler import WranglerDev, worker_config, wrangler_env

DOMAIN = "first.example.org"


@pytest.fixture
def zone(tmp_path):
    try:
        server = DohServer(tmp_path / "dns", "example.org")
    except DnsServerMissing as e:
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(f"{e}, and CI=true")
        pytest.skip(str(e))
    yield server
    server.stop()


def init(config, state, *args):
    return subprocess.run(
        [str(NODE_BIN / "node"), str(ROOT / "scripts" / "init.mjs"), "--local",
         "--persist-to", str(state), "--config", str(config), *args],
        env=wrangler_env(), capture_output=True, text=True, timeout=180)


def test_init_leaves_a_worker_that_delivers_its_first_message(tmp_path, upstream, tls_paths,
                                                              zone):
    server = upstream().start()
    directory = tmp_path / "worker"
    directory.mkdir()
    # The deployed configuration; only the DNS resolver points at loopback.
    config = worker_config(directory, {"DNS_RESOLVER_URL": zone.url,
                                       "DNS_RESOLVER_FORMAT": "wire"})
    state = directory / "state"

    done = init(config, state, "--domain", DOMAIN, "--upstream", server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    api_key = re.search(r"API key \(shown once[^:]*\): (er_\S+)", out).group(1)
    assert f'{{"domain": "{DOMAIN}"}}' in out and "/v1/domains" in out  # the next step
    dev_vars = (directory / ".dev.vars").read_text()
    for name in ("API_KEYS", "QUEUE_SECRET", "DOMAIN_KEYS_SECRET", "SMTP_UPSTREAMS"):
        assert re.search(rf"^{name}=", dev_vars, re.M), name
    assert api_key not in dev_vars  # only its hash
    assert any(state.rglob("*.sqlite")), "no local D1 state"

    # Run twice, it refuses to replace the secrets.
    again = init(config, state, "--domain", DOMAIN)
    assert again.returncode != 0 and ".dev.vars exists" in again.stderr

    dev = WranglerDev([config], directory, state_dir=state, ca_cert=tls_paths["ca"])
    try:
        dev.wait_ready(timeout=60)
        auth = {"Authorization": f"Bearer {api_key}"}
        added = request(dev.url + "/v1/domains", "POST", {"domain": DOMAIN}, auth)
        assert added.status == 201, added.body
        by_name = {}
        for record in added.body["records"]:
            if record["type"] == "TXT":
                by_name.setdefault(record["name"], []).append(record["value"])
        for name, values in by_name.items():
            zone.publish(name, *values)
        verified = request(dev.url + f"/v1/domains/{DOMAIN}/verify", "POST", None, auth)
        assert verified.body["verified"] is True, verified.body

        sent = request(dev.url + "/v1/messages", "POST",
                       basic_message(**{"from": f"hello@{DOMAIN}"}), auth)
        assert sent.status == 202, sent.body
        received = wait_for(lambda: server.messages, what="the first message")[0]

        def dns(name, timeout=5):
            texts = zone.txt(name.decode() if isinstance(name, bytes) else name)
            return texts[0].encode() if texts else None
        assert dkim.DKIM(received.data).verify(dnsfunc=dns)
        assert api_key not in dev.log()
    finally:
        dev.stop()
