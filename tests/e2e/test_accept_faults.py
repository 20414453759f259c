"""The accept path never half-accepts: when storing or enqueueing fails, the
caller gets 503 with Retry-After, nothing of the message remains (no row, no
queue job, nothing at the server), and the same request retried with the same
Idempotency-Key succeeds once the fault is gone. The row and the job are
written at once, so a failed store still sends its job; an ambiguous enqueue
(`sent`: the job went through, the send reported a failure) is answered 503
too. Either way the job that reached the queue finds no row: the consumer
waits for the row a bounded time (it could still be on its way), then refuses
the job, so only the retry arrives.

The fault comes from FAULT_ACCEPT (tests only): `step:1` fails that step for
the first request the worker sees, and the real code path then runs for the
retry."""
import pytest

from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import DIAGNOSTICS_BUILD
from edgerelay_harness.poll import wait_for


@pytest.mark.parametrize("step,path", [
    ("store", "/v1/messages"),
    ("enqueue", "/v1/messages"),
    ("enqueue", "/v1/messages?delivery=immediate"),
    ("sent", "/v1/messages"),
])
def test_a_failed_store_or_enqueue_leaves_nothing_and_the_retry_succeeds(
        start_worker, upstream, step, path):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, FAULT_ACCEPT=f"{step}:1")
    headers = {"Authorization": f"Bearer {worker.api_key}", "Idempotency-Key": f"fault-{step}"}
    message = basic_message(subject=f"survives a failed {step}")

    status, body, response_headers = worker.request("POST", path, message, headers)
    assert status == 503, body
    assert body["error"]["rule"] == "temporarily_unavailable"
    assert ("enqueue" if step == "sent" else step) in body["error"]["message"], body
    assert int(response_headers["Retry-After"]) > 0
    s, page, _ = worker.request("GET", "/v1/messages", headers=headers)
    assert s == 200 and page["data"] == [], "no message row remains"

    status, body, _ = worker.request("POST", path, message, headers)
    assert status in (200, 202), body
    message_id = body["id"]
    wait_for(lambda: worker.status(message_id)["status"] == "delivered", what="the retried message")
    if step in ("store", "sent"):
        # Sealed, but its message has no row: after the bounded wait for the
        # row (delivery::recovery::ROW_WAIT_SECONDS, 30 s), refused, nothing sent.
        wait_for(lambda: "no message with its id is stored" in worker.log(), timeout=60,
                 what="the job of the 503 to be refused")
    assert len(server.messages) == 1, "only the retry reached the server"
    s, page, _ = worker.request("GET", "/v1/messages", headers=headers)
    assert [m["id"] for m in page["data"]] == [message_id]
    # The same key now replays the retry's answer instead of sending again.
    again = worker.request("POST", path, message, headers)
    assert again[1]["id"] == message_id
    assert len(server.messages) == 1
