"""Bounces and complaints that come back after the smarthost's 250, end to
end: the worker relays through a real Postfix on loopback, which later
writes real delivery status notifications to the message's signed return
path; fed to the worker's email handler (as Email Routing delivers them),
they mark the recipient, emit events to the API and webhooks, and suppress
what must be; a complaint report quoting the return path suppresses every
stream; a success notice, asked for, is the proof of delivery; forged
reports change nothing."""
import json
import re

from standardwebhooks import Webhook

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message
from edgerelay_harness.openapi import schema
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.webhook_receiver import WebhookReceiver

RETURN_PATH_DOMAIN = f"rp.{SENDER_DOMAIN}"
RETURN_PATHS = json.dumps({SENDER_DOMAIN: RETURN_PATH_DOMAIN})
REPORT_FIXTURES = ROOT / "tests" / "fixtures" / "reports"
MAILER_DAEMON = "MAILER-DAEMON@mx.example.net"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")


def settled(worker, message_id):
    def done():
        record = worker.status(message_id)
        return record["status"] in FINAL and record
    return wait_for(done, timeout=60, what=f"{message_id} to settle")


def recipient(record, address):
    [r] = [r for r in record["recipients"] if r["address"] == address]
    return r


def events_of(record, address):
    return [e for e in record["email_events"] if e["recipient"] == address]


def notices_to(postfix, count):
    """The notices Postfix sent so far, once there are `count`."""
    return wait_for(lambda: len(postfix.capture.messages) >= count
                    and postfix.capture.messages, timeout=60,
                    what=f"{count} notices from Postfix")


def deliver(worker, notice):
    """Hands one captured notice to the email handler, as Email Routing
    would: from the null sender's stand-in, to the address it came to."""
    [rcpt] = notice.rcpt_tos
    s, answer, _ = worker.email(notice.data, notice.mail_from or MAILER_DAEMON, rcpt)
    assert s == 200 and answer["outcome"] == "ok", answer
    assert answer.get("rejectReason") is None, answer
    return rcpt


def reports(worker, **query):
    path = "/v1/inbound-reports"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    s, body, _ = worker.request("GET", path, headers=worker.auth)
    assert s == 200, body
    schema("InboundReportPage").validate(body)
    return body["data"]


def sent_through(start_worker, smarthost, to, **extra_vars):
    """A worker relaying through `smarthost`, and the settled message it
    sent to `to`."""
    worker = start_worker(f"smtp+insecure://127.0.0.1:{smarthost.port}", **extra_vars)
    s, accepted, _ = worker.send(basic_message(to=to))
    assert s == 202, accepted
    settled(worker, accepted["id"])
    return worker, accepted


