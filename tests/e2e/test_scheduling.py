"""Scheduled sending, end to end: a message scheduled a few seconds ahead
reaches a real SMTP server at its due time (never before, DKIM-verified);
a scheduled message can be canceled or moved until it is claimed; the
schedule survives a restart of the worker on the same persisted state (the
local queue does not, so the sweep brings the job back, and never early);
cancels racing the due time leave each message exactly one of sent or
canceled, and the server holds exactly the sent ones, once each. The
Resend and SendGrid doors are driven by their official Node SDKs."""
import datetime
import threading
import time

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message, verified_by_all
from edgerelay_harness.poll import wait_for
from edgerelay_harness.sdk import node_sdk

FINAL = {"delivered", "canceled", "failed"}
# The sweep looks at a scheduled message once it is overdue by this much.
FAST_SWEEP = dict(SWEEP_GRACE_SECONDS="1")


def iso(at: float) -> str:
    """`at` (Unix seconds) as RFC 3339 with an offset of +02:00."""
    zone = datetime.timezone(datetime.timedelta(hours=2))
    return datetime.datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def arrived(server, subject: str, timeout: float = 60):
    return wait_for(lambda: next((m for m in server.messages
                                  if f"Subject: {subject}".encode() in m.data), None),
                    timeout=timeout, what=f"the message {subject!r} at the upstream")


def count(server, subject: str) -> int:
    return sum(f"Subject: {subject}\r\n".encode() in m.data for m in server.messages)


def verify(message, *keys):
    verified_by_all(message.data, *keys)


def node(sdk: str, op: str, worker, **args) -> dict:
    """One call of a Node SDK against the worker, with its API key."""
    return node_sdk(sdk, op, worker.url, worker.api_key, **args)


def until(at: float):
    """Polls the clock until `at` (Unix seconds)."""
    wait_for(lambda: time.time() >= at, timeout=max(at - time.time(), 0) + 5,
             interval=0.01, what=f"the clock to reach {at}")


