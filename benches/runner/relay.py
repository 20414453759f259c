"""edgerelay as the benchmarks configure and start it: a fresh API key, an
Ed25519 DKIM key for example.com, a plaintext upstream on loopback and the
bench routes on. The same message is sent by every SMTP benchmark."""
import shutil
import tomllib
from pathlib import Path

from edgerelay_harness.keys import DkimKey, api_key_entry, new_api_key, relay_vars
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, ROOT
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config

API_KEY = new_api_key("er_bench_")
AUTH = {"Authorization": f"Bearer {API_KEY}"}

# About 2 KB of text and HTML: a typical transactional message.
_TEXT = ("Your order has shipped and is on its way to you. " * 20).strip()
MESSAGE = {
    "from": "Bench <bench@example.com>",
    "to": "rcpt@example.net",
    "subject": "Your order has shipped",
    "text": _TEXT,
    "html": f"<p>{_TEXT}</p>",
}
# The same message in worker-mailer's shape.
WORKER_MAILER_MESSAGE = {
    "from": {"name": "Bench", "email": "bench@example.com"},
    "to": "rcpt@example.net",
    "subject": MESSAGE["subject"],
    "text": MESSAGE["text"],
    "html": MESSAGE["html"],
}


def vars_for(upstream_port: int, dkim_keys: list[DkimKey] | None = None) -> dict:
    return relay_vars(
        [api_key_entry(API_KEY, "bench")],
        dkim_keys or [DkimKey.ed25519("bench"), DkimKey.rsa("bench-rsa")],
        f"smtp+insecure://127.0.0.1:{upstream_port}",
        EHLO_NAME="relay.bench.test",
        SMTP_TIMEOUT_SECONDS="30",
        BENCH_ROUTES="on",
    )


def workdir(base: Path, name: str) -> Path:
    """An empty directory for one section's configs, state and logs."""
    directory = base / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def start(directory: Path, vars_: dict, *, before: tuple = (), migrated: bool = True,
          build_dir: Path = DIAGNOSTICS_BUILD, consumers: bool = True) -> WranglerDev:
    """edgerelay under `wrangler dev` (warn-level logs: a log line per request
    would cost the load CPU), with a migrated local D1 unless told otherwise;
    `before`: other workers' configs in the same workerd, the first on the port;
    `consumers=False`: the queues keep their producers but no consumer runs
    (accepted jobs wait on the queue), so the accept path is measured alone."""
    overrides = None
    if not consumers:
        with open(ROOT / "wrangler.toml", "rb") as f:
            queues = tomllib.load(f)["queues"]
        overrides = {"queues": {"producers": queues["producers"]}}
    config = worker_config(directory, vars_, build_dir=build_dir, overrides=overrides)
    state = migrate(config, directory / "state") if migrated else None
    return WranglerDev([*before, config], directory, state_dir=state, log_level="warn")


# smtp-sink as the benchmarks' server: no AUTH (-a) and no DSN (-N)
# announced, so edgerelay and worker-mailer speak the same plain SMTP to it.
SINK_OPTIONS = ("-a", "-N")
