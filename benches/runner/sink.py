"""Postfix's smtp-sink as the benchmark's SMTP server: a real server that
accepts everything quickly and offers PIPELINING. Started without AUTH (-a)
and without DSN (-N), so edgerelay and worker-mailer speak the same plain
SMTP to it. With `dump=True` each message is written to its own file, so the
runner can count messages as they arrive."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class SmtpSink:
    def __init__(self, port: int, directory: Path, dump: bool = False):
        self.port = port
        self.dump_dir = directory / f"sink-{port}"
        args = [SMTP_SINK, "-a", "-N"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]  # smtp-sink refuses to run as root
        if dump:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dump_dir, 0o777)
            args += ["-d", str(self.dump_dir / "%H%M%S.")]
        args += [f"127.0.0.1:{port}", "1024"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _port_open(port):
            if self.process.poll() is not None:
                raise RuntimeError(f"smtp-sink exited: {self.process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("smtp-sink did not start listening")
            time.sleep(0.02)

    def messages(self) -> int:
        try:
            return len(os.listdir(self.dump_dir))
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
