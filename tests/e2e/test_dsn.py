"""Delivery status notifications asked for in the envelope (RFC 3461), as a
real server (Postfix's smtp-sink) records them: with DSN on offer, MAIL
carries RET=HDRS and the message id as ENVID, and each RCPT carries NOTIFY
and ORCPT; a server that does not offer DSN gets none of them."""
import email
import shutil
import tempfile
from pathlib import Path

import pytest

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for


@pytest.fixture
def dumps():
    """A directory smtp-sink (running as `nobody`) can reach: the test's own
    tmp_path sits below a directory only its owner may enter."""
    directory = Path(tempfile.mkdtemp(prefix="edgerelay-sink-"))
    directory.chmod(0o755)
    yield directory / "dumps"
    shutil.rmtree(directory, ignore_errors=True)


def envelope_args(dump: bytes) -> tuple[str, list[str]]:
    """The X-Mail-Args and X-Rcpt-Args smtp-sink recorded for one message."""
    headers = email.message_from_bytes(dump)
    return headers["X-Mail-Args"], headers.get_all("X-Rcpt-Args") or []


def test_a_server_offering_dsn_gets_envid_notify_and_orcpt(start_worker, smtp_sink, dumps):
    sink = smtp_sink(dump_dir=dumps)
    worker = start_worker(sink.url)
    s, accepted, _ = worker.send(basic_message(to=["one@example.net", "two+tag@example.net"]))
    assert s == 202, accepted
    [dump] = wait_for(lambda: sink.dumps() or None, what="the message at smtp-sink")
    mail_args, rcpt_args = envelope_args(dump)
    assert mail_args.endswith(f"RET=HDRS ENVID={accepted['id']}"), mail_args
    assert rcpt_args == [
        "<one@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;one@example.net",
        "<two+tag@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;two+2Btag@example.net",
    ], rcpt_args


def test_a_server_without_dsn_gets_no_dsn_parameter(start_worker, smtp_sink, dumps):
    sink = smtp_sink("-N", dump_dir=dumps)
    worker = start_worker(sink.url)
    s, accepted, _ = worker.send(basic_message(to=["one@example.net"]))
    assert s == 202, accepted
    [dump] = wait_for(lambda: sink.dumps() or None, what="the message at smtp-sink")
    mail_args, rcpt_args = envelope_args(dump)
    assert "ENVID" not in mail_args and "RET=" not in mail_args, mail_args
    assert rcpt_args == ["<one@example.net>"], rcpt_args
