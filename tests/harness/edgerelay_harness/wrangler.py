"""The one launcher of `wrangler dev` for tests and benchmarks.

`wrangler dev` runs workers in workerd, the runtime Cloudflare deploys, with
local Queues, D1 and R2. Here it always runs an already-built worker: configs
are generated from wrangler.toml without its [build] step, pointed at a build
directory (`build/` by default), with the caller's vars. The process gets its
own process group, so stopping it also stops workerd beneath it, and a
crash test can kill that group with SIGKILL and start it again on the same
persisted state. The cron trigger (the reconciliation sweep) is fired on
demand through wrangler's local scheduled route, so a test never waits for
a schedule.

Must not: build the worker (`make build` does), or know what a test checks.
"""
import json
import os
import re
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

from .net import free_port
from .paths import NODE_BIN, RELEASE_BUILD, ROOT, WRANGLER

READY_LINE = re.compile(r"Ready on (http://127\.0\.0\.1:\d+)")
# Where `wrangler dev` fires the worker's scheduled (cron) handler.
SCHEDULED_PATH = "/cdn-cgi/local/scheduled"
# Log levels at which wrangler prints its "Ready on" line.
_READY_LEVELS = {"info", "log", "debug"}


def wrangler_env(ca_cert: Path | None = None) -> dict:
    """The environment wrangler runs in: local tools first on PATH, no
    metrics, no network look-ups; `ca_cert` is trusted by workerd (for
    STARTTLS and implicit TLS to servers on loopback)."""
    env = dict(
        os.environ,
        PATH=f"{NODE_BIN}:{os.environ['PATH']}",
        WRANGLER_SEND_METRICS="false",
        CLOUDFLARE_CF_FETCH_ENABLED="false",
    )
    if ca_cert is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_cert)
    return env


def _resolve_build(build_dir: Path | str) -> Path:
    build = Path(build_dir)
    return build if build.is_absolute() else ROOT / build


def worker_config(directory: Path, vars_: dict, *, build_dir: Path | str = RELEASE_BUILD,
                  overrides: dict | None = None, name: str = "edgerelay.json") -> Path:
    """Writes edgerelay's config into `directory`: wrangler.toml as deployed,
    minus the build step, running `build_dir`/index.js, with `vars_` over
    its vars (secrets go in as plain vars) and `overrides` replacing
    top-level keys. Returns the config's path."""
    with open(ROOT / "wrangler.toml", "rb") as f:
        config = tomllib.load(f)
    config.pop("build", None)
    main = _resolve_build(build_dir) / "index.js"
    if not main.exists():
        raise RuntimeError(f"{main} is missing: build the worker first (make build)")
    config["main"] = str(main)
    if "assets" in config:
        config["assets"] = {**config["assets"], "directory": str(_resolve_build(build_dir) / "assets")}
    for db in config.get("d1_databases", []):
        db["migrations_dir"] = str(ROOT / db.get("migrations_dir", "migrations"))
    config["vars"] = {**config.get("vars", {}), **vars_}
    config.update(overrides or {})
    path = directory / name
    path.write_text(json.dumps(config))
    return path


def companion_config(directory: Path, wrangler_toml: Path, main: Path, vars_: dict | None = None,
                     name: str | None = None) -> Path:
    """Another worker's config (a producer, a baseline to measure against),
    to run beside edgerelay in the same `wrangler dev`: its own wrangler.toml
    with `main` made absolute and `vars_` over its vars."""
    with open(wrangler_toml, "rb") as f:
        config = tomllib.load(f)
    config["main"] = str(main)
    if vars_:
        config["vars"] = {**config.get("vars", {}), **vars_}
    path = directory / (name or f"{config['name']}.json")
    path.write_text(json.dumps(config))
    return path


def migrate(config: Path, state_dir: Path, ca_cert: Path | None = None) -> Path:
    """Applies the D1 migrations to a local state directory; returns it."""
    subprocess.run(
        [str(WRANGLER), "d1", "migrations", "apply", "DB", "--local",
         "--persist-to", str(state_dir), "-c", str(config)],
        check=True, env=wrangler_env(ca_cert), cwd=config.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return state_dir


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0


class WranglerDev:
    """One `wrangler dev` process running one or more configs in one
    workerd (they share queues and can bind to each other); the first config
    answers HTTP at `url`.

    `state_dir`: where local D1, R2 and queue state persist (`--persist-to`);
    wrangler's own default under `directory` when None.
    `port`: None lets wrangler bind a free port itself and name it in its
    "Ready on" line, so parallel runs never race for a port. At a log level
    that hides that line (warn, error), a free port is picked here instead.
    """

    def __init__(self, configs: list[Path], directory: Path, *, state_dir: Path | None = None,
                 ca_cert: Path | None = None, port: int | None = None, log_level: str = "info"):
        if port is None and log_level not in _READY_LEVELS:
            port = free_port()
        self.directory = directory
        self.state_dir = state_dir
        self._port = port
        self._env = wrangler_env(ca_cert)
        args = [str(WRANGLER), "dev"]
        for config in configs:
            args += ["-c", str(config)]
        if state_dir is not None:
            args += ["--persist-to", str(state_dir)]
        args += ["--ip", "127.0.0.1", "--port", str(port or 0), "--inspector-port", "0",
                 "--show-interactive-dev-session=false", "--log-level", log_level]
        self._args = args
        self._spawn()

    def _spawn(self) -> None:
        port = self._port
        self.url = f"http://127.0.0.1:{port}" if port else ""
        self.log_path = self.directory / f"wrangler-{port or 'auto'}-{time.monotonic_ns()}.log"
        self.started_at = time.monotonic()
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self._args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self._env, cwd=self.directory, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, path: str = "/health", timeout: float = 90.0) -> float:
        """Polls until `path` answers 200; returns the seconds since start."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"wrangler dev exited with {self.process.returncode}:\n{self.log()}")
            if not self.url:
                found = READY_LINE.search(self.log())
                if found:
                    self.url = found.group(1)
            if self.url and _get(self.url + path, timeout=2.0) == 200:
                return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                raise RuntimeError(f"wrangler dev did not answer {path} in {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL to wrangler and workerd (the whole process group) at
        once, as a crashed host would: nothing gets to clean up."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._log.close()

    def restart(self) -> None:
        """Starts again on the same configs and persisted state (after
        `kill`); call `wait_ready` next. The log starts a new file."""
        if self.process.poll() is None:
            self.kill()
        self._spawn()

    def scheduled(self, timeout: float = 30.0) -> int:
        """Fires the scheduled (cron) handler once and returns the HTTP
        status of wrangler's answer (200 once the handler has run)."""
        return _get(self.url + SCHEDULED_PATH, timeout=timeout)

    def stop(self) -> None:
        """Stops wrangler and workerd (the whole process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()
