"""Postfix's smtp-sink as an end-to-end upstream, with its fault options
(see `man smtp-sink`): -W CMD:SECONDS delays a reply, -q/-Q hang up or 421.

A missing smtp-sink skips the test, unless CI=true, where it fails it.
"""
import os
import socket
import subprocess
from pathlib import Path

import pytest

from upstream import free_port

SMTP_SINK = Path("/usr/sbin/smtp-sink")


class SmtpSink:
    def __init__(self, *options: str):
        if not SMTP_SINK.exists():
            if os.environ.get("CI") in ("true", "1"):
                pytest.fail("smtp-sink is missing and CI=true: run make setup-test")
            pytest.skip("smtp-sink is not installed (make setup-test installs it)")
        self.port = free_port()
        command = [str(SMTP_SINK)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # it refuses to run as root otherwise
        command += ["-h", "sink.test", *options, f"127.0.0.1:{self.port}", "16"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=10)
