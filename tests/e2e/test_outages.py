"""Storage outages, large batches and callers that hang up, end to end:
every accepted message is delivered exactly once and none is failed.

- A D1 outage (FAULT_D1_OUTAGE, diagnostics build only: every D1 call of the
  queue consumer fails for 30 s from its first batch) delays the messages in
  flight; the consumer sends each again with a delay instead of spending the
  platform's three retries, so none is dead-lettered.
- A hundred messages of 1 MiB in one batch are delivered in groups of bounded
  size, byte for byte; so is one message of 45 MiB.
- An immediate delivery whose caller hangs up after sending finishes under
  waitUntil: the upstream gets the message once and the record says so.
  (The local runtime behind `wrangler dev` runs a request to its end even
  after its caller hangs up, so here the test shows the outcome; in
  production it is `waitUntil` that keeps the attempt from being cut short.)"""
import email
import email.policy
import hashlib
import json
import random
import socket
import string
import tomllib

from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

FINAL = ("delivered", "partially_delivered", "failed", "unknown")


ALPHABET = (string.ascii_letters + string.digits + " .,").encode()
# Random bytes to printable ones, each line starting with a dot now and then.
PRINTABLE = bytes(ALPHABET[b % len(ALPHABET)] for b in range(256))


def text_of(size: int, seed: int) -> str:
    """`size` bytes of printable 75-character lines, different for each seed."""
    raw = random.Random(seed).randbytes(size).translate(PRINTABLE)
    lines = [raw[i:i + 75] for i in range(0, size, 76)]
    return b"\n".join(lines).decode()[:size]


