#!/usr/bin/env python3
"""Writes the Postfix delivery status notifications in tests/fixtures/reports/
from a real Postfix: a private instance on loopback (see
tests/harness/edgerelay_harness/postfix.py) is sent one message per case with
the DSN parameters edgerelay sends (RET=HDRS, ENVID, NOTIFY, ORCPT), and each
notice it returns to the return path is written as the raw bytes that arrived.

    postfix-unknown-user.eml  failed: the next hop said 550 5.1.1 at RCPT
    postfix-delayed.eml       delayed: the next hop keeps saying 451
    postfix-success.eml       delivered: final delivery into a mailbox (NOTIFY=SUCCESS)
    postfix-relayed.eml       relayed: handed to a next hop without DSN (NOTIFY=SUCCESS)

Usage (as root, after `make setup-test`):

    .venv/bin/python scripts/make_report_fixtures.py [OUT_DIR]

OUT_DIR defaults to tests/fixtures/reports. Takes about ten seconds; stops
Postfix before it exits, whatever happens. Dates, queue ids and ports differ
from run to run; the tests read only what does not.
"""
import sys
from pathlib import Path

from edgerelay_harness.paths import ROOT
from edgerelay_harness.postfix import PostfixInstance, postfix_version, produce_reports


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fixtures" / "reports"
    out.mkdir(parents=True, exist_ok=True)
    print(f"Postfix {postfix_version()}")
    with PostfixInstance() as postfix:
        reports = produce_reports(postfix, timeout=60)
    for name, raw in reports.items():
        (out / name).write_bytes(raw)
        print(f"wrote {out / name} ({len(raw)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
