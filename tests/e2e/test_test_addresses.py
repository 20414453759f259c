"""Test addresses end to end: recipients at test.edgerelay.invalid produce
their events and webhooks (verified with the official Standard Webhooks
library) while the real SMTP server behind the worker sees nothing of them;
a message mixing a real recipient and test addresses sends only the real
one."""
import pytest
from standardwebhooks import Webhook

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for
from edgerelay_harness.webhook_receiver import WebhookReceiver

DOMAIN = "test.edgerelay.invalid"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")

# recipient -> (row state, event types in order, message status alone)
EXPECTED = {
    f"delivered@{DOMAIN}": ("delivered", ["email.sent", "email.delivered"], "delivered"),
    f"bounced+signup@{DOMAIN}": ("failed", ["email.bounced"], "failed"),
    f"complained@{DOMAIN}": ("delivered", ["email.sent", "email.delivered", "email.complained"],
                             "delivered"),
    f"suppressed@{DOMAIN}": ("suppressed", ["email.suppressed"], "suppressed"),
}


@pytest.fixture
def receiver():
    r = WebhookReceiver().start()
    yield r
    r.stop()


def settled(worker, message_id):
    return wait_for(lambda: (s := worker.status(message_id))["status"] in FINAL and s,
                    timeout=60, what=f"{message_id} to settle")


def test_each_test_address_produces_its_events_and_webhooks_and_nothing_goes_upstream(
        start_worker, upstream, receiver):
    server = upstream().start()
    worker = start_worker(server.url, WEBHOOK_ALLOW_LOCAL_URLS="on")
    hook = worker.request("POST", "/v1/webhooks", {"url": receiver.url("/all")},
                          {"Authorization": f"Bearer {worker.api_key}"})
    assert hook.status == 201, hook.body
    secret = hook.body["secret"]

    ids = {}
    for address in EXPECTED:
        status, body, _ = worker.send(basic_message(to=address))
        assert status == 202, body
        ids[address] = body["id"]

    for address, (state, types, message_status) in EXPECTED.items():
        record = settled(worker, ids[address])
        assert record["status"] == message_status, (address, record)
        [row] = record["recipients"]
        assert row["state"] == state, row
        stream = [e["type"] for e in record["email_events"] if e["recipient"] == address]
        assert stream == types, (address, record["email_events"])

    # Every event reaches the webhook, signed, with its recipient.
    expected_hooks = sorted((t, a) for a, (_, types, _) in EXPECTED.items() for t in types)
    deliveries = wait_for(lambda: len(receiver.to("/all")) >= len(expected_hooks)
                          and receiver.to("/all"), timeout=60, what="every webhook")
    payloads = [Webhook(secret).verify(d.body, d.headers) for d in deliveries]
    got = sorted((p["type"], p["data"]["recipient"]) for p in payloads)
    assert got == expected_hooks
    bounce = next(p for p in payloads if p["type"] == "email.bounced")
    assert bounce["data"]["bounce"]["type"] == "hard"

    # No upstream was ever contacted for any of them, and a test address
    # never enters the suppression list: bounced@ bounces every time.
    assert server.messages == [] and server.handler.rcpt_commands == []
    status, page, _ = worker.request("GET", "/v1/suppressions",
                                     headers={"Authorization": f"Bearer {worker.api_key}"})
    assert status == 200 and page["data"] == [], page


def test_a_message_to_real_and_test_recipients_sends_only_the_real_one(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    real = "someone@example.net"
    status, body, _ = worker.send(basic_message(to=[real, f"delivered+x@{DOMAIN}",
                                                    f"bounced@{DOMAIN}"]))
    assert status == 202, body
    record = settled(worker, body["id"])
    states = {r["address"]: r["state"] for r in record["recipients"]}
    assert states == {real: "delivered", f"delivered+x@{DOMAIN}": "delivered",
                      f"bounced@{DOMAIN}": "failed"}, record
    assert record["status"] == "partially_delivered", record
    [message] = server.messages
    assert message.rcpt_tos == [real]
    assert server.handler.rcpt_commands == [real]
