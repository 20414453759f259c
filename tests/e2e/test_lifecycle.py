"""Durable delivery end to end: per-recipient retries, crash recovery,
idempotency keys and the message list, counted at a real SMTP server."""
import sqlite3
import threading
import time

from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import DIAGNOSTICS_BUILD
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour


def final_status(worker, message_id, statuses=("delivered", "partially_delivered", "failed")):
    return wait_for(lambda: (s := worker.status(message_id))["status"] in statuses and s,
                    timeout=60, what=f"{message_id} to reach one of {statuses}")


def test_transient_failures_twice_then_delivered_once(start_worker, upstream):
    server = upstream(behaviour=Behaviour(data_failures=2)).start()
    worker = start_worker(server.url)

    status, body, _ = worker.send(basic_message(subject="third time lucky"))
    assert status == 202, body
    final = final_status(worker, body["id"])

    assert final["status"] == "delivered"
    assert len(server.messages) == 1, "delivered exactly once"
    assert server.handler.data_commands == 3
    assert final["attempts"] == 3
    kinds = [e["kind"] for e in final["events"]]
    assert kinds == ["accepted", "deferred", "deferred", "delivered"], kinds
    deferred = [e for e in final["events"] if e["kind"] == "deferred"]
    assert all("451" in e["detail"] and "4.3.0" in e["detail"] for e in deferred), deferred
    times = [e["at"] for e in final["events"]]
    assert times == sorted(times)
    [rcpt] = final["recipients"]
    assert (rcpt["address"], rcpt["state"], rcpt["reply_code"]) == ("rcpt@example.net", "delivered", 250)
    assert rcpt["attempts"] == 3
    assert final["next_attempt_at"] is None


def test_mixed_recipients_retry_only_the_deferred_one(start_worker, upstream):
    ok, busy, gone = "ok@example.net", "busy@example.net", "gone@example.net"
    server = upstream(behaviour=Behaviour(
        rcpt_replies={gone: "550 5.1.1 No such user"},
        rcpt_failures_first={busy: [1, "450 4.2.1 Mailbox busy"]},
    )).start()
    worker = start_worker(server.url)

    status, body, _ = worker.send(basic_message(to=[ok, busy, gone]))
    assert status == 202, body
    final = final_status(worker, body["id"])

    assert final["status"] == "partially_delivered", final
    # Counted at the server: each accepting recipient got it once.
    assert server.deliveries_to(ok) == 1
    assert server.deliveries_to(busy) == 1
    assert server.deliveries_to(gone) == 0
    assert server.handler.rcpt_commands.count(ok) == 1, "the 250 recipient is never re-sent"
    assert server.handler.rcpt_commands.count(busy) == 2
    assert server.handler.rcpt_commands.count(gone) == 1, "the 550 recipient is not retried"
    by_address = {r["address"]: r for r in final["recipients"]}
    assert by_address[ok]["state"] == "delivered" and by_address[ok]["attempts"] == 1
    assert by_address[busy]["state"] == "delivered" and by_address[busy]["attempts"] == 2
    assert by_address[gone]["state"] == "failed"
    assert (by_address[gone]["reply_code"], by_address[gone]["enhanced_code"]) == (550, "5.1.1")
    assert by_address[gone]["reply_text"] == "No such user"
    kinds = [e["kind"] for e in final["events"]]
    assert kinds.count("bounced") == 1 and "deferred" in kinds, kinds
    bounced = next(e for e in final["events"] if e["kind"] == "bounced")
    assert gone in bounced["detail"] and "550" in bounced["detail"]


def test_consumer_crash_mid_batch_sends_every_message_exactly_once(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, FAULT_CONSUMER_CRASH_AFTER="3")

    ids = []
    for i in range(10):
        status, body, _ = worker.send(basic_message(subject=f"crash test {i}"))
        assert status == 202, body
        ids.append(body["id"])
    for message_id in ids:
        assert final_status(worker, message_id)["status"] == "delivered"

    # The fault fired: the consumer threw with messages left unacknowledged.
    assert "FAULT_CONSUMER_CRASH_AFTER: crashing" in worker.log()
    subjects = sorted(m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for m in server.messages)
    assert subjects == sorted(f"crash test {i}".encode() for i in range(10)), subjects
    redelivered = [m for m in ids if any(e["kind"] != "accepted" and "redelivery" in (e["detail"] or "")
                                         for e in worker.status(m)["events"])]
    assert redelivered, "some messages were settled from their records after the crash"


def test_idempotency_key_sequential_and_concurrent(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    auth = {"Authorization": f"Bearer {worker.api_key}"}

    def send(key, message):
        return worker.request("POST", "/v1/messages", message, {**auth, "Idempotency-Key": key})

    first = send("order-1", basic_message(subject="once"))
    again = send("order-1", basic_message(subject="once"))
    assert first[0] == again[0] == 202, (first, again)
    assert first[1]["id"] == again[1]["id"]

    s, body, _ = send("order-1", basic_message(subject="a different body"))
    assert s == 409, body
    assert body["error"]["rule"] == "idempotency_key_reused"
    assert body["error"]["field"] == "Idempotency-Key"

    s, body, _ = send("bad key with spaces", basic_message())
    assert s == 422 and body["error"]["details"][0]["rule"] == "invalid_idempotency_key", body

    results = []

    def racer():
        results.append(send("order-2", basic_message(subject="raced")))

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if r[0] == 202]
    assert accepted, results
    assert len({r[1]["id"] for r in accepted}) == 1, results
    for s, body, headers in results:
        assert s == 202 or (s == 409 and body["error"]["rule"] == "idempotency_key_in_use"
                            and headers["Retry-After"]), (s, body)

    for message_id in {first[1]["id"], accepted[0][1]["id"]}:
        final_status(worker, message_id)
    # Exactly two messages exist and reached the server, once each.
    s, listing, _ = worker.request("GET", "/v1/messages", headers=auth)
    assert s == 200 and len(listing["data"]) == 2, listing
    subjects = sorted(m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for m in server.messages)
    assert subjects == [b"once", b"raced"]