def test_schedule_cancel_and_the_rules(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    status, body, _ = worker.send(basic_message(subject="later", scheduled_at="in 1 hour"))
    assert status == 202, body
    message_id = body["id"]
    s = worker.status(message_id)
    assert s["status"] == "scheduled", s
    due = datetime.datetime.fromisoformat(s["scheduled_at"]).timestamp()
    assert abs(due - (time.time() + 3600)) < 30, s

    # Move it, then cancel it: it is never sent.
    moved = iso(time.time() + 7200)
    status, body, _ = worker.request("PATCH", f"/v1/messages/{message_id}",
                                     {"scheduled_at": moved}, worker.auth)
    assert status == 200 and body["status"] == "scheduled", body
    assert datetime.datetime.fromisoformat(body["scheduled_at"]).timestamp() == \
        datetime.datetime.fromisoformat(moved).timestamp()
    status, body, _ = worker.request("POST", f"/v1/messages/{message_id}/cancel", None, worker.auth)
    assert (status, body) == (200, {"id": message_id, "status": "canceled"}), body
    s = worker.status(message_id)
    assert s["status"] == "canceled", s
    kinds = [e["kind"] for e in s["events"]]
    assert kinds[-2:] == ["rescheduled", "canceled"], kinds
    assert [e["type"] for e in s["email_events"]] == ["email.canceled"], s["email_events"]

    # Too late for either: 409 naming the rule and the status.
    for method, path, payload in [("POST", f"/v1/messages/{message_id}/cancel", None),
                                  ("PATCH", f"/v1/messages/{message_id}",
                                   {"scheduled_at": "in 5 minutes"})]:
        status, body, _ = worker.request(method, path, payload, worker.auth)
        assert status == 409, body
        assert body["error"]["rule"] == "not_scheduled", body
        assert "canceled" in body["error"]["message"], body
    status, body, _ = worker.request("POST", "/v1/messages/nope/cancel", None, worker.auth)
    assert status == 404, body

    # Forms with no defined time zone, and beyond 30 days: 422 naming the
    # field and listing the accepted forms.
    for bad in ["tomorrow at 9am", "2026-12-01T09:00:00", "in 31 days"]:
        status, body, _ = worker.send(basic_message(scheduled_at=bad))
        assert status == 422, (bad, body)
        assert body["error"]["field"] == "scheduled_at", body
        assert body["error"]["details"][0]["rule"] == "invalid_schedule", body
        assert "in 10 minutes" in body["error"]["message"], body
    # Not with immediate delivery.
    status, body, _ = worker.request("POST", "/v1/messages?delivery=immediate",
                                     basic_message(scheduled_at="in 1 hour"), worker.auth)
    assert status == 422 and body["error"]["details"][0]["rule"] == "immediate_not_scheduled", body
    assert count(server, "later") == 0


def test_delivered_at_the_due_time_signed(start_worker, upstream, dkim_ed25519, dkim_rsa):
    server = upstream().start()
    worker = start_worker(server.url)
    due = int(time.time()) + 4
    status, body, _ = worker.send(basic_message(subject="on time", scheduled_at=iso(due)))
    assert status == 202, body
    message_id = body["id"]
    # A batch item, moved from an hour ahead to a few seconds.
    status, body, _ = worker.request("POST", "/v1/messages/batch",
                                     [basic_message(subject="moved", scheduled_at="in 1 hour")],
                                     worker.auth)
    assert status == 207 and body["results"][0]["status"] == 202, body
    moved_id = body["results"][0]["id"]
    assert worker.status(moved_id)["status"] == "scheduled"
    moved_due = int(time.time()) + 3
    status, body, _ = worker.request("PATCH", f"/v1/messages/{moved_id}",
                                     {"scheduled_at": moved_due}, worker.auth)
    assert status == 200, body

    received = arrived(server, "on time")
    assert due <= received.accepted_at < due + 60, (due, received.accepted_at)
    verify(received, dkim_ed25519, dkim_rsa)
    moved = arrived(server, "moved")
    assert moved_due <= moved.accepted_at < moved_due + 60
    verify(moved, dkim_ed25519, dkim_rsa)
    for i in (message_id, moved_id):
        wait_for(lambda i=i: worker.status(i)["status"] == "delivered", what="delivered")
    assert count(server, "on time") == 1 and count(server, "moved") == 1


def test_a_schedule_survives_a_restart_and_is_never_sent_early(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, **FAST_SWEEP)
    due = int(time.time()) + 8
    status, body, _ = worker.send(basic_message(subject="after restart", scheduled_at=due))
    assert status == 202, body
    message_id = body["id"]
    # Another `wrangler dev` on the same persisted state; the local queue
    # (with the waiting job) is gone.
    worker.dev.stop()
    worker.dev.restart()
    worker.dev.wait_ready(timeout=90)
    # Before the due time, the sweep leaves it alone.
    worker.sweep()
    assert worker.status(message_id)["status"] == "scheduled"
    assert count(server, "after restart") == 0

    def swept_and_sent():
        worker.sweep()
        return count(server, "after restart") > 0
    wait_for(swept_and_sent, timeout=90, interval=0.5, what="the scheduled message to arrive")
    received = arrived(server, "after restart")
    assert received.accepted_at >= due, (due, received.accepted_at)
    wait_for(lambda: worker.status(message_id)["status"] == "delivered", what="delivered")
    assert count(server, "after restart") == 1


def test_cancels_racing_the_due_time_leave_exactly_one_outcome(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, **FAST_SWEEP)
    n = 8
    due = int(time.time()) + 5
    ids = {}
    for i in range(n):
        status, body, _ = worker.send(basic_message(subject=f"race {i}", scheduled_at=due))
        assert status == 202, body
        ids[body["id"]] = f"race {i}"
    answers = {}

    def cancel(message_id, at):
        until(at)
        answers[message_id] = worker.request("POST", f"/v1/messages/{message_id}/cancel",
                                             None, worker.auth)[:2]

    # Cancels spread around the due time (from 0.5 s before to 1.5 s after).
    threads = [threading.Thread(target=cancel, args=(m, due - 0.5 + 2.0 * k / (n - 1)))
               for k, m in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def all_final():
        worker.sweep()
        statuses = {m: worker.status(m)["status"] for m in ids}
        return all(s in FINAL for s in statuses.values()) and statuses
    statuses = wait_for(all_final, timeout=90, interval=0.5, what="every message to be final")
    # Nothing more can arrive once every message is final; give a late
    # duplicate the chance to show by polling the server's count once more.
    for message_id, subject in ids.items():
        status, body = answers[message_id]
        if status == 200:
            assert statuses[message_id] == "canceled", (subject, body)
            assert count(server, subject) == 0, subject
        else:
            assert status == 409 and body["error"]["rule"] == "not_scheduled", body
            assert statuses[message_id] == "delivered", (subject, statuses[message_id])
            assert count(server, subject) == 1, subject
    sent = [m for m, s in statuses.items() if s == "delivered"]
    assert len(server.messages) == len(sent)
    print(f"\nrace: {len(sent)} sent, {n - len(sent)} canceled")


def test_resend_and_sendgrid_sdks_schedule_move_and_cancel(start_worker, upstream, dkim_ed25519,
                                                           dkim_rsa):
    server = upstream().start()
    worker = start_worker(server.url)
    base = {"from": f"Acme <news@{SENDER_DOMAIN}>", "to": ["bob@example.net"], "text": "Hi"}

    # Resend: scheduled in natural language, read back, moved, delivered.
    sent = node("resend", "send", worker, email=dict(base, subject="resend later",
                                                     scheduledAt="in 1 hour"))
    assert sent["error"] is None, sent
    email_id = sent["data"]["id"]
    got = node("resend", "get", worker, id=email_id)
    assert got["data"]["last_event"] == "scheduled", got
    assert got["data"]["scheduled_at"], got
    due = int(time.time()) + 3
    updated = node("resend", "update", worker, id=email_id, scheduledAt=iso(due))
    assert updated["data"] == {"object": "email", "id": email_id}, updated
    received = arrived(server, "resend later")
    assert received.accepted_at >= due
    verify(received, dkim_ed25519, dkim_rsa)

    # Resend: scheduled, then canceled; canceling again is Resend's error.
    sent = node("resend", "send", worker, email=dict(base, subject="resend cancel",
                                                     scheduledAt="in 10 minutes"))
    email_id = sent["data"]["id"]
    canceled = node("resend", "cancel", worker, id=email_id)
    assert canceled["data"] == {"object": "email", "id": email_id}, canceled
    assert node("resend", "get", worker, id=email_id)["data"]["last_event"] == "canceled"
    again = node("resend", "cancel", worker, id=email_id)
    assert again["data"] is None and again["error"]["statusCode"] == 409, again
    # A time with no zone is the SDK's own validation_error, listing the forms.
    bad = node("resend", "send", worker, email=dict(base, subject="x",
                                                    scheduledAt="tomorrow at 9am"))
    assert (bad["error"]["statusCode"], bad["error"]["name"]) == (422, "validation_error"), bad
    assert "in 10 minutes" in bad["error"]["message"], bad

    # SendGrid: send_at on the request, and a personalization's own.
    due = int(time.time()) + 3
    message = {
        "personalizations": [{"to": [{"email": "carol@example.net"}]},
                             {"to": [{"email": "dan@example.net"}], "send_at": due + 1}],
        "from": {"email": f"news@{SENDER_DOMAIN}"},
        "subject": "sendgrid later",
        "content": [{"type": "text/plain", "value": "Hi"}],
        "send_at": due,
    }
    answer = node("sendgrid", "send", worker, message=message)
    assert answer["statusCode"] == 202, answer
    wait_for(lambda: count(server, "sendgrid later") == 2, timeout=60,
             what="both SendGrid messages")
    for m in server.messages:
        if b"Subject: sendgrid later" in m.data:
            own = due + 1 if m.rcpt_tos == ["dan@example.net"] else due
            assert m.accepted_at >= own, (m.rcpt_tos, own, m.accepted_at)
            verify(m, dkim_ed25519, dkim_rsa)
    assert count(server, "resend cancel") == 0
