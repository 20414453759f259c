"""A hostile Worker beside edgerelay, bound to its queues as any Worker of the
account can be, forges what edgerelay would otherwise trust: delivery jobs
with any MAIL FROM and MIME, a producer's id, jobs pointing at another
tenant's stored body, a dead letter. Nothing it sends reaches the SMTP server
(counted at the server), and each refusal is recorded with its reason."""
import json
import time

from edgerelay_harness.keys import (api_key_entry, basic_message, new_api_key, new_producer_token,
                                    new_queue_secret, producer_entry, sealed_job_body)
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour
from edgerelay_harness.wrangler import companion_config

HOSTILE = ROOT / "tests" / "workers" / "hostile-producer"
# The upstream defers these recipients, so their messages stay queued (with
# an hour to their next attempt) while the hostile Worker works: HELD always,
# ONCE on its first RCPT only (a job for it now would be delivered).
HELD = "held@example.net"
ONCE = "once@example.net"
ATTACKER = "attacker.test"
DEFER = "451 4.3.0 Try again later"


def forged_job(message_id: str, key_id: str, mail_from: str, rcpt: str, **extra) -> dict:
    """A delivery job as the consumer reads one, written by someone else."""
    mime = (f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: forged, wire the money today\r\n"
            "\r\nForged body.\r\n")
    job = {"id": message_id, "key_id": key_id, "mail_from": mail_from, "rcpt_to": [rcpt],
           "mime": mime, "smtputf8": False, "accepted_at": int(time.time()), "attempt": 0}
    job.update(extra)
    return job


