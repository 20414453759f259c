"""Upstreams beside SMTP: Amazon SES v2 raw and Mailgun `messages.mime`
against loopback stand-ins that check the documented request shape (and,
for SES, the SigV4 signature, recomputed with botocore), and the
Cloudflare Email Service `send_email` binding in the local runtime, which
keeps every message it is handed on disk.

Each provider answer lands in its class: delivered (the provider's id on
the message's record, edgerelay's id in the provider's own tag or user
variable), transient (retried later), permanent (failed), configuration
(the upstream is set aside without using the message's attempt, and the
next upstream takes the mail)."""
import re
from pathlib import Path

import dkim
import pytest

from edgerelay_harness.api_standins import Canned, MailgunStandIn, SesStandIn
from edgerelay_harness.keys import basic_message, dkim_dns
from edgerelay_harness.poll import wait_for


@pytest.fixture
def ses():
    servers = []

    def make(**kwargs) -> SesStandIn:
        s = SesStandIn(**kwargs).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def mailgun():
    servers = []

    def make(**kwargs) -> MailgunStandIn:
        s = MailgunStandIn(**kwargs).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def send_and_wait(worker, subject, status="delivered", **fields):
    code, body, _ = worker.send(basic_message(subject=subject, **fields))
    assert code == 202, body
    record = wait_for(lambda: (s := worker.status(body["id"]))["status"] == status and s,
                      what=f"{subject}: {status}")
    return body["id"], record


def assert_signed(mime: bytes, key):
    assert dkim.verify(mime, dnsfunc=dkim_dns(key)), mime[:600]


def test_ses_delivers_signed_mail_and_records_the_ses_message_id(start_worker, ses, dkim_ed25519):
    server = ses()
    worker = start_worker(server.url())
    message_id, record = send_and_wait(worker, "through SES")
    [sent] = server.sent
    assert sent.recipients == ["rcpt@example.net"]
    assert sent.edgerelay_id == message_id, "SES's events name the message by its tag"
    assert_signed(sent.mime, dkim_ed25519)
    assert sent.provider_id in str(record), record
    assert record["attempts"] == 1


def test_ses_answers_map_to_their_class(start_worker, ses, mailgun):
    server = ses()
    worker = start_worker(server.url())
    # Transient: SES's own trouble is retried, and the retry delivers.
    server.answer_next(Canned(500, {"message": "Internal failure"},
                              {"x-amzn-ErrorType": "InternalFailure"}))
    _, record = send_and_wait(worker, "after a 500")
    assert record["attempts"] == 2, record
    # Throttling waits and is sent again.
    server.answer_next(Canned(429, {"message": "Maximum sending rate exceeded."},
                              {"x-amzn-ErrorType": "TooManyRequestsException"}))
    send_and_wait(worker, "after throttling")
    # Permanent: the message is refused for good.
    server.answer_next(Canned(400, {"message": "Illegal address"},
                              {"x-amzn-ErrorType": "MessageRejected"}))
    _, record = send_and_wait(worker, "rejected", status="failed")
    assert "MessageRejected" in record["last_error"], record
    assert [s.mime for s in server.sent if b"Subject: rejected" in s.mime] == []


def test_a_wrong_ses_secret_sets_the_upstream_aside_without_using_the_attempt(
        start_worker, ses, mailgun):
    wrong = ses()
    _, record = send_and_wait(start_worker(wrong.url(secret="not-the-secret")),
                              "bad signature", status="deferred")
    assert "SignatureDoesNotMatch" in record["last_error"], record
    assert record["attempts"] == 0, "a configuration failure is not the message's attempt"
    assert wrong.sent == [] and len(wrong.received) == 1

    # With a second upstream, the mail fails over to it.
    wrong = ses()
    other = mailgun()
    worker = start_worker(f"{wrong.url(secret='not-the-secret')},{other.url()}")
    send_and_wait(worker, "fails over")
    assert len(other.sent) == 1 and wrong.sent == []


def test_mailgun_delivers_signed_mail_and_records_the_mailgun_id(
        start_worker, mailgun, dkim_ed25519):
    server = mailgun()
    worker = start_worker(server.url())
    message_id, record = send_and_wait(worker, "through Mailgun",
                                       to=["rcpt@example.net", "second@example.net"])
    [sent] = server.sent
    assert sorted(sent.recipients) == ["rcpt@example.net", "second@example.net"]
    assert sent.edgerelay_id == message_id, "Mailgun's events carry it as a user variable"
    assert_signed(sent.mime, dkim_ed25519)
    assert sent.provider_id in str(record), record


def test_mailgun_answers_map_to_their_class(start_worker, mailgun):
    server = mailgun()
    worker = start_worker(server.url())
    server.answer_next(Canned(429, {"message": "Too many requests"}))
    send_and_wait(worker, "after throttling")
    server.answer_next(Canned(502, "Bad Gateway"))
    _, record = send_and_wait(worker, "after a 502")
    assert record["attempts"] == 2, record
    server.answer_next(Canned(400, {"message": "'to' parameter is not a valid address. "
                                               "please check documentation"}))
    _, record = send_and_wait(worker, "bad address", status="failed")
    assert "not a valid address" in record["last_error"], record

    wrong_key = mailgun()
    _, record = send_and_wait(start_worker(wrong_key.url(key="key-wrong")), "bad key",
                              status="deferred")
    assert record["attempts"] == 0 and "401" in record["last_error"], record


def sent_by_binding(worker) -> list[Path]:
    return [Path(p) for p in re.findall(r"Email: (\S+\.eml)", worker.log())]


def test_the_send_email_binding_hands_over_our_signed_mime(start_worker, dkim_ed25519):
    binding = {"name": "EMAIL", "allowed_destination_addresses": ["rcpt@example.net"]}
    worker = start_worker("send-email://EMAIL", config_overrides={"send_email": [binding]})
    message_id, record = send_and_wait(worker, "through the binding")
    [path] = wait_for(lambda: sent_by_binding(worker), what="the binding's copy on disk")
    raw = path.read_bytes()
    assert b"Subject: through the binding" in raw
    assert raw.count(b"DKIM-Signature:") == 2, "both of our signatures are handed over"
    # The Email Service gives the message a Message-ID of its own (the local
    # one does as the service does); the record names both, and with ours
    # back in place every byte our signature covers is as we signed it.
    found = re.search(r"accepted the message as (<[^>]+>) \(ours (<[^>]+>)\)", str(record))
    assert found, record
    theirs, ours = found.group(1).encode(), found.group(2).encode()
    assert f"Message-ID: {theirs.decode()}".encode() in raw
    restored = raw.replace(b"Message-ID: " + theirs, b"Message-ID: " + ours, 1)
    assert_signed(restored, dkim_ed25519)
    assert record["attempts"] == 1

    # A destination the binding does not allow is a permanent failure.
    _, record = send_and_wait(worker, "not allowed", status="failed", to="other@example.net")
    assert "not allowed" in record["last_error"], record
