"""POST /v1/messages?delivery=immediate: the request tries the upstream itself
and answers with the SMTP result; its safety job (already on the queue) either
finds nothing to do or carries the deferred recipients on. Never lost, never
sent twice."""
import base64
import email
import email.policy
import os

import dkim

from edgerelay_harness.keys import basic_message, dkim_dns
from edgerelay_harness.net import free_port
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

IMMEDIATE = "/v1/messages?delivery=immediate"


def send_immediate(worker, message, headers=None):
    hdrs = {"Authorization": f"Bearer {worker.api_key}"}
    hdrs.update(headers or {})
    status, body, response_headers = worker.request("POST", IMMEDIATE, message, hdrs)
    if status in (200, 202):
        # Every answer fits the published description.
        schema("ImmediateResult").validate(body)
    return status, body, response_headers


def event_kinds(worker, message_id):
    return [e["kind"] for e in worker.status(message_id)["events"]]


def wait_for_safety_check(worker, message_id):
    """The safety job leaves a `safety_check` event once it has found nothing to do."""
    return wait_for(lambda: (s := worker.status(message_id))
                    and "safety_check" in [e["kind"] for e in s["events"]] and s,
                    what="the safety job to be processed")


def test_immediate_success_answers_200_with_replies_and_the_safety_job_sends_nothing(
        start_worker, upstream, dkim_ed25519):
    server = upstream().start()
    worker = start_worker(server.url)
    rcpts = ["a@example.net", "b@example.net"]

    status, body, _ = send_immediate(worker, basic_message(to=rcpts))
    assert status == 200, body
    assert body["status"] == "delivered"
    # The answer comes after the upstream's 250: the message is there already.
    assert len(server.messages) == 1
    assert dkim.verify(server.messages[0].data, dnsfunc=dkim_dns(dkim_ed25519))
    assert sorted(r["address"] for r in body["recipients"]) == rcpts
    for r in body["recipients"]:
        assert r["state"] == "delivered", r
        assert r["reply_code"] == 250 and r["enhanced_code"] == "2.0.0", r
        assert r["reply_text"] == "Queued", r

    # The record is the one a queued delivery leaves, plus the safety job's check.
    record = wait_for_safety_check(worker, body["id"])
    assert record["status"] == "delivered" and record["attempts"] == 1
    assert [e["kind"] for e in record["events"]] == ["accepted", "delivered", "safety_check"]
    assert "delivered" in [e["detail"] for e in record["events"]][-1]
    assert [r["state"] for r in record["recipients"]] == ["delivered", "delivered"]
    assert len(server.messages) == 1, "the safety job sent nothing more"
    assert len(server.connections) == 1


def test_a_safety_job_arriving_during_a_slow_immediate_delivery_waits_and_sends_nothing(
        start_worker, upstream):
    # The upstream takes 3 s to answer the final dot; the safety job is due
    # after 1 s, while the request's session is still waiting for that answer.
    server = upstream(behaviour=Behaviour(data_delay=3.0)).start()
    worker = start_worker(server.url)

    status, body, _ = send_immediate(worker, basic_message(subject="slow upstream"))
    assert status == 200 and body["status"] == "delivered", body
    record = wait_for_safety_check(worker, body["id"])
    assert [e["kind"] for e in record["events"]] == ["accepted", "delivered", "safety_check"]
    assert record["attempts"] == 1
    assert len(server.messages) == 1, "the safety job waited for the request's lease"
    assert server.handler.data_commands == 1


def test_immediate_with_the_upstream_down_falls_back_to_the_queue_and_delivers_once(
        start_worker, upstream):
    server = upstream(port=free_port())  # not started: connections are refused
    worker = start_worker(server.url)

    status, body, _ = send_immediate(worker, basic_message(subject="later, please"))
    assert status == 202, body
    assert body["status"] == "deferred" and body["next_attempt_at"], body
    [r] = body["recipients"]
    assert r["state"] == "deferred" and r["reply_code"] is None
    assert "connect" in r["reply_text"].lower(), r

    record = worker.status(body["id"])
    assert record["status"] == "deferred" and record["attempts"] == 1
    server.start()
    wait_for(lambda: worker.status(body["id"])["status"] == "delivered",
             what="delivery once the upstream is up")
    assert len(server.messages) == 1, "delivered exactly once"
    kinds = event_kinds(worker, body["id"])
    assert kinds[0] == "accepted" and kinds[1] == "deferred" and kinds[-1] == "delivered", kinds
    assert kinds.count("delivered") == 1


