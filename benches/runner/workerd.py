"""Runs workers under `wrangler dev` (workerd with local Queues and D1), the
way the end-to-end tests do: the already-built edgerelay, configured from
wrangler.toml minus its build step, with the given vars. The release build
(build/) unless a benchmark needs the routes of the diagnostics build
(build-diagnostics/, `make build-diagnostics`)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
RELEASE_BUILD = ROOT / "build"
# With the benchmark routes (/bench/signing, /bench/smtp).
DIAGNOSTICS_BUILD = ROOT / "build-diagnostics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    return dict(
        os.environ,
        PATH=f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        WRANGLER_SEND_METRICS="false",
        CLOUDFLARE_CF_FETCH_ENABLED="false",
    )


def edgerelay_config(directory: Path, vars_: dict, build_dir: Path = RELEASE_BUILD) -> Path:
    with open(ROOT / "wrangler.toml", "rb") as f:
        config = tomllib.load(f)
    config.pop("build", None)
    config["main"] = str(build_dir / "index.js")
    for db in config.get("d1_databases", []):
        db["migrations_dir"] = str(ROOT / db.get("migrations_dir", "migrations"))
    config["vars"] = {**config.get("vars", {}), **vars_}
    path = directory / "edgerelay.json"
    path.write_text(json.dumps(config))
    return path


def worker_mailer_config(directory: Path, smtp_port: int) -> Path:
    with open(ROOT / "benches" / "worker-mailer" / "wrangler.toml", "rb") as f:
        config = tomllib.load(f)
    config["main"] = str(ROOT / "benches" / "worker-mailer" / "index.js")
    config["vars"] = {**config.get("vars", {}), "SMTP_PORT": str(smtp_port)}
    path = directory / "worker-mailer.json"
    path.write_text(json.dumps(config))
    return path


def trivial_config(directory: Path) -> Path:
    """A worker that answers 200 and does nothing else: the startup baseline."""
    script = directory / "trivial.js"
    script.write_text("export default { fetch() { return new Response('ok'); } };\n")
    path = directory / "trivial.json"
    path.write_text(json.dumps({"name": "trivial", "main": str(script),
                                "compatibility_date": "2026-11-01"}))
    return path


def migrate(directory: Path, config: Path) -> Path:
    state = directory / "state"
    subprocess.run(
        [str(WRANGLER), "d1", "migrations", "apply", "DB", "--local",
         "--persist-to", str(state), "-c", str(config)],
        check=True, env=env(), cwd=directory,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return state


def get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0


def post_json(url: str, body, headers=None, timeout: float = 120.0):
    data = json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method="POST", headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class Wrangler:
    """One `wrangler dev` process; the first config is the one on the port."""

    def __init__(self, configs: list[Path], directory: Path, state: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"wrangler-{self.port}.log"
        args = [str(WRANGLER), "dev"]
        for c in configs:
            args += ["-c", str(c)]
        if state is not None:
            args += ["--persist-to", str(state)]
        args += ["--ip", "127.0.0.1", "--port", str(self.port),
                 "--show-interactive-dev-session=false", "--log-level", "warn"]
        self.started_at = time.monotonic()
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=env(), cwd=directory, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, path: str = "/health", timeout: float = 90.0) -> float:
        """Polls until `path` answers 200; returns seconds since the start."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"wrangler dev exited:\n{self.log()}")
            if get(self.url + path, timeout=1.0) == 200:
                return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                raise RuntimeError(f"wrangler dev did not answer {path}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


def fresh_directory(base: Path, name: str) -> Path:
    d = base / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d
