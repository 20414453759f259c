"""Webhooks end to end: the built worker delivers a message through a real
SMTP server, and a receiver on loopback gets the message's events, each
verified with the official Standard Webhooks library (`standardwebhooks`).
Also the /v1/webhooks API's validation and tenancy."""
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from edgerelay_harness.keys import api_key_entry, basic_message, new_api_key
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour
from edgerelay_harness.webhook_receiver import WebhookReceiver

OK, GONE = "ok@example.net", "gone@example.net"


@pytest.fixture
def receiver():
    r = WebhookReceiver({"/flaky": [500, 500, 200], "/gone": [410]}).start()
    yield r
    r.stop()


def tenant_keys(api_key):
    """API_KEYS with two keys of tenant acme (the harness's own and a second)
    and one of another tenant; the secrets of the other two."""
    second, other = new_api_key(), new_api_key()
    entries = [
        {**api_key_entry(api_key, "e2e"), "tenant": "acme"},
        {**api_key_entry(second, "acme-2"), "tenant": "acme"},
        {**api_key_entry(other, "globex-1"), "tenant": "globex"},
    ]
    return json.dumps(entries), second, other


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def create(worker, url, events=None, key=None):
    body = {"url": url} if events is None else {"url": url, "events": events}
    return worker.request("POST", "/v1/webhooks", body, bearer(key or worker.api_key))


