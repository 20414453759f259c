"""The harness's private Postfix (edgerelay_harness.postfix), which writes
the DSN fixtures in tests/fixtures/reports: it returns a failure notice, a
delay warning and success notices to the return path's domain, each with the
Action, Status and ids of the message it reports on; and it leaves no process
behind, whether stopped or abandoned by a process that died.

A missing Postfix (or a user other than root) skips these tests, unless
CI=true, where it fails them.
"""
import email
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edgerelay_harness.net import port_open
from edgerelay_harness.poll import wait_for
from edgerelay_harness.postfix import (ENVID, MESSAGE_ID, REPORTS, RETURN_PATH, PostfixInstance,
                                       PostfixUnavailable, instance_processes, produce_reports)


def unstarted() -> PostfixInstance:
    try:
        return PostfixInstance()
    except PostfixUnavailable as e:
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(f"{e}, and CI=true")
        pytest.skip(str(e))


def started() -> PostfixInstance:
    return unstarted().start()


@pytest.fixture
def postfix():
    instance = started()
    yield instance
    instance.stop()


def report_fields(raw: bytes) -> tuple[dict, dict, str | None]:
    """The per-message and the one per-recipient field block of a DSN, and
    the Message-ID of the headers it returns, read with Python's own MIME
    parser (independent of edgerelay's)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    status = next(p for p in message.walk() if p.get_content_type() == "message/delivery-status")
    per_message, *per_recipient = status.get_payload()
    assert len(per_recipient) == 1, per_recipient
    returned = next(p for p in message.walk() if p.get_content_type() == "text/rfc822-headers")
    headers = email.message_from_string(returned.get_payload())
    return dict(per_message.items()), dict(per_recipient[0].items()), headers["Message-ID"]


# fixture name -> (Final-Recipient, Action, Status)
EXPECTED = {
    "postfix-unknown-user.eml": ("nobody@unknown.test", "failed", "5.1.1"),
    "postfix-delayed.eml": ("later@slow.test", "delayed", "4.3.0"),
    "postfix-success.eml": ("someone@ok.test", "delivered", "2.0.0"),
    "postfix-relayed.eml": ("someone@relay.test", "relayed", "2.0.0"),
}


def test_each_case_returns_its_notice_to_the_return_path(postfix):
    reports = produce_reports(postfix, timeout=60)
    assert set(reports) == set(EXPECTED)
    for name, raw in reports.items():
        final, action, status = EXPECTED[name]
        original = REPORTS[name][0]
        per_message, recipient, returned_id = report_fields(raw)
        assert per_message["Original-Envelope-Id"] == ENVID, name
        assert per_message["Reporting-MTA"] == "dns; mx.example.net", name
        assert recipient["Action"] == action, name
        assert recipient["Status"] == status, name
        assert recipient["Final-Recipient"] == f"rfc822; {final}", name
        assert recipient["Original-Recipient"] == f"rfc822;{original}", name
        assert returned_id == MESSAGE_ID, name
    # Each notice went to the return path, from the null sender, once.
    notices = postfix.notices()
    assert len(notices) == len(EXPECTED)
    # aiosmtpd records the null sender as written.
    assert all(n.mail_from == "<>" and n.rcpt_tos == [RETURN_PATH] for n in notices)
    # And what each notice says happened did: the rejecting next hop took
    # no message, the mailbox and the relaying next hop took one each.
    assert postfix.hops["unknown"].handler.rcpt_commands[0][0] == "nobody@unknown.test"
    assert postfix.hops["unknown"].messages == []
    assert postfix.hops["slow"].messages == []
    [relayed] = postfix.hops["relay"].messages
    assert relayed.rcpt_tos == ["someone@relay.test"]
    assert MESSAGE_ID.encode() in relayed.data
    [delivered] = list((postfix.mailbox_directory / "someone" / "new").iterdir())
    assert MESSAGE_ID.encode() in delivered.read_bytes()


def test_stop_leaves_no_process_behind():
    instance = started()
    root, port = instance.root, instance.port
    assert instance.processes(), "a running instance has processes"
    instance.stop()
    assert instance_processes(root / "etc") == []
    assert not port_open(port)
    assert not root.exists()


def test_an_instance_abandoned_by_a_dead_process_stops_itself():
    # A process that starts an instance and is then killed outright, as a
    # test run that dies would be: the instance's watchdog aborts it.
    unstarted()  # skips where no instance can start
    errors = tempfile.TemporaryFile()
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\n"
         "from edgerelay_harness.postfix import PostfixInstance\n"
         "p = PostfixInstance().start()\n"
         "print(p.root, flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
    root = None
    try:
        line = owner.stdout.readline().strip()
        errors.seek(0)
        assert line, f"the instance did not start: {errors.read().decode(errors='replace')}"
        root = Path(line)
        assert instance_processes(root / "etc"), "the instance runs"
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        wait_for(lambda: not instance_processes(root / "etc"), timeout=30,
                 what="the abandoned instance to stop")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=10)
        owner.stdin.close()
        owner.stdout.close()
        errors.close()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