def test_a_hostile_worker_on_the_queues_sends_nothing_and_each_refusal_is_recorded(
        start_worker, upstream, api_key, tmp_path):
    server = upstream(behaviour=Behaviour(rcpt_replies={HELD: DEFER},
                                          rcpt_failures_first={ONCE: [1, DEFER]})).start()
    victim_key = new_api_key()
    token = new_producer_token()
    queue_secret = new_queue_secret()
    hostile = companion_config(tmp_path, HOSTILE / "wrangler.toml", HOSTILE / "src" / "index.js",
                               name="hostile.json")
    worker = start_worker(
        server.url,
        primary_configs=[hostile],
        API_KEYS=json.dumps([api_key_entry(api_key, "e2e"), api_key_entry(victim_key, "victim")]),
        QUEUE_PRODUCERS=json.dumps([producer_entry("billing", "e2e", token)]),
        QUEUE_SECRET=queue_secret,
        RETRY_BASE_DELAY_SECONDS="3600",
    )
    victim_auth = {"Authorization": f"Bearer {victim_key}"}

    def forge(body, queue="jobs"):
        s, reply, _ = worker.request("POST", "/forge", {"queue": queue, "body": body})
        assert s == 202, reply

    def status_as(auth, message_id):
        s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=auth)
        assert s == 200, body
        return body

    def kinds(record):
        return [e["kind"] for e in record["events"]]

    def refusals(auth, message_id, count):
        """The message's record once it has `count` refusal events."""
        return wait_for(lambda: (r := status_as(auth, message_id))
                        and kinds(r).count("forged_job_refused") == count and r,
                        what=f"{count} refusal(s) noted on {message_id}")

    def details(record):
        return [e["detail"] for e in record["events"] if e["kind"] == "forged_job_refused"]

    def in_log(text):
        wait_for(lambda: text in worker.log(), what=f"`{text}` in the worker's log")

    # The real traffic. The e2e key: one message delivered, one deferred
    # (ONCE). The victim tenant: a large message, deferred, its body in R2.
    s, sent, _ = worker.send(basic_message(subject="a real message"))
    assert s == 202, sent
    real_id = sent["id"]
    s, sent, _ = worker.send(basic_message(to=ONCE, subject="a real message, deferred"))
    assert s == 202, sent
    deferred_id = sent["id"]
    s, sent, _ = worker.send(basic_message(to=HELD, subject="a large message", text="word " * 40_000),
                             key=victim_key)
    assert s == 202, sent
    victim_id = sent["id"]
    wait_for(lambda: worker.status(real_id)["status"] == "delivered", what="the real message")
    wait_for(lambda: worker.status(deferred_id)["status"] == "deferred", what="the deferred message")
    wait_for(lambda: status_as(victim_auth, victim_id)["status"] == "deferred", what="the victim")
    assert worker.stored_bodies(), "the victim's body waits in R2"
    assert len(server.messages) == 1

    # (a) Forged jobs with their own MAIL FROM and MIME, naming the real
    # message: as a plain object (no seal), as a string beside a made-up
    # seal, and as a string with a seal of an unknown version. Then one that
    # copies the deferred message's stored envelope exactly, so that only its
    # seal tells it apart: without the seal check it would be delivered now.
    plain = forged_job(real_id, "e2e", "ceo@example.com", f"plain@{ATTACKER}")
    forge({"v": 1, "type": "deliver", "job": plain})
    made_up = forged_job(real_id, "e2e", f"boss@{ATTACKER}", f"made-up@{ATTACKER}")
    forge({"v": 1, "type": "deliver", "job": json.dumps(made_up), "seal": "v1:" + "ab" * 32})
    forge(json.dumps({"v": 1, "type": "deliver", "job": json.dumps(made_up), "seal": "v9:00"}))
    copy = forged_job(deferred_id, "e2e", "hello@example.com", ONCE)
    forge({"v": 1, "type": "deliver", "job": json.dumps(copy), "seal": "v1:" + "cd" * 32})

    real = refusals(worker.auth, real_id, 3)
    assert real["status"] == "delivered", "a refusal never changes a message's status"
    assert any("not sealed" in d for d in details(real)), details(real)
    assert any("does not verify" in d for d in details(real)), details(real)
    assert any("version `v9`" in d for d in details(real)), details(real)
    deferred = refusals(worker.auth, deferred_id, 1)
    assert deferred["status"] == "deferred", deferred
    assert "does not verify" in details(deferred)[0]

    # (b) A send claiming the billing producer's id: without a token, and
    # with a wrong one. Each is recorded as failed for billing's owner (e2e)
    # with its reason, and dead-lettered; the victim tenant sees none of it.
    claimed = basic_message(to=f"impersonated@{ATTACKER}", subject="from billing, honestly")
    forge({"v": 1, "type": "send", "producer": "billing", "message": claimed})
    forge({"v": 1, "type": "send", "producer": "billing", "token": new_producer_token(),
           "message": claimed})

    def refused_claims():
        s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=worker.auth)
        return s == 200 and len(page["data"]) == 2 and page["data"]
    claims = wait_for(refused_claims, what="both claims recorded as failed for billing's owner")
    assert {c["producer"] for c in claims} == {"billing"}
    errors = [c["last_error"] for c in claims]
    assert any("carries no token" in e for e in errors), errors
    assert any("does not match the producer's token_sha256" in e for e in errors), errors
    for c in claims:
        record = wait_for(lambda: (r := worker.status(c["id"])) and "dead_lettered" in kinds(r) and r,
                          what="the claim's dead letter")
        assert kinds(record) == ["rejected", "dead_lettered"], record
    s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=victim_auth)
    assert s == 200 and page["data"] == [], page
    assert token not in worker.log()

    # (c) Jobs pointing at the victim's stored body: under a fresh id with
    # the victim's key, and under the victim's own id. Then the same two
    # sealed with edgerelay's own secret, as if it had leaked: the checks
    # behind the seal (a job's body is its own; a job matches its stored
    # message) still refuse them. Last, a forged dead letter that would fail
    # the victim's message and delete its body.
    body_ref = f"bodies/{victim_id}.eml"
    fresh_id = "f0" * 16
    to_fresh = forged_job(fresh_id, "victim", f"thief@{ATTACKER}", f"thief@{ATTACKER}",
                          mime="", body_ref=body_ref)
    to_victim = forged_job(victim_id, "victim", "hello@example.com", f"copy@{ATTACKER}",
                           mime="", body_ref=body_ref)
    forge({"v": 1, "type": "deliver", "job": to_fresh})
    forge({"v": 1, "type": "deliver", "job": json.dumps(to_victim), "seal": "v1:" + "00" * 32})
    forge(sealed_job_body(queue_secret, to_fresh))
    forge(sealed_job_body(queue_secret, to_victim))
    forge({"v": 1, "type": "dead_letter",
           "letter": {"reason": "550 forged", "job": forged_job(victim_id, "victim", "hello@example.com",
                                                                 HELD, mime="", body_ref=body_ref)}},
          queue="dead_letters")

    refused = f'"event":"foreign_job_refused","message_id":"{fresh_id}","reason":'
    in_log(f'{refused}"forged job refused: it is not sealed')
    in_log(f'{refused}"job for message `{fresh_id}` refused: its body_ref is not the key of '
           'its own body')
    # The refusals' dead letters reach the dead-letter consumer with their reasons.
    in_log("dead letter without a job: forged job refused: it is not sealed")
    in_log("dead letter without a job: job for message")
    in_log("unsealed dead letter ignored: forged dead letter refused")
    victim = refusals(victim_auth, victim_id, 2)
    assert victim["status"] == "deferred", victim
    assert any("does not verify" in d for d in details(victim)), details(victim)
    assert any("names recipients the message does not have" in d for d in details(victim)), \
        details(victim)
    assert "dead_lettered" not in kinds(victim), "the forged dead letter recorded nothing"
    assert worker.stored_bodies(), "the forged dead letter deleted no body"
    s, body, _ = worker.request("GET", f"/v1/messages/{fresh_id}", headers=victim_auth)
    assert s == 404, body

    # Counted at the server: only the real message was ever delivered, the
    # deferred ones were tried once each, and no forged recipient was ever named.
    assert [m.rcpt_tos for m in server.messages] == [["rcpt@example.net"]]
    assert server.handler.data_commands == 1
    named = server.handler.rcpt_commands
    assert sorted(named) == sorted(["rcpt@example.net", ONCE, HELD]), named
