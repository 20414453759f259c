"""Another Worker (examples/producer-worker) produces into edgerelay's queue,
both running in one local runtime that shares the queues."""
import json

import dkim

from edgerelay_harness.keys import (api_key_entry, basic_message, dkim_dns, new_api_key,
                                    new_producer_token, producer_entry)
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.wrangler import companion_config

PRODUCER = ROOT / "examples" / "producer-worker"


def producer_config(directory, token):
    """The example producer, holding its secret token."""
    return companion_config(directory, PRODUCER / "wrangler.toml", PRODUCER / "src" / "index.js",
                            {"PRODUCER_TOKEN": token}, name="producer.json")


def test_producer_worker_messages_are_delivered_and_bad_ones_dead_lettered(
        start_worker, upstream, api_key, dkim_ed25519, tmp_path):
    server = upstream().start()
    other_key = new_api_key()
    keys = [api_key_entry(api_key, "e2e"), api_key_entry(other_key, "other")]
    token = new_producer_token()
    worker = start_worker(
        server.url,
        primary_configs=[producer_config(tmp_path, token)],
        API_KEYS=json.dumps(keys),
        QUEUE_PRODUCERS=json.dumps([producer_entry("billing", "e2e", token)]),
    )
    auth = {"Authorization": f"Bearer {api_key}"}

    s, body, _ = worker.request("POST", "/enqueue", basic_message(subject="from the producer",
                                                                  tags={"source": "billing"}))
    assert s == 202, body
    received = wait_for(lambda: server.messages, what="the producer's message at the server")
    assert len(received) == 1
    assert b"Subject: from the producer" in received[0].data
    assert dkim.verify(received[0].data, dnsfunc=dkim_dns(dkim_ed25519))

    # The owner key sees it, with the producer named; the other key does not.
    def delivered():
        s, page, _ = worker.request("GET", "/v1/messages?status=delivered", headers=auth)
        return s == 200 and page["data"]
    [listed] = wait_for(delivered, what="the producer's message in the owner's list")
    assert listed["producer"] == "billing" and listed["tags"] == {"source": "billing"}
    s, body, _ = worker.request("GET", f"/v1/messages/{listed['id']}",
                                headers={"Authorization": f"Bearer {other_key}"})
    assert s == 404, body
    s, page, _ = worker.request("GET", "/v1/messages", headers={"Authorization": f"Bearer {other_key}"})
    assert s == 200 and page["data"] == [], page

    # Malformed: no subject, and a From domain the producer may not use.
    s, body, _ = worker.request("POST", "/enqueue", {"from": "x@example.org", "to": "rcpt@example.net",
                                                     "text": "no subject"})
    assert s == 202, body

    def failed():
        s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=auth)
        return s == 200 and page["data"]
    [rejected] = wait_for(failed, what="the malformed message recorded as failed")
    assert rejected["producer"] == "billing"
    assert "subject" in rejected["last_error"] and "billing" in rejected["last_error"], rejected
    detail = wait_for(lambda: (d := worker.status(rejected["id"]))
                      and "dead_lettered" in [e["kind"] for e in d["events"]] and d,
                      what="the dead-letter record")
    assert [e["kind"] for e in detail["events"]] == ["rejected", "dead_lettered"]
    assert len(server.messages) == 1, "nothing from the malformed message was sent"


def test_a_producer_cannot_send_as_a_domain_it_was_not_given(start_worker, upstream, api_key, tmp_path):
    server = upstream().start()
    token = new_producer_token()
    worker = start_worker(
        server.url,
        primary_configs=[producer_config(tmp_path, token)],
        QUEUE_PRODUCERS=json.dumps([producer_entry("billing", "e2e", token)]),
    )
    auth = {"Authorization": f"Bearer {api_key}"}
    # A valid message in every respect but its From domain.
    s, body, _ = worker.request("POST", "/enqueue", basic_message(**{"from": "Billing <billing@example.org>"}))
    assert s == 202, body

    def failed():
        s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=auth)
        return s == 200 and page["data"]
    [rejected] = wait_for(failed, what="the message recorded as failed")
    assert rejected["producer"] == "billing"
    assert "example.org" in rejected["last_error"], rejected
    assert "domain_not_allowed" in rejected["last_error"], rejected
    detail = wait_for(lambda: (d := worker.status(rejected["id"]))
                      and "dead_lettered" in [e["kind"] for e in d["events"]] and d,
                      what="the dead-letter record")
    assert [e["kind"] for e in detail["events"]] == ["rejected", "dead_lettered"]
    assert "example.org" in detail["events"][-1]["detail"]
    assert server.messages == [] and server.handler.rcpt_commands == []