def received_text(data: bytes) -> str:
    """The text part of a message as the upstream received it, decoded."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    return part.get_content().replace("\r\n", "\n")


def statuses(worker, ids):
    return {i: worker.status(i)["status"] for i in ids}


def test_a_thirty_second_d1_outage_delays_messages_but_fails_none(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, FAULT_D1_OUTAGE="30",
                          RETRY_BASE_DELAY_SECONDS="1")
    ids = []
    for i in range(12):
        # Some bodies go to the bucket (over the queue's limit), some inline.
        text = text_of(200_000, i) if i % 4 == 0 else f"outage test {i}"
        status, body, _ = worker.send(basic_message(subject=f"outage {i}", text=text))
        assert status == 202, body
        ids.append(body["id"])

    # The consumer meets the outage and sends the messages again, with a delay.
    wait_for(lambda: "FAULT_D1_OUTAGE" in worker.log(), what="the outage to begin")
    wait_for(lambda: '"event":"message_retried_later"' in worker.log(), what="a message sent again")
    # Nothing is delivered while the records cannot be read.
    assert server.messages == []

    wait_for(lambda: all(s in FINAL for s in statuses(worker, ids).values()),
             timeout=120, what="every message to reach an end state")
    final = statuses(worker, ids)
    assert set(final.values()) == {"delivered"}, final
    subjects = sorted(email.message_from_bytes(m.data)["Subject"] for m in server.messages)
    assert subjects == sorted(f"outage {i}" for i in range(12)), "each message exactly once"
    for i in ids:
        record = worker.status(i)
        kinds = [e["kind"] for e in record["events"]]
        assert "failed" not in kinds and "dead_lettered" not in kinds, kinds
        assert record["attempts"] == 1, record


def one_batch_of_a_hundred() -> dict:
    """The queues as deployed, with the jobs consumer waiting for a full batch."""
    with open(ROOT / "wrangler.toml", "rb") as f:
        queues = tomllib.load(f)["queues"]
    for consumer in queues["consumers"]:
        if consumer["queue"] == "edgerelay-jobs":
            consumer["max_batch_size"] = 100
            consumer["max_batch_timeout"] = 60
    return {"queues": json.loads(json.dumps(queues))}


def test_a_hundred_messages_of_one_mib_in_one_batch(start_worker, upstream):
    server = upstream(behaviour=Behaviour(pipelining=True)).start()
    worker = start_worker(server.url, config_overrides=one_batch_of_a_hundred())
    texts = [text_of(1024 * 1024, 1000 + i) for i in range(100)]
    sent = {}
    for i, text in enumerate(texts):
        status, body, _ = worker.send(basic_message(subject=f"big {i}", text=text))
        assert status == 202, body
        sent[body["id"]] = (f"big {i}", hashlib.sha256(text.encode()).hexdigest())
    # All hundred are on the queue before the consumer's batch starts.
    assert server.messages == [], "the batch waits for all hundred"

    wait_for(lambda: len(server.messages) >= 100, timeout=300, what="a hundred messages")
    wait_for(lambda: all(s == "delivered" for s in statuses(worker, sent).values()),
             timeout=60, what="every status to say delivered")
    by_subject = {}
    for m in server.messages:
        subject = email.message_from_bytes(m.data)["Subject"]
        by_subject.setdefault(subject, []).append(m)
    assert len(server.messages) == 100
    for message_id, (subject, digest) in sent.items():
        [m] = by_subject[subject]
        assert hashlib.sha256(received_text(m.data).encode()).hexdigest() == digest, subject
        record = worker.status(message_id)
        assert record["attempts"] == 1, record
    # No isolate crashed: nothing was retried by the platform or dead-lettered.
    assert "exceeded memory" not in worker.log().lower()
    assert "dead_lettered" not in json.dumps([worker.status(i) for i in sent])


def test_one_message_of_forty_five_mib_is_delivered_byte_for_byte(start_worker, upstream):
    # MAX_MESSAGE_BYTES allows up to 50 MiB: such a body is read from the
    # bucket into one buffer and written to the socket 64 KiB at a time.
    server = upstream(data_size_limit=64 * 1024 * 1024).start()
    worker = start_worker(server.url, MAX_MESSAGE_BYTES="52428800")
    text = text_of(45 * 1024 * 1024, 7)
    status, body, _ = worker.request("POST", "/v1/messages",
                                     basic_message(subject="very big", text=text),
                                     worker.auth, timeout=300)
    assert status == 202, body
    record = wait_for(lambda: (r := worker.status(body["id"]))["status"] in FINAL and r,
                      timeout=300, what="the big message to reach an end state")
    assert record["status"] == "delivered", record
    [m] = server.messages
    assert received_text(m.data) == text
    assert len(m.data) > 45 * 1024 * 1024


def test_an_immediate_delivery_whose_caller_hangs_up_is_sent_once(start_worker, upstream):
    # The upstream holds its answer to the final dot for 3 s; the caller
    # hangs up in that window, while the session waits for it.
    server = upstream(behaviour=Behaviour(data_delay=3.0)).start()
    worker = start_worker(server.url, RETRY_BASE_DELAY_SECONDS="1", SMTP_TIMEOUT_SECONDS="5")
    body = json.dumps(basic_message(subject="caller hangs up")).encode()
    host, port = worker.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/messages?delivery=immediate HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {worker.api_key}\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    client = socket.create_connection((host, int(port)))
    client.sendall(request)
    # The final dot is a write of its own: look at everything read so far.
    wait_for(lambda: b"".join(data for _, data in server.reads).endswith(b"\r\n.\r\n"),
             what="the final dot at the upstream")
    client.close()

    def listed():
        s, page, _ = worker.request("GET", "/v1/messages", headers=worker.auth)
        return s == 200 and page["data"] and page["data"][0]["id"]

    message_id = wait_for(listed, what="the message in the list")
    record = wait_for(lambda: (r := worker.status(message_id))
                      and "safety_check" in [e["kind"] for e in r["events"]] and r,
                      timeout=60, what="the safety job to find nothing to do")
    assert record["status"] == "delivered", record
    assert [e["kind"] for e in record["events"]] == ["accepted", "delivered", "safety_check"]
    assert len(server.messages) == 1, "sent once: the attempt finished after the hang-up"
