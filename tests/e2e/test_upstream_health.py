"""Several upstreams by priority: failover when the first is down or
failing, a cool-down during which a failing upstream is not even
connected to, an immediate pause on rejected credentials (not charged to
the message), "unknown" when the final dot goes unanswered, and a write
deadline when an upstream stops reading. The operator's view of it all:
`GET /v1/upstreams` shows a paused upstream with its reason and every
upstream's latest sessions with their latency, and `POST
/v1/upstreams/{name}/resume` puts a fixed upstream back in use."""
import base64
import json
import os
import time
import urllib.parse

import pytest

from edgerelay_harness.keys import api_key_entry, basic_message, new_api_key
from edgerelay_harness.openapi import schema
from edgerelay_harness.net import free_port
from edgerelay_harness.poll import wait_for
from edgerelay_harness.stalling import StallingUpstream
from edgerelay_harness.upstream import Behaviour


def send_and_wait(worker, subject, status="delivered"):
    code, body, _ = worker.send(basic_message(subject=subject))
    assert code == 202, body
    return wait_for(lambda: (s := worker.status(body["id"]))["status"] == status and s,
                    what=f"{subject}: {status}")


def test_first_upstream_down_fails_over_to_the_second(start_worker, upstream):
    second = upstream().start()
    worker = start_worker(f"smtp+insecure://127.0.0.1:{free_port()},{second.url}")

    record = send_and_wait(worker, "via the second")
    assert record["attempts"] == 1
    assert len(second.messages) == 1


def test_failing_upstream_cools_down_and_is_not_tried(start_worker, upstream):
    failing = upstream(behaviour=Behaviour(ehlo_reply="421 4.3.2 Shutting down")).start()
    healthy = upstream().start()
    worker = start_worker(f"{failing.url},{healthy.url}",
                          UPSTREAM_FAILURE_THRESHOLD="2", UPSTREAM_COOLDOWN_SECONDS="600")

    # Each message is its own batch: one session per upstream per batch.
    for n in range(4):
        send_and_wait(worker, f"message {n}")
        # Two failures start the cool-down; after that the failing upstream
        # sees no connection at all.
        assert len(failing.connections) == min(n + 1, 2), (n, failing.connections)
    assert len(healthy.messages) == 4
    assert failing.messages == []


def test_rejected_credentials_pause_the_upstream_at_once(start_worker, upstream):
    wrong = upstream().start()
    healthy = upstream().start()
    wrong_url = f"smtp://{wrong.USER}:not-the-password@127.0.0.1:{wrong.port}"
    worker = start_worker(f"{wrong_url},{healthy.url}", UPSTREAM_FAILURE_THRESHOLD="5")

    for n in range(3):
        send_and_wait(worker, f"message {n}")
    assert len(wrong.connections) == 1, "paused after the first 535"
    assert wrong.auth_attempts == 1
    assert len(healthy.messages) == 3


def test_rejected_credentials_do_not_use_up_attempts(start_worker, upstream):
    wrong = upstream().start()
    worker = start_worker(f"smtp://{wrong.USER}:not-the-password@127.0.0.1:{wrong.port}")

    record = send_and_wait(worker, "bad credentials", status="deferred")
    assert "535" in record["last_error"], record
    assert record["attempts"] == 0, "a configuration failure is not the message's attempt"


# smtp-sink takes the data, then waits 60 s before answering the dot; the
# relay waits twice SMTP_TIMEOUT_SECONDS for that reply. In lock-step (-p)
# the wait times out; pipelined, the QUIT behind the dot is answered (221)
# and the connection closed before the dot is: never a delivery either.
@pytest.mark.parametrize("options, error", [
    (("-p", "-W", ".:60"), "timed out"),
    (("-W", ".:60"), "221"),
], ids=["lock-step", "quit-pipelined-behind-the-dot"])
def test_unanswered_final_dot_is_unknown_and_not_retried(start_worker, smtp_sink, options, error):
    sink = smtp_sink(*options)
    worker = start_worker(sink.url, SMTP_TIMEOUT_SECONDS="1")
    record = send_and_wait(worker, "no reply to the dot", status="unknown")
    assert record["attempts"] == 1
    kinds = [e["kind"] for e in record["events"]]
    assert "deferred" not in kinds and kinds[-1] == "unknown", kinds
    assert error in record["last_error"], record


