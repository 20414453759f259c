"""Fixtures for end-to-end tests: the built worker in workerd, real SMTP
servers on loopback, keys, and a poller (tests never sleep for a fixed time)."""
import base64
import hashlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pki import make_ca_and_server_cert
from upstream import Upstream

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / ".bin" / "node"
SENDER_DOMAIN = "example.com"
SELECTOR = "e2e"


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def tls_paths(tmp_path_factory):
    return make_ca_and_server_cert(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def dkim_ed25519():
    key = ed25519.Ed25519PrivateKey.generate()
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "config": {
            "domain": SENDER_DOMAIN,
            "selector": SELECTOR,
            "algorithm": "ed25519",
            "private_key": base64.b64encode(pkcs8).decode(),
        },
        "txt": f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}".encode(),
    }


@pytest.fixture(scope="session")
def api_key():
    return "er_test_" + secrets.token_urlsafe(24)


class Worker:
    def __init__(self, url: str, process: subprocess.Popen, api_key: str):
        self.url = url
        self.process = process
        self.api_key = api_key

    def request(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
        """Returns (status, parsed JSON body or text, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload, rh = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, payload, rh = e.code, e.read(), e.headers
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, parsed, rh

    def send(self, message: dict, key: str | None = None):
        return self.request("POST", "/v1/messages", message,
                            {"Authorization": f"Bearer {key or self.api_key}"})

    def status(self, message_id: str):
        s, body, _ = self.request("GET", f"/v1/messages/{message_id}",
                                  headers={"Authorization": f"Bearer {self.api_key}"})
        assert s == 200, (s, body)
        return body


@pytest.fixture
def start_worker(tls_paths, dkim_ed25519, api_key):
    """Starts the built worker in workerd with the given upstream URL and extra vars."""
    started = []

    def start(upstream_url: str, **extra_vars):
        vars_ = {
            "API_KEYS": json.dumps([{
                "id": "e2e",
                "sha256": hashlib.sha256(api_key.encode()).hexdigest(),
                "domains": [SENDER_DOMAIN],
            }]),
            "DKIM_KEYS": json.dumps([dkim_ed25519["config"]]),
            "SMTP_UPSTREAMS": upstream_url,
            "EHLO_NAME": "relay.e2e.test",
            "RETRY_BASE_DELAY_SECONDS": "1",
            "SMTP_TIMEOUT_SECONDS": "5",
        }
        vars_.update(extra_vars)
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(tls_paths["ca"]))
        proc = subprocess.Popen(
            [str(NODE), str(ROOT / "tests" / "e2e" / "worker_runner.mjs"), json.dumps({"vars": vars_})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True,
        )
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker runner exited with {proc.wait()}")
        worker = Worker(json.loads(line)["url"], proc, api_key)
        started.append(worker)
        return worker

    yield start
    for w in started:
        w.process.terminate()
        try:
            w.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            w.process.kill()


@pytest.fixture
def upstream(tls_paths):
    """A running aiosmtpd upstream requiring STARTTLS and AUTH."""
    servers = []

    def make(**kwargs):
        u = Upstream(tls_paths, **kwargs)
        servers.append(u)
        return u

    yield make
    for s in servers:
        s.stop()


def basic_message(**overrides):
    m = {
        "from": f"Edge Relay <hello@{SENDER_DOMAIN}>",
        "to": "rcpt@example.net",
        "subject": "Hello from the edge",
        "text": "Plain body\n.\nwith a lone dot line",
        "html": "<p>HTML body</p>",
    }
    m.update(overrides)
    return m