def test_notices_from_a_real_postfix_bounce_delay_and_suppress(start_worker, postfix):
    smarthost = postfix()
    receiver = WebhookReceiver({}).start()
    try:
        worker = start_worker(f"smtp+insecure://127.0.0.1:{smarthost.port}",
                              RETURN_PATH_DOMAINS=RETURN_PATHS, WEBHOOK_ALLOW_LOCAL_URLS="on")
        s, hook, _ = worker.request("POST", "/v1/webhooks", {"url": receiver.url("/hook")},
                                    worker.auth)
        assert s == 201, hook
        gone, full, late = "nobody@unknown.test", "someone@full.test", "later@slow.test"
        proof = "someone@ok.test"
        ids = {}
        for address in (gone, full, late, proof):
            extra = {"notify": {"delivery": True}} if address == proof else {}
            s, accepted, _ = worker.send(basic_message(to=address, **extra))
            assert s == 202, accepted
            ids[address] = accepted["id"]
        for address, message_id in ids.items():
            record = settled(worker, message_id)
            # The smarthost took each one: a 250, so `sent`, nothing more.
            assert recipient(record, address)["state"] == "delivered", record
        # Postfix reports the two failures, the final delivery it was asked
        # to prove and, after a few seconds of 451s, the delay.
        notices = notices_to(smarthost, 4)
        for notice in notices:
            rcpt = deliver(worker, notice)
            assert rcpt.startswith("b+") and rcpt.endswith("@" + RETURN_PATH_DOMAIN), rcpt

        # The hard bounce: the recipient is bounced with the notice's status
        # and diagnostic, the stream and the webhook carry email.bounced.
        record = worker.status(ids[gone])
        bounced = recipient(record, gone)
        assert bounced["state"] == "bounced", bounced
        assert (bounced["reply_code"], bounced["enhanced_code"]) == (550, "5.1.1"), bounced
        assert "User unknown" in bounced["reply_text"], bounced
        [event] = [e for e in events_of(record, gone) if e["type"] == "email.bounced"]
        assert event["data"]["bounce"] == {"type": "hard", "category": "invalid_mailbox"}, event
        assert event["data"]["evidence"] == {"source": "dsn"}, event
        schema("MessageStatus").validate(record)

        # The soft bounce (a full mailbox) marks the recipient, suppresses
        # nothing; the delay is an event only.
        record = worker.status(ids[full])
        assert recipient(record, full)["state"] == "bounced"
        [event] = [e for e in events_of(record, full) if e["type"] == "email.bounced"]
        assert event["data"]["bounce"]["type"] == "soft", event
        record = worker.status(ids[late])
        assert recipient(record, late)["state"] == "delivered"
        assert "email.delivery_delayed" in [e["type"] for e in events_of(record, late)], record

        # Proof of delivery: the success notice is the only thing that gives
        # email.delivered.
        record = worker.status(ids[proof])
        assert [e["type"] for e in events_of(record, proof)] == ["email.sent", "email.delivered"]
        assert all(e["type"] != "email.delivered" for address in (gone, full, late)
                   for e in events_of(worker.status(ids[address]), address))

        secret = hook["secret"]

        def bounced_hook():
            payloads = [Webhook(secret).verify(d.body, d.headers) for d in receiver.to("/hook")]
            return [p for p in payloads if p["type"] == "email.bounced"
                    and p["data"]["recipient"] == gone] or None
        [delivered] = wait_for(bounced_hook, timeout=30, what="email.bounced at the webhook")
        assert delivered["data"]["email_id"] == ids[gone]

        # Recorded: four applied reports.
        applied = reports(worker, verdict="applied")
        assert sorted(r["message_id"] for r in applied) == sorted(ids.values()), applied

        # The same notice again changes nothing.
        [again] = [n for n in notices if b"unknown.test" in n.data and b"5.1.1" in n.data]
        deliver(worker, again)
        assert [r["verdict"] for r in reports(worker)][0] == "duplicate"
        assert len([e for e in events_of(worker.status(ids[gone]), gone)
                    if e["type"] == "email.bounced"]) == 1

        # The next send to the hard-bounced address is held back; to the
        # full mailbox it goes out again.
        s, second, _ = worker.send(basic_message(to=[gone, full]))
        assert s == 202, second
        record = settled(worker, second["id"])
        assert recipient(record, gone)["state"] == "suppressed", record
        assert recipient(record, full)["state"] == "delivered", record
    finally:
        receiver.stop()


def test_a_forged_or_altered_bounce_changes_nothing(start_worker, postfix):
    smarthost = postfix()
    gone = "nobody@unknown.test"
    worker, accepted = sent_through(start_worker, smarthost, gone,
                                    RETURN_PATH_DOMAINS=RETURN_PATHS)
    [notice] = notices_to(smarthost, 1)
    [rcpt] = notice.rcpt_tos
    local, domain = rcpt.split("@")
    envid = re.search(rb"Original-Envelope-Id: (\S+)", notice.data).group(1)
    bare, tag = envid.rsplit(b".", 1)
    assert bare.decode() == accepted["id"], envid
    # What a forger can write: the message id (every recipient sees it),
    # with a made-up tag or none, to a return path with one letter changed
    # or to another address at the return-path domain.
    made_up = bare + b"." + bytes(reversed(tag))
    flipped = local[:-1] + ("a" if local[-1] != "a" else "b")
    for forged_envid, to in ((made_up, f"{flipped}@{domain}"), (bare, f"postmaster@{domain}")):
        forged = notice.data.replace(envid, forged_envid)
        s, answer, _ = worker.email(forged, MAILER_DAEMON, to)
        assert s == 200 and answer.get("rejectReason") is None, answer
    kept = reports(worker)
    assert [r["verdict"] for r in kept] == ["unmatched", "unmatched"], kept
    assert all(r["message_id"] == accepted["id"] and r["raw_kept"] for r in kept), kept
    record = worker.status(accepted["id"])
    assert recipient(record, gone)["state"] == "delivered", record
    assert not [e for e in record["email_events"] if e["type"] == "email.bounced"], record
    s, body, _ = worker.request("GET", f"/v1/suppressions?address={gone}", headers=worker.auth)
    assert s == 200 and body["data"] == [], body