def test_immediate_550_answers_failed_records_it_and_never_retries(start_worker, upstream):
    server = upstream(behaviour=Behaviour(
        rcpt_replies={"nobody@example.net": "550 5.1.1 No such user"})).start()
    worker = start_worker(server.url)

    status, body, _ = send_immediate(worker, basic_message(to="nobody@example.net"))
    assert status == 200, body
    assert body["status"] == "failed"
    [r] = body["recipients"]
    assert (r["state"], r["reply_code"], r["enhanced_code"], r["reply_text"]) == \
        ("failed", 550, "5.1.1", "No such user")

    # Recorded like the consumer records it: failed, bounced, dead-lettered.
    wait_for(lambda: "dead_lettered" in event_kinds(worker, body["id"]), what="the dead-letter record")
    record = wait_for_safety_check(worker, body["id"])
    assert record["status"] == "failed" and "550" in record["last_error"]
    kinds = [e["kind"] for e in record["events"]]
    assert "deferred" not in kinds and "bounced" in kinds and "failed" in kinds
    assert record["attempts"] == 1
    assert server.handler.rcpt_commands == ["nobody@example.net"], "asked the upstream once"
    assert server.messages == []


def test_immediate_mixed_250_450_defers_one_recipient_and_delivers_it_later_once(
        start_worker, upstream):
    server = upstream(behaviour=Behaviour(
        rcpt_failures_first={"later@example.net": [1, "450 4.2.1 Mailbox busy"]})).start()
    worker = start_worker(server.url)

    status, body, _ = send_immediate(worker, basic_message(to=["now@example.net", "later@example.net"]))
    assert status == 202, body
    assert body["status"] == "deferred"
    states = {r["address"]: (r["state"], r["reply_code"], r["enhanced_code"]) for r in body["recipients"]}
    assert states == {"now@example.net": ("delivered", 250, "2.0.0"),
                      "later@example.net": ("deferred", 450, "4.2.1")}
    assert server.deliveries_to("now@example.net") == 1

    wait_for(lambda: worker.status(body["id"])["status"] == "delivered",
             what="the deferred recipient to be delivered")
    assert server.deliveries_to("now@example.net") == 1, "never sent twice"
    assert server.deliveries_to("later@example.net") == 1
    assert server.handler.rcpt_commands.count("now@example.net") == 1
    assert server.handler.rcpt_commands.count("later@example.net") == 2
    record = worker.status(body["id"])
    assert record["attempts"] == 2
    assert {r["address"]: r["state"] for r in record["recipients"]} == \
        {"now@example.net": "delivered", "later@example.net": "delivered"}


def test_immediate_with_an_idempotency_key_and_a_body_kept_in_r2(start_worker, upstream, dkim_ed25519):
    server = upstream().start()
    worker = start_worker(server.url)
    blob = os.urandom(200 * 1024)  # composed ~270 KB: over the queue limit, so it goes to R2
    message = basic_message(attachments=[{"filename": "data.bin",
                                          "content": base64.b64encode(blob).decode()}])
    key = {"Idempotency-Key": "immediate-order-1"}

    first = send_immediate(worker, message, key)
    assert first[0] == 200 and first[1]["status"] == "delivered", first[1]
    again = send_immediate(worker, message, key)
    assert (again[0], again[1]) == (first[0], first[1]), "the first answer, replayed"
    # The same key for the same body in the other mode is another request.
    s, body, _ = worker.request("POST", "/v1/messages", message,
                                {"Authorization": f"Bearer {worker.api_key}", **key})
    assert s == 409 and body["error"]["rule"] == "idempotency_key_reused", body

    [received] = server.messages
    assert dkim.verify(received.data, dnsfunc=dkim_dns(dkim_ed25519))
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert next(p for p in parsed.walk() if p.get_filename() == "data.bin").get_content() == blob
    wait_for_safety_check(worker, first[1]["id"])
    assert len(server.messages) == 1
    # Delivered is an end state: the stored body is deleted.
    wait_for(lambda: worker.stored_bodies() == [], what="the stored body to be deleted")


def test_an_unknown_delivery_mode_is_refused_naming_the_parameter(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    s, body, _ = worker.request("POST", "/v1/messages?delivery=now", basic_message(),
                                {"Authorization": f"Bearer {worker.api_key}"})
    assert s == 422, body
    assert body["error"]["field"] == "delivery"
    assert body["error"]["details"][0]["rule"] == "invalid_delivery_mode"
    s, page, _ = worker.request("GET", "/v1/messages", headers={"Authorization": f"Bearer {worker.api_key}"})
    assert page["data"] == []
