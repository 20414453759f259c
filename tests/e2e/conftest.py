"""Fixtures for end-to-end tests: the built worker in workerd, real SMTP
servers on loopback, keys, and a poller (tests never sleep for a fixed time)."""
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pki import make_ca_and_server_cert
from upstream import Upstream, free_port

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
# The release build (`make build`): what is deployed, and what most tests run.
RELEASE_BUILD = ROOT / "build"
# The same worker with the test and benchmark switches (`make build-diagnostics`):
# FAULT_ACCEPT, FAULT_CONSUMER_CRASH_AFTER and the BENCH_ROUTES routes work only here.
DIAGNOSTICS_BUILD = ROOT / "build-diagnostics"
READY_LINE = re.compile(r"Ready on (http://127\.0\.0\.1:\d+)")
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
    def __init__(self, url: str, process: subprocess.Popen, api_key: str, log_path: Path):
        self.url = url
        self.process = process
        self.api_key = api_key
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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


def wrangler_env(tls_paths) -> dict:
    return dict(
        os.environ,
        PATH=f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        NODE_EXTRA_CA_CERTS=str(tls_paths["ca"]),
        WRANGLER_SEND_METRICS="false",
        CLOUDFLARE_CF_FETCH_ENABLED="false",
    )


def test_config(directory: Path, vars_: dict, overrides: dict | None = None,
                build_dir: Path = RELEASE_BUILD) -> Path:
    """wrangler.toml as deployed, minus the build step (the tests run the
    already-built worker from `build_dir`), with test vars and secrets as plain vars."""
    with open(ROOT / "wrangler.toml", "rb") as f:
        config = tomllib.load(f)
    config.pop("build", None)
    config["main"] = str(build_dir / "index.js")
    for db in config.get("d1_databases", []):
        db["migrations_dir"] = str(ROOT / db.get("migrations_dir", "migrations"))
    config["vars"] = {**config.get("vars", {}), **vars_}
    config.update(overrides or {})
    path = directory / "wrangler.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def migrated_state(tmp_path_factory, tls_paths):
    """A local D1 state directory with the migrations applied, copied per worker."""
    directory = tmp_path_factory.mktemp("state-template")
    config = test_config(directory, {})
    subprocess.run(
        [str(WRANGLER), "d1", "migrations", "apply", "DB", "--local",
         "--persist-to", str(directory / "state"), "-c", str(config)],
        check=True, env=wrangler_env(tls_paths), cwd=directory,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return directory / "state"


@pytest.fixture
def start_worker(tmp_path_factory, tls_paths, dkim_ed25519, api_key, migrated_state):
    """Starts the built worker in workerd (wrangler dev, local Queues and D1)
    with the given upstream URL and extra vars."""
    started = []

    def start(upstream_url: str, primary_configs=(), config_overrides: dict | None = None,
              build_dir: Path = RELEASE_BUILD, **extra_vars):
        """`primary_configs`: other Workers' configs run in the same local
        runtime (sharing queues), the first of them answering HTTP.
        `config_overrides`: top-level wrangler configuration keys to replace.
        `build_dir`: which build runs (DIAGNOSTICS_BUILD for the test switches)."""
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
        directory = tmp_path_factory.mktemp("worker")
        config = test_config(directory, vars_, config_overrides, build_dir)
        shutil.copytree(migrated_state, directory / "state")
        log_path = directory / "wrangler.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [str(WRANGLER), "dev", *[a for c in primary_configs for a in ("-c", str(c))],
             "-c", str(config), "--persist-to", str(directory / "state"),
             # Port 0: wrangler binds a free port itself and names it in its
             # "Ready on" line, so parallel runs never race for a port.
             "--ip", "127.0.0.1", "--port", "0", "--inspector-port", "0",
             "--show-interactive-dev-session=false",
             "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=wrangler_env(tls_paths), cwd=directory, start_new_session=True,
        )
        worker = Worker("", proc, api_key, log_path)
        started.append(worker)

        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited with {proc.returncode}:\n{worker.log()}")
            if not worker.url:
                found = READY_LINE.search(worker.log())
                if not found:
                    return False
                worker.url = found.group(1)
            try:
                with urllib.request.urlopen(worker.url + "/health", timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        wait_for(ready, timeout=60, what="wrangler dev to answer")
        return worker

    yield start
    for w in started:
        try:
            os.killpg(w.process.pid, signal.SIGTERM)
            w.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(w.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


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