def test_upstream_that_stops_reading_times_out_and_the_next_takes_the_message(
        start_worker, upstream):
    # The first upstream takes DATA and then reads nothing: a message of
    # several megabytes fills the socket buffers and the relay's write
    # blocks. Every write has a deadline (SMTP_TIMEOUT_SECONDS), so the
    # session ends, retryably (the final dot never went out), and the
    # second upstream takes the message in the same attempt.
    stall = StallingUpstream().start()
    healthy = upstream().start()
    try:
        worker = start_worker(f"{stall.url},{healthy.url}", SMTP_TIMEOUT_SECONDS="2",
                              MAX_MESSAGE_BYTES=str(20 * 1024 * 1024))
        blob = base64.b64encode(os.urandom(6 * 1024 * 1024)).decode()
        started = time.monotonic()
        code, body, _ = worker.send(basic_message(
            subject="big", attachments=[{"filename": "big.bin", "content": blob}]))
        assert code == 202, body
        record = wait_for(lambda: (s := worker.status(body["id"]))["status"] == "delivered" and s,
                          timeout=90, what="delivered by the second upstream")
        elapsed = time.monotonic() - started
        assert stall.stalled == 1, "the first upstream got as far as DATA"
        assert len(healthy.messages) == 1
        assert record["attempts"] == 1, record
        assert elapsed < 60, f"took {elapsed:.0f} s"
    finally:
        stall.stop()


def upstreams_view(worker, key=None):
    s, body, headers = worker.request(
        "GET", "/v1/upstreams", headers={"Authorization": f"Bearer {key or worker.api_key}"})
    assert s == 200, body
    assert headers["Cache-Control"] == "no-store"
    schema("UpstreamList").validate(body)
    return body["data"]


def resume(worker, name, key=None):
    return worker.request("POST", f"/v1/upstreams/{urllib.parse.quote(name, safe='')}/resume",
                          headers={"Authorization": f"Bearer {key or worker.api_key}"})


def test_the_view_shows_a_paused_upstream_and_resume_puts_it_back(
        start_worker, upstream, api_key):
    wrong = upstream().start()
    healthy = upstream().start()
    wrong_url = f"smtp://{wrong.USER}:not-the-password@127.0.0.1:{wrong.port}"
    sender_only = new_api_key()
    keys = [api_key_entry(api_key, "e2e"),
            {**api_key_entry(sender_only, "sender"), "scopes": ["send"]}]
    worker = start_worker(f"{wrong_url},{healthy.url}", API_KEYS=json.dumps(keys),
                          UPSTREAM_FAILURE_THRESHOLD="5", UPSTREAM_COOLDOWN_SECONDS="600")
    wrong_name, healthy_name = f"127.0.0.1:{wrong.port}", f"127.0.0.1:{healthy.port}"

    send_and_wait(worker, "while the password is wrong")
    first, second = upstreams_view(worker)
    assert (first["name"], first["priority"], first["transport"], first["auth"]) == (
        wrong_name, 0, "starttls", True)
    assert "not-the-password" not in json.dumps(first) and wrong.USER not in json.dumps(first)
    health = first["health"]
    assert health["state"] == "paused", health
    assert "535" in health["reason"], health
    assert health["since"] and health["until"], health
    [session] = first["recent_sessions"]
    assert (session["outcome"], session["code"], session["messages_sent"]) == (
        "configuration", 535, 0), session
    assert first["totals"]["sessions"] == 1 and first["totals"]["failed"] == 1

    assert second["name"] == healthy_name and second["health"]["state"] == "healthy"
    [session] = second["recent_sessions"]
    assert (session["outcome"], session["code"], session["messages_sent"]) == ("ok", 250, 1)
    # Latency: a STARTTLS session with AUTH takes some milliseconds.
    assert session["duration_ms"] > 0, session
    assert second["totals"]["mean_duration_ms"] == session["duration_ms"]

    # The server is fixed (it now takes the password the relay has), but
    # the pause holds until an operator lifts it.
    wrong.PASSWORD = "not-the-password"
    send_and_wait(worker, "paused still")
    assert len(wrong.connections) == 1 and len(healthy.messages) == 2

    # Only an admin key sees or resumes the upstreams; an unknown name is a 404.
    s, body, _ = worker.request("GET", "/v1/upstreams",
                                headers={"Authorization": f"Bearer {sender_only}"})
    assert (s, body["error"]["rule"]) == (403, "insufficient_scope"), body
    s, body, _ = resume(worker, wrong_name, key=sender_only)
    assert (s, body["error"]["rule"]) == (403, "insufficient_scope"), body
    s, body, _ = resume(worker, "127.0.0.1:1")
    assert s == 404, body
    schema("Error").validate(body)

    s, body, _ = resume(worker, wrong_name)
    assert s == 200, body
    schema("Upstream").validate(body)
    assert body["name"] == wrong_name and body["health"]["state"] == "healthy", body
    assert body["recent_sessions"][0]["outcome"] == "configuration"

    send_and_wait(worker, "after the fix")
    assert len(wrong.messages) == 1, "the resumed upstream, first by priority, took it"
    assert len(healthy.messages) == 2
    first, second = upstreams_view(worker)
    assert first["health"] == {"state": "healthy", "consecutive_failures": 0}, first
    assert [r["outcome"] for r in first["recent_sessions"]] == ["ok", "configuration"]
    assert first["totals"]["messages_sent"] == 1 and first["totals"]["sessions"] == 2
    assert len(second["recent_sessions"]) == 2
