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
import json
import re
from collections import Counter
from pathlib import Path

import dkim
import pytest

from edgerelay_harness.api_standins import Canned, MailgunStandIn, SesStandIn
from edgerelay_harness.keys import basic_message, dkim_dns, verified_by_all
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


def test_the_send_email_binding_hands_over_our_signed_mime(start_worker, dkim_ed25519, dkim_rsa):
    binding = {"name": "EMAIL", "allowed_destination_addresses": ["rcpt@example.net"]}
    worker = start_worker("send-email://EMAIL", config_overrides={"send_email": [binding]})
    message_id, record = send_and_wait(worker, "through the binding")
    [path] = wait_for(lambda: sent_by_binding(worker), what="the binding's copy on disk")
    raw = path.read_bytes()
    assert b"Subject: through the binding" in raw
    assert raw.count(b"DKIM-Signature:") == 2, "both of our signatures are handed over"
    # The Email Service gives the message a Message-ID of its own (the local
    # one does as the service does), so with a send-email upstream configured
    # the signatures leave Message-ID out: they verify on the bytes the
    # binding keeps, exactly as handed over.
    found = re.search(r"accepted the message as (<[^>]+>) \(ours (<[^>]+>)\)", str(record))
    assert found, record
    theirs, ours = found.group(1).encode(), found.group(2).encode()
    assert theirs != ours
    assert f"Message-ID: {theirs.decode()}".encode() in raw
    assert b"Message-ID: " + ours not in raw
    signed_headers = re.findall(rb"[;\s]h=([^;]+);", re.sub(rb"\r\n[ \t]+", b" ", raw))
    assert len(signed_headers) == 2 and all(
        b"from" in h and b"message-id" not in h for h in signed_headers), signed_headers
    verified_by_all(raw, dkim_ed25519, dkim_rsa)
    assert record["attempts"] == 1

    # A destination the binding does not allow is a permanent failure.
    _, record = send_and_wait(worker, "not allowed", status="failed", to="other@example.net")
    assert "not allowed" in record["last_error"], record


def test_ses_throttling_is_backpressure_under_its_limits(start_worker, ses, dkim_ed25519,
                                                          dkim_rsa):
    """A throttled SES answer waits without using an attempt and halves the
    label's rate; the calls keep their slots and SES's 50-recipient cap
    (here lowered to 2) cuts a message into several calls."""
    rate = 5
    server = ses()
    label = f"ses:{server.region}"
    worker = start_worker(server.url(), UPSTREAM_LIMITS=json.dumps(
        {label: {"rate": rate, "recipients_per_message": 2}}))
    throttled = 3
    server.answer_next(*[Canned(429, {"message": "Maximum sending rate exceeded."},
                                {"x-amzn-ErrorType": "TooManyRequestsException"})] * throttled)
    batch = [basic_message(subject=f"paced {n}", to=f"p{n}@example.net") for n in range(12)]
    batch.append(basic_message(subject="five", to=[f"f{n}@example.net" for n in range(5)]))
    status, body, _ = worker.request("POST", "/v1/messages/batch", batch, worker.auth)
    assert status in (200, 207) and body["accepted"] == len(batch), body
    ids = [item["id"] for item in body["results"]]
    records = [wait_for(lambda i=i: (s := worker.status(i))["status"] == "delivered" and s,
                        timeout=90, what=f"{i} delivered") for i in ids]
    assert [r["attempts"] for r in records] == [1] * len(ids), "throttling used no attempt"

    copies = Counter((s.edgerelay_id, r) for s in server.sent for r in s.recipients)
    assert set(copies.values()) == {1} and len(copies) == 12 + 5, copies
    assert all(len(s.recipients) <= 2 for s in server.sent)
    five = [s for s in server.sent if s.edgerelay_id == ids[-1]]
    assert sorted(len(s.recipients) for s in five) == [1, 2, 2]
    for s in five:
        verified_by_all(s.mime, dkim_ed25519, dkim_rsa)
    # Paced: no one-second window holds more than the rate and its margin.
    times = sorted(s.at for s in server.sent)
    assert max(sum(1 for t in times if a <= t < a + 1) for a in times) <= rate + 2, times

    status, body, _ = worker.request("GET", "/v1/upstreams", headers=worker.auth)
    (view,) = [u for u in body["data"] if u["name"] == label]
    assert view["shaping"]["current_rate"] < rate, view["shaping"]
    assert view["shaping"]["throttled_since"] is not None, view["shaping"]
    assert view["health"]["state"] == "healthy", view
    assert '"upstream_slowed"' in worker.log()