def test_message_list_filters_and_paginates(start_worker, upstream):
    server = upstream(behaviour=Behaviour(rcpt_replies={"gone@example.net": "550 5.1.1 No such user"})).start()
    worker = start_worker(server.url)
    auth = {"Authorization": f"Bearer {worker.api_key}"}

    ids = []
    for i in range(5):
        s, body, _ = worker.send(basic_message(subject=f"list {i}", tags={"batch": "b1" if i < 3 else "b2"}))
        assert s == 202, body
        ids.append(body["id"])
    s, body, _ = worker.send(basic_message(to="gone@example.net"))
    failed_id = body["id"]
    for message_id in ids + [failed_id]:
        final_status(worker, message_id)

    seen, cursor = [], None
    while True:
        path = "/v1/messages?limit=2" + (f"&cursor={cursor}" if cursor else "")
        s, page, _ = worker.request("GET", path, headers=auth)
        assert s == 200, page
        assert len(page["data"]) <= 2
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids + [failed_id]) and len(seen) == len(set(seen))

    s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=auth)
    assert [m["id"] for m in page["data"]] == [failed_id]
    s, page, _ = worker.request("GET", "/v1/messages?tag=batch:b1", headers=auth)
    assert sorted(m["id"] for m in page["data"]) == sorted(ids[:3])
    assert all(m["tags"] == {"batch": "b1"} for m in page["data"])

    s, body, _ = worker.request("GET", "/v1/messages?limit=500", headers=auth)
    assert s == 422 and body["error"]["field"] == "limit", body


def test_dead_letters_on_a_misnamed_queue_are_recorded_once_not_looped(start_worker, upstream):
    # DEAD_LETTER_QUEUE_NAME names no queue: the real dead-letter queue is
    # consumed as if it held jobs. A dead letter found there is recorded
    # once and acknowledged, never sent to the dead-letter queue again
    # (which would bring it straight back, forever).
    # Two addresses: the first hard bounce suppresses its address, so a
    # second message to it would never reach the server.
    gone = {n: f"gone{n}@example.net" for n in (1, 2)}
    server = upstream(behaviour=Behaviour(rcpt_replies={
        address: "550 5.1.1 No such user" for address in gone.values()})).start()
    worker = start_worker(server.url, DEAD_LETTER_QUEUE_NAME="not-the-dead-letter-queue")
    line = "DEAD_LETTER_QUEUE_NAME does not name the queue"

    ids = []
    for n in (1, 2):
        status, body, _ = worker.send(basic_message(to=gone[n], subject=f"refused {n}"))
        assert status == 202, body
        ids.append(body["id"])
        # Each dead letter is noted once, in the order they come.
        wait_for(lambda: worker.log().count(line) == n, what=f"dead letter {n} noted")
        record = wait_for(lambda: (s := worker.status(ids[-1]))
                          and any(e["kind"] == "dead_lettered" for e in s["events"]) and s,
                          what=f"dead letter {n} recorded")
        assert record["status"] == "failed", record
    # The second went all the way round while the first stayed settled.
    assert worker.log().count(line) == 2
    for message_id in ids:
        kinds = [e["kind"] for e in worker.status(message_id)["events"]]
        assert kinds.count("dead_lettered") == 1, kinds


def test_idempotency_key_of_a_request_that_died_is_taken_over(start_worker, upstream):
    # A claim with no answer, as a request leaves it when its isolate dies
    # mid-way: written straight into the local D1, two hours old.
    # The takeover bound follows from the longest request the settings allow
    # (an immediate delivery to the most recipients, every step timing out):
    # with 2 s steps that is under an hour, so the floor of one hour holds.
    server = upstream().start()
    worker = start_worker(server.url, SMTP_TIMEOUT_SECONDS="2")
    auth = {"Authorization": f"Bearer {worker.api_key}"}
    databases = [p for p in (worker.state_dir / "v3" / "d1").rglob("*.sqlite")
                 if p.name != "metadata.sqlite"]
    assert len(databases) == 1, databases
    now_ms = int(time.time() * 1000)

    def claim(key, age_ms):
        with sqlite3.connect(databases[0], timeout=10) as db:
            db.execute("INSERT INTO idempotency_keys (key_id, idempotency_key, fingerprint, "
                       "created_at) VALUES ('e2e', ?, 'from-the-dead-request', ?)",
                       (key, now_ms - age_ms))

    claim("died-long-ago", 2 * 60 * 60 * 1000)
    claim("still-running", 60 * 1000)

    s, body, _ = worker.request("POST", "/v1/messages", basic_message(subject="taken over"),
                                {**auth, "Idempotency-Key": "died-long-ago"})
    assert s == 202, body
    final_status(worker, body["id"])
    assert len(server.messages) == 1
    # A claim younger than any request can live is still in use.
    s, body, _ = worker.request("POST", "/v1/messages", basic_message(subject="too early"),
                                {**auth, "Idempotency-Key": "still-running"})
    assert s == 409 and body["error"]["rule"] == "idempotency_key_reused", body