def test_a_complaint_quoting_the_return_path_suppresses_every_stream(start_worker, postfix):
    smarthost = postfix()
    reader = "reader@relay.test"
    worker, accepted = sent_through(start_worker, smarthost, reader,
                                    RETURN_PATH_DOMAINS=RETURN_PATHS)
    # The return path the message went out with, as the next hop saw it.
    relay = smarthost.hops["relay"]
    [sent] = wait_for(lambda: relay.messages or None, what="the message at the next hop")
    assert sent.mail_from.startswith("b+"), sent.mail_from
    arf = (REPORT_FIXTURES / "arf-rfc5965.eml").read_bytes()
    arf = arf.replace(b"b+tok@rp.example.com", sent.mail_from.encode())
    arf = arf.replace(b"user@example.net", reader.encode())
    # Email Routing hands over only mail with a Message-ID; the RFC's
    # example report has none of its own.
    arf = b"Message-ID: <arf-report-1@mail.example.net>\r\n" + arf
    s, answer, _ = worker.email(arf, "abuse@mail.example.net", f"fbl@{RETURN_PATH_DOMAIN}")
    assert s == 200 and answer.get("rejectReason") is None, answer
    [report] = reports(worker)
    assert (report["kind"], report["verdict"]) == ("arf", "applied"), report
    assert report["events"] == ["email.complained"]
    record = worker.status(accepted["id"])
    [event] = [e for e in events_of(record, reader) if e["type"] == "email.complained"]
    assert event["data"]["evidence"] == {"source": "arf"}
    s, body, _ = worker.request("GET", f"/v1/suppressions?address={reader}", headers=worker.auth)
    [entry] = body["data"]
    assert (entry["scope"], entry["reason"]) == ("all", "complaint"), entry
    # Transactional and marketing mail alike are held back.
    marketing = {"stream": "marketing", "text": "Half price. Leave: {{unsubscribe_url}}",
                 "html": '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>'}
    for extra in ({}, marketing):
        s, next_one, _ = worker.send(basic_message(to=reader, **extra))
        assert s == 202, next_one
        record = settled(worker, next_one["id"])
        assert recipient(record, reader)["state"] == "suppressed", record


def test_a_return_path_the_smarthost_rewrote_still_matches_by_envelope_id(start_worker,
                                                                          postfix):
    # A smarthost that puts its own bounce address in MAIL FROM: the notice
    # comes back to that address, and only the signed ENVID it quotes names
    # the message.
    bounces = f"bounces@{RETURN_PATH_DOMAIN}"
    smarthost = postfix(rewrite_return_path=bounces)
    gone = "nobody@unknown.test"
    worker, accepted = sent_through(start_worker, smarthost, gone)
    [notice] = notices_to(smarthost, 1)
    assert notice.rcpt_tos == [bounces], notice.rcpt_tos
    deliver(worker, notice)
    [report] = reports(worker)
    assert (report["verdict"], report["events"]) == ("applied", ["email.bounced"]), report
    record = worker.status(accepted["id"])
    assert recipient(record, gone)["state"] == "bounced", record
    s, body, _ = worker.request("GET", f"/v1/suppressions?address={gone}", headers=worker.auth)
    assert [e["reason"] for e in body["data"]] == ["hard_bounce"], body
