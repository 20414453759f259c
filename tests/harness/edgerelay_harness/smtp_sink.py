"""Postfix's smtp-sink as an SMTP upstream on loopback: a real server that
accepts quickly, offers PIPELINING, and injects faults on request (see
`man smtp-sink`: -W CMD:SECONDS delays a reply, -q/-Q hang up or send 421,
-a and -N stop it announcing AUTH and DSN).

With a dump directory each message is written to its own file, so a caller
can count messages as they arrive. This module must not decide whether a
missing smtp-sink skips or fails a test: it raises `SmtpSinkMissing` and the
caller chooses.
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .net import free_port, port_open
from .poll import wait_for


class SmtpSinkMissing(RuntimeError):
    """smtp-sink is not installed (`scripts/setup.sh test` installs Postfix)."""


def smtp_sink_binary() -> Path | None:
    found = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    return Path(found) if Path(found).exists() else None


class SmtpSink:
    """One smtp-sink process, listening once the constructor returns."""

    def __init__(self, *options: str, port: int | None = None, dump_dir: Path | None = None,
                 backlog: int = 16, hostname: str = "sink.test"):
        binary = smtp_sink_binary()
        if binary is None:
            raise SmtpSinkMissing("smtp-sink is not installed (make setup-test installs it)")
        self.port = port or free_port()
        self.dump_dir = dump_dir
        command = [str(binary)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # it refuses to run as root otherwise
        command += ["-h", hostname, *options]
        if dump_dir is not None:
            # smtp-sink writes as `nobody`.
            dump_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(dump_dir, 0o777)
            command += ["-d", str(dump_dir / "%H%M%S.")]
        command += [f"127.0.0.1:{self.port}", str(backlog)]
        # A file, not a pipe: a pipe nobody reads would block a chatty server.
        self._errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._errors)

        def listening():
            if self.process.poll() is not None:
                raise RuntimeError(f"smtp-sink exited: {self.errors()}")
            return port_open(self.port)

        try:
            wait_for(listening, timeout=10, interval=0.02, what="smtp-sink to listen")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def dumped(self) -> int:
        """How many messages it has written to the dump directory."""
        if self.dump_dir is None:
            raise RuntimeError("started without a dump directory")
        try:
            return len(os.listdir(self.dump_dir))
        except FileNotFoundError:
            return 0

    def dumps(self) -> list[bytes]:
        """Each message it wrote to the dump directory: its own headers
        (`X-Mail-Args`, `X-Rcpt-Args`, ...) and then the message."""
        if self.dump_dir is None:
            raise RuntimeError("started without a dump directory")
        return [p.read_bytes() for p in sorted(self.dump_dir.iterdir()) if p.is_file()]

    def errors(self) -> str:
        """What it wrote to standard error."""
        self._errors.seek(0)
        return self._errors.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
