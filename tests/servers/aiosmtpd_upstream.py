"""Runs the end-to-end tests' aiosmtpd upstream as a child process for the
native Rust tests (tests/real_servers).

Usage: aiosmtpd_upstream.py DIRECTORY MODE
  MODE: starttls  STARTTLS and AUTH required (the submission-port setup)
        implicit  TLS from the first byte, AUTH required (smtps)
        plain     no TLS offered, AUTH required and allowed in plaintext

Writes a throwaway CA and server certificate into DIRECTORY, prints one JSON
line {"port", "ca", "user", "password"} once the server listens, and serves
until its standard input closes; then prints one JSON line with everything
it saw (messages, connections, AUTH attempts, MAIL and RCPT commands) and exits.
"""
import base64
import json
import logging
import sys
import warnings
from pathlib import Path

from edgerelay_harness.pki import make_ca_and_server_cert
from edgerelay_harness.upstream import Upstream


def main() -> int:
    # The plain mode allows AUTH without TLS on purpose; keep the test
    # output free of aiosmtpd's warnings about it.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    directory, mode = Path(sys.argv[1]), sys.argv[2]
    if mode not in ("starttls", "implicit", "plain"):
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    directory.mkdir(parents=True, exist_ok=True)
    paths = make_ca_and_server_cert(directory)
    server = Upstream(paths, require_tls=mode == "starttls", implicit_tls=mode == "implicit")
    server.start()
    print(json.dumps({"port": server.port, "ca": str(paths["ca"]),
                      "user": Upstream.USER, "password": Upstream.PASSWORD}), flush=True)
    sys.stdin.read()
    server.stop()
    report = {
        "connections": len(server.connections),
        "auth_attempts": server.auth_attempts,
        "rcpt_commands": list(server.handler.rcpt_commands),
        "messages": [
            {"mail_from": m.mail_from, "rcpt_tos": m.rcpt_tos,
             "data": base64.b64encode(m.data).decode()}
            for m in server.messages
        ],
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