def verified(delivery, secret):
    """The payload, once the official library has verified the delivery."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


def test_events_are_signed_ordered_retried_and_410_disables(start_worker, upstream, receiver,
                                                             api_key):
    server = upstream(behaviour=Behaviour(
        data_failures=1, rcpt_replies={GONE: "550 5.1.1 No such user"})).start()
    keys, _, other = tenant_keys(api_key)
    worker = start_worker(server.url, API_KEYS=keys, WEBHOOK_ALLOW_LOCAL_URLS="on",
                          WEBHOOK_RETRY_SCHEDULE="1,1,1")
    # Another tenant's endpoint, which must never receive this tenant's events.
    assert create(worker, receiver.url("/globex"), key=other).status == 201

    every = create(worker, receiver.url("/every"))
    assert every.status == 201, every.body
    secret = every.body["secret"]
    assert secret.startswith("whsec_")
    assert every.body["status"] == "enabled" and every.body["events"] == []
    flaky = create(worker, receiver.url("/flaky"), ["email.sent"])
    gone = create(worker, receiver.url("/gone"))
    assert flaky.status == 201 and gone.status == 201, (flaky.body, gone.body)

    status, sent, _ = worker.send(basic_message(to=[OK, GONE]))
    assert status == 202, sent
    message_id = sent["id"]
    final = wait_for(lambda: (s := worker.status(message_id))["status"] == "partially_delivered"
                     and s, timeout=60, what="the message to settle")

    # The stream says what happened: the smarthost took it (sent), nothing
    # claims final delivery (no email.delivered without a DSN).
    stream = [(e["type"], e["recipient"]) for e in final["email_events"]]
    assert (("email.delivery_delayed", OK) in stream and ("email.sent", OK) in stream
            and ("email.bounced", GONE) in stream), stream
    assert all(t != "email.delivered" for t, _ in stream), stream

    # The receiver that takes everything gets every event, each verified by
    # the official library, in the order they happened.
    deliveries = wait_for(lambda: len(receiver.to("/every")) >= 3 and receiver.to("/every"),
                          timeout=30, what="three deliveries to /every")
    payloads = [verified(d, secret) for d in deliveries]
    assert len(deliveries) == 3
    assert [d.headers["webhook-id"] for d in deliveries] == [e["id"] for e in final["email_events"]]
    for d in deliveries:
        for name in ("id", "timestamp", "signature"):
            assert d.headers[f"svix-{name}"] == d.headers[f"webhook-{name}"]
        assert d.headers["content-type"] == "application/json"
    ok_types = [p["type"] for p in payloads if p["data"]["recipient"] == OK]
    assert ok_types == ["email.delivery_delayed", "email.sent"], payloads
    assert [p["created_at"] for p in payloads] == sorted(p["created_at"] for p in payloads)
    [bounce] = [p for p in payloads if p["type"] == "email.bounced"]
    assert bounce["data"]["bounce"]["type"] == "hard"
    assert bounce["data"]["smtp"]["code"] == 550 and bounce["data"]["smtp"]["enhanced"] == "5.1.1"
    assert bounce["data"]["email_id"] == message_id
    assert bounce["data"]["to"] == [OK, GONE]
    [sent_event] = [p for p in payloads if p["type"] == "email.sent"]
    assert sent_event["data"]["smtp"]["code"] == 250

    # A tampered body fails verification, and so does another secret.
    first = deliveries[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(first.body.replace(b"email.", b"email-"), first.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(flaky.body["secret"]).verify(first.body, first.headers)

    # 500 twice, then the third attempt takes it: the same event each time.
    tries = wait_for(lambda: len(receiver.to("/flaky")) >= 3 and receiver.to("/flaky"),
                     timeout=30, what="three attempts at /flaky")
    assert len({d.headers["webhook-id"] for d in tries}) == 1
    assert verified(tries[2], flaky.body["secret"])["type"] == "email.sent"
    attempts = wait_for(
        lambda: (a := worker.request("GET", f"/v1/webhooks/{flaky.body['id']}/attempts",
                                     headers=worker.auth).body["data"]) and len(a) == 3 and a,
        timeout=30, what="three recorded attempts")
    newest_first = [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts]
    assert newest_first == [(3, 200, "delivered"), (2, 500, "retrying"), (1, 500, "retrying")]

    # 410 Gone disables the endpoint: nothing more goes to it.
    disabled = wait_for(
        lambda: (e := worker.request("GET", f"/v1/webhooks/{gone.body['id']}",
                                     headers=worker.auth).body)["status"] == "disabled" and e,
        timeout=30, what="the 410 endpoint to be disabled")
    assert "410" in disabled["disabled_reason"]
    assert "secret" not in disabled
    gone_attempts = worker.request("GET", f"/v1/webhooks/{gone.body['id']}/attempts",
                                   headers=worker.auth).body["data"]
    assert [(a["status_code"], a["outcome"]) for a in gone_attempts] == [(410, "endpoint_disabled")]
    gone_types = [json.loads(d.body)["type"] for d in receiver.to("/gone")]
    assert "email.sent" not in gone_types, gone_types

    # Every event went out long ago; none to the other tenant.
    assert receiver.to("/globex") == []

    # After a rotation both secrets verify the next delivery (a test event).
    rotated = worker.request("POST", f"/v1/webhooks/{every.body['id']}/rotate-secret",
                             headers=worker.auth)
    assert rotated.status == 200, rotated.body
    new_secret = rotated.body["secret"]
    assert new_secret != secret and new_secret.startswith("whsec_")
    assert rotated.body["previous_secret_expires_at"] > time.time() * 1000 + 23 * 3600 * 1000
    test = worker.request("POST", f"/v1/webhooks/{every.body['id']}/test",
                          {"type": "email.bounced"}, worker.auth)
    assert test.status == 202, test.body
    delivery = wait_for(lambda: [d for d in receiver.to("/every")
                                 if d.headers["webhook-id"] == test.body["id"]],
                        timeout=30, what="the test event")[0]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for key in (secret, new_secret):
        payload = verified(delivery, key)
        assert payload["type"] == "email.bounced" and payload["data"]["test"] is True


def test_webhook_api_validation_and_tenancy(start_worker, upstream, api_key):
    server = upstream().start()
    keys, second, other = tenant_keys(api_key)
    worker = start_worker(server.url, API_KEYS=keys)

    refused = {
        "http": ({"url": "http://hooks.example.com/in"}, "url", "https_required"),
        "loopback": ({"url": "https://127.0.0.1/in"}, "url", "private_address"),
        "private": ({"url": "https://10.0.0.7/in"}, "url", "private_address"),
        "localhost": ({"url": "https://localhost/in"}, "url", "private_address"),
        "credentials": ({"url": "https://u:p@hooks.example.com/"}, "url", "credentials_in_url"),
        "no url": ({"events": ["email.sent"]}, "url", "required"),
        "unknown event": ({"url": "https://hooks.example.com/", "events": ["email.read"]},
                          "events", "unknown_event_type"),
        "events not a list": ({"url": "https://hooks.example.com/", "events": "email.sent"},
                              "events", "invalid_type"),
    }
    for name, (body, field, rule) in refused.items():
        r = worker.request("POST", "/v1/webhooks", body, worker.auth)
        assert r.status == 422, (name, r.body)
        assert (r.body["error"]["field"], r.body["error"]["details"][0]["rule"]) == (field, rule), name
    r = worker.request("POST", "/v1/webhooks", raw=b"{not json", headers=worker.auth)
    assert r.status == 400, r.body
    r = worker.request("POST", "/v1/webhooks", {"url": "https://hooks.example.com/",
                                                "secret": "mine"}, worker.auth)
    assert r.status == 400, r.body
    assert worker.request("GET", "/v1/webhooks").status == 401

    created = create(worker, "https://hooks.example.com/edgerelay", ["email.sent", "email.bounced"])
    assert created.status == 201, created.body
    endpoint_id = created.body["id"]
    assert created.body["url"] == "https://hooks.example.com/edgerelay"
    assert created.body["events"] == ["email.sent", "email.bounced"]

    # Every key of the tenant sees it, never its secret.
    for key in (api_key, second):
        listed = worker.request("GET", "/v1/webhooks", headers=bearer(key))
        assert [e["id"] for e in listed.body["data"]] == [endpoint_id]
        assert created.body["secret"] not in json.dumps(listed.body)
        got = worker.request("GET", f"/v1/webhooks/{endpoint_id}", headers=bearer(key))
        assert got.status == 200 and "secret" not in got.body

    # Another tenant sees nothing of it and can change nothing.
    assert worker.request("GET", "/v1/webhooks", headers=bearer(other)).body["data"] == []
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret"),
                         ("POST", "/test"), ("GET", "/attempts")]:
        r = worker.request(method, f"/v1/webhooks/{endpoint_id}{path}", headers=bearer(other))
        assert r.status == 404, (method, path, r.body)
    # Nor the events of the tenant's messages.
    status, sent, _ = worker.send(basic_message())
    assert status == 202, sent
    wait_for(lambda: worker.status(sent["id"])["email_events"], timeout=60,
             what="the message's events")
    assert worker.request("GET", f"/v1/messages/{sent['id']}", headers=bearer(other)).status == 404
    mine = worker.request("GET", f"/v1/messages/{sent['id']}", headers=bearer(second)).body
    assert [e["type"] for e in mine["email_events"]] == ["email.sent"]

    # The endpoint was still there for its own tenant; now it goes.
    assert worker.request("DELETE", f"/v1/webhooks/{endpoint_id}", headers=bearer(second)).status == 200
    assert worker.request("GET", f"/v1/webhooks/{endpoint_id}", headers=worker.auth).status == 404
    assert worker.request("GET", "/v1/webhooks", headers=worker.auth).body["data"] == []


def test_an_immediate_delivery_emits_the_same_events(start_worker, upstream, receiver):
    server = upstream().start()
    worker = start_worker(server.url, WEBHOOK_ALLOW_LOCAL_URLS="on")
    created = create(worker, receiver.url("/every"))
    assert created.status == 201, created.body

    r = worker.request("POST", "/v1/messages?delivery=immediate", basic_message(to=[OK]),
                       worker.auth)
    assert r.status == 200, r.body
    [delivery] = wait_for(lambda: receiver.to("/every"), timeout=30, what="the event")
    payload = verified(delivery, created.body["secret"])
    assert payload["type"] == "email.sent"
    assert payload["data"]["email_id"] == r.body["id"]
    assert payload["data"]["recipient"] == OK
    [event] = worker.status(r.body["id"])["email_events"]
    assert (event["id"], event["type"]) == (delivery.headers["webhook-id"], "email.sent")


def test_a_suppressed_recipient_reaches_webhooks_as_email_suppressed(start_worker, upstream,
                                                                      receiver):
    server = upstream().start()
    worker = start_worker(server.url, WEBHOOK_ALLOW_LOCAL_URLS="on")
    created = create(worker, receiver.url("/every"))
    assert created.status == 201, created.body
    added = worker.request("POST", "/v1/suppressions",
                           {"suppressions": [{"address": GONE}]}, worker.auth)
    assert added.status == 200, added.body

    status, sent, _ = worker.send(basic_message(to=[OK, GONE]))
    assert status == 202, sent
    deliveries = wait_for(lambda: len(receiver.to("/every")) >= 2 and receiver.to("/every"),
                          timeout=30, what="two events")
    payloads = [verified(d, created.body["secret"]) for d in deliveries]
    by_recipient = {p["data"]["recipient"]: p["type"] for p in payloads}
    assert by_recipient == {GONE: "email.suppressed", OK: "email.sent"}, payloads
    assert server.deliveries_to(GONE) == 0
