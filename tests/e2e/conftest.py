"""Fixtures for the end-to-end tests: the built worker in workerd, real SMTP
servers on loopback, and keys. Everything they are built from lives in the
edgerelay_harness package; this file only ties lifetimes to tests."""
import os
import shutil

import pytest

from edgerelay_harness.client import Worker
from edgerelay_harness.keys import DkimKey, api_key_entry, new_api_key, relay_vars
from edgerelay_harness.paths import RELEASE_BUILD
from edgerelay_harness.pki import make_ca_and_server_cert
from edgerelay_harness.postfix import PostfixInstance, PostfixUnavailable
from edgerelay_harness.smtp_sink import SmtpSink, SmtpSinkMissing
from edgerelay_harness.upstream import Upstream
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config


@pytest.fixture(scope="session")
def tls_paths(tmp_path_factory):
    return make_ca_and_server_cert(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def dkim_ed25519():
    return DkimKey.ed25519("e2e")


@pytest.fixture(scope="session")
def dkim_rsa():
    return DkimKey.rsa("rsa1")


@pytest.fixture(scope="session")
def api_key():
    return new_api_key()


@pytest.fixture(scope="session")
def migrated_state(tmp_path_factory, tls_paths):
    """A local D1 state directory with the migrations applied, copied per worker."""
    directory = tmp_path_factory.mktemp("state-template")
    return migrate(worker_config(directory, {}), directory / "state", tls_paths["ca"])


@pytest.fixture
def start_worker(tmp_path_factory, tls_paths, dkim_ed25519, dkim_rsa, api_key, migrated_state):
    """Starts the built worker in workerd (wrangler dev, local Queues, D1 and
    R2) with the given upstream URL and extra vars. The sender domain has the
    RSA key every sending domain needs and an Ed25519 key; the Ed25519
    signature comes first, so `dkim.verify` (the first signature) checks it."""
    started = []

    def start(upstream_url: str, primary_configs=(), config_overrides: dict | None = None,
              build_dir=RELEASE_BUILD, **extra_vars) -> Worker:
        """`primary_configs`: other Workers' configs run in the same local
        runtime (sharing queues), the first of them answering HTTP.
        `config_overrides`: top-level wrangler configuration keys to replace.
        `build_dir`: the build to run (the release build by default)."""
        vars_ = relay_vars([api_key_entry(api_key, "e2e")], [dkim_ed25519, dkim_rsa], upstream_url,
                           **extra_vars)
        directory = tmp_path_factory.mktemp("worker")
        config = worker_config(directory, vars_, build_dir=build_dir, overrides=config_overrides)
        state = directory / "state"
        shutil.copytree(migrated_state, state)
        dev = WranglerDev([*primary_configs, config], directory, state_dir=state,
                          ca_cert=tls_paths["ca"])
        started.append(dev)
        dev.wait_ready(timeout=60)
        return Worker(dev, api_key)

    yield start
    for dev in started:
        dev.stop()


@pytest.fixture
def upstream(tls_paths):
    """Starts aiosmtpd upstreams (STARTTLS and AUTH required by default)."""
    servers = []

    def make(**kwargs) -> Upstream:
        u = Upstream(tls_paths, **kwargs)
        servers.append(u)
        return u

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def smtp_sink():
    """Starts Postfix's smtp-sink with the given options. A missing smtp-sink
    skips the test, unless CI=true, where it fails it."""
    sinks = []

    def make(*options: str, **kwargs) -> SmtpSink:
        try:
            sink = SmtpSink(*options, **kwargs)
        except SmtpSinkMissing as e:
            if os.environ.get("CI") in ("true", "1"):
                pytest.fail(f"{e}, and CI=true")
            pytest.skip(str(e))
        sinks.append(sink)
        return sink

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def postfix():
    """Starts a private Postfix on loopback (a smarthost that writes real
    delivery status notifications; see edgerelay_harness.postfix). Without
    Postfix or root the test is skipped, unless CI=true, where it fails."""
    instances = []

    def make(**kwargs) -> PostfixInstance:
        try:
            instance = PostfixInstance(**kwargs)
        except PostfixUnavailable as e:
            if os.environ.get("CI") in ("true", "1"):
                pytest.fail(f"{e}, and CI=true")
            pytest.skip(str(e))
        instances.append(instance)
        return instance.start()

    yield make
    for instance in instances:
        instance.stop()
