"""Delivery status notifications asked for in the envelope (RFC 3461), as a
real server (Postfix's smtp-sink) records them: with DSN on offer, MAIL
carries RET=HDRS and the signed envelope id (`<id>.<tag>`, which only
QUEUE_SECRET can write) as ENVID, and each RCPT carries NOTIFY (SUCCESS too
when the sender asked for proof of delivery) and ORCPT; a server that does
not offer DSN gets none of them."""
import email
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message, new_queue_secret
from edgerelay_harness.poll import wait_for
from edgerelay_harness.return_path import envelope_id, open_return_path


@pytest.fixture
def dumps():
    """A directory smtp-sink (running as `nobody`) can reach: the test's own
    tmp_path sits below a directory only its owner may enter."""
    directory = Path(tempfile.mkdtemp(prefix="edgerelay-sink-"))
    directory.chmod(0o755)
    yield directory / "dumps"
    shutil.rmtree(directory, ignore_errors=True)


def the_dump(worker, sink, message_id: str) -> bytes:
    """The one message smtp-sink dumped, read once the worker saw its 250
    for the final dot: smtp-sink creates the file as the transaction starts
    and has written it whole only by then."""
    wait_for(lambda: worker.status(message_id)["status"] == "delivered",
             what=f"message {message_id} delivered to smtp-sink")
    [dump] = sink.dumps()
    return dump


def envelope_args(dump: bytes) -> tuple[str, list[str]]:
    """The X-Mail-Args and X-Rcpt-Args smtp-sink recorded for one message."""
    headers = email.message_from_bytes(dump)
    return headers["X-Mail-Args"], headers.get_all("X-Rcpt-Args") or []


def test_a_server_offering_dsn_gets_envid_notify_and_orcpt(start_worker, smtp_sink, dumps):
    sink = smtp_sink(dump_dir=dumps)
    secret = new_queue_secret()
    worker = start_worker(sink.url, QUEUE_SECRET=secret)
    s, accepted, _ = worker.send(basic_message(to=["one@example.net", "two+tag@example.net"]))
    assert s == 202, accepted
    dump = the_dump(worker, sink, accepted["id"])
    mail_args, rcpt_args = envelope_args(dump)
    envid = envelope_id(accepted["id"], secret)
    assert envid.startswith(accepted["id"] + ".") and len(envid) == 32 + 1 + 16
    assert mail_args.endswith(f"RET=HDRS ENVID={envid}"), mail_args
    assert rcpt_args == [
        "<one@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;one@example.net",
        "<two+tag@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;two+2Btag@example.net",
    ], rcpt_args


def test_proof_of_delivery_asks_for_success_notifications_too(start_worker, smtp_sink, dumps):
    sink = smtp_sink(dump_dir=dumps)
    secret = new_queue_secret()
    return_path_domain = f"rp.{SENDER_DOMAIN}"
    worker = start_worker(sink.url, QUEUE_SECRET=secret,
                          RETURN_PATH_DOMAINS=json.dumps({SENDER_DOMAIN: return_path_domain}))
    s, accepted, _ = worker.send(basic_message(to="one@example.net", notify={"delivery": True}))
    assert s == 202, accepted
    dump = the_dump(worker, sink, accepted["id"])
    mail_args, rcpt_args = envelope_args(dump)
    # MAIL FROM is the signed return path, with the signed envelope id.
    sender, _, params = mail_args.partition(" ")
    assert sender.startswith("<b+") and sender.endswith(f"@{return_path_domain}>"), mail_args
    assert open_return_path(sender.strip("<>"), secret) == (accepted["id"], 0)
    assert params == f"RET=HDRS ENVID={envelope_id(accepted['id'], secret)}", mail_args
    assert rcpt_args == [
        "<one@example.net> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;one@example.net",
    ], rcpt_args


def test_a_bad_notify_is_refused_naming_the_field(start_worker, smtp_sink, dumps):
    sink = smtp_sink(dump_dir=dumps)
    worker = start_worker(sink.url)
    for notify, field in [({"delivery": "yes"}, "notify.delivery"),
                          ({"success": True}, "notify.success"),
                          (True, "notify")]:
        s, body, _ = worker.send(basic_message(notify=notify))
        assert s == 422, body
        assert [d["field"] for d in body["error"]["details"]] == [field], body


def test_a_server_without_dsn_gets_no_dsn_parameter(start_worker, smtp_sink, dumps):
    sink = smtp_sink("-N", dump_dir=dumps)
    worker = start_worker(sink.url)
    s, accepted, _ = worker.send(basic_message(to=["one@example.net"],
                                               notify={"delivery": True}))
    assert s == 202, accepted
    dump = the_dump(worker, sink, accepted["id"])
    mail_args, rcpt_args = envelope_args(dump)
    assert "ENVID" not in mail_args and "RET=" not in mail_args, mail_args
    assert rcpt_args == ["<one@example.net>"], rcpt_args
