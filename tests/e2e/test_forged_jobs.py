"""A hostile Worker beside edgerelay, bound to its queues as any Worker of the
account can be, forges what edgerelay would otherwise trust: delivery jobs
with any MAIL FROM and MIME, a producer's id, a job pointing at another
tenant's stored body, a dead letter. Nothing it sends reaches the SMTP server
(counted at the server), and each refusal is recorded with its reason."""
import json
import time

from edgerelay_harness.keys import (api_key_entry, basic_message, new_api_key, new_producer_token,
                                    producer_entry)
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour
from edgerelay_harness.wrangler import companion_config

HOSTILE = ROOT / "tests" / "workers" / "hostile-producer"
# The victim tenant's recipient: the upstream defers it, so its large message
# stays queued with its body in the bucket while the hostile Worker works.
HELD = "held@example.net"
ATTACKER = "attacker.test"


def forged_job(message_id: str, key_id: str, mail_from: str, rcpt: str, **extra) -> dict:
    """A delivery job as the consumer reads one, written by someone else."""
    mime = (f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: wire the money today\r\n"
            "\r\nForged body.\r\n")
    job = {"id": message_id, "key_id": key_id, "mail_from": mail_from, "rcpt_to": [rcpt],
           "mime": mime, "smtputf8": False, "accepted_at": int(time.time()), "attempt": 0}
    job.update(extra)
    return job


def test_a_hostile_worker_on_the_queues_sends_nothing_and_each_refusal_is_recorded(
        start_worker, upstream, api_key, tmp_path):
    server = upstream(behaviour=Behaviour(rcpt_replies={HELD: "451 4.3.0 Try again later"})).start()
    victim_key = new_api_key()
    token = new_producer_token()
    hostile = companion_config(tmp_path, HOSTILE / "wrangler.toml", HOSTILE / "src" / "index.js",
                               name="hostile.json")
    worker = start_worker(
        server.url,
        primary_configs=[hostile],
        API_KEYS=json.dumps([api_key_entry(api_key, "e2e"), api_key_entry(victim_key, "victim")]),
        QUEUE_PRODUCERS=json.dumps([producer_entry("billing", "e2e", token)]),
    )
    victim_auth = {"Authorization": f"Bearer {victim_key}"}

    def forge(body, queue="jobs"):
        s, reply, _ = worker.request("POST", "/forge", {"queue": queue, "body": body})
        assert s == 202, reply

    def victim_status(message_id):
        s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=victim_auth)
        assert s == 200, body
        return body

    def kinds(record):
        return [e["kind"] for e in record["events"]]

    def log_has(text):
        return text in worker.log()

    # The real traffic: one delivered message of the e2e key, and the victim
    # tenant's large message, deferred, with its body stored in R2.
    s, sent, _ = worker.send(basic_message(subject="a real message"))
    assert s == 202, sent
    real_id = sent["id"]
    wait_for(lambda: worker.status(real_id)["status"] == "delivered", what="the real message")
    s, big, _ = worker.send(basic_message(to=HELD, subject="a large message", text="word " * 40_000),
                            key=victim_key)
    assert s == 202, big
    victim_id = big["id"]
    wait_for(lambda: victim_status(victim_id)["status"] == "deferred", what="the victim deferred")
    assert worker.stored_bodies(), "the victim's body waits in R2"
    assert len(server.messages) == 1

    # (a) Forged jobs with their own MAIL FROM and MIME, naming the real
    # message: as a plain object (no seal), as a string beside a made-up
    # seal, and as a string sealed with an unknown seal version.
    plain = forged_job(real_id, "e2e", "ceo@example.com", f"plain@{ATTACKER}")
    forge({"v": 1, "type": "deliver", "job": plain})
    made_up = forged_job(real_id, "e2e", f"boss@{ATTACKER}", f"made-up@{ATTACKER}")
    forge({"v": 1, "type": "deliver", "job": json.dumps(made_up), "seal": "v1:" + "ab" * 32})
    forge(json.dumps({"v": 1, "type": "deliver", "job": json.dumps(made_up), "seal": "v9:00"}))

    real = wait_for(lambda: (r := worker.status(real_id))
                    and kinds(r).count("forged_job_refused") == 3 and r,
                    what="three refusals noted on the real message")
    assert real["status"] == "delivered", "a refusal never changes a message's status"
    details = [e["detail"] for e in real["events"] if e["kind"] == "forged_job_refused"]
    assert any("not sealed" in d for d in details), details
    assert any("does not verify" in d for d in details), details
    assert any("version `v9`" in d for d in details), details

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
    errors = sorted(c["last_error"] for c in claims)
    assert "carries no token" in errors[1] or "carries no token" in errors[0], errors
    assert any("does not match the producer's token_sha256" in e for e in errors), errors
    for c in claims:
        record = wait_for(lambda: (r := worker.status(c["id"])) and "dead_lettered" in kinds(r) and r,
                          what="the claim's dead letter")
        assert kinds(record) == ["rejected", "dead_lettered"], record
    s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=victim_auth)
    assert s == 200 and page["data"] == [], page
    assert token not in worker.log()

    # (c) Jobs pointing at the victim's stored body: under a fresh id with
    # the victim's key, and under the victim's own id. And a forged dead
    # letter that would fail the victim's message and delete its body.
    body_ref = f"bodies/{victim_id}.eml"
    fresh_id = "f0" * 16
    forge({"v": 1, "type": "deliver",
           "job": forged_job(fresh_id, "victim", f"thief@{ATTACKER}", f"thief@{ATTACKER}",
                             mime="", body_ref=body_ref)})
    forge({"v": 1, "type": "deliver",
           "job": json.dumps(forged_job(victim_id, "victim", "hello@example.com",
                                        f"copy@{ATTACKER}", mime="", body_ref=body_ref)),
           "seal": "v1:" + "00" * 32})
    forge({"v": 1, "type": "dead_letter",
           "letter": {"reason": "550 forged", "job": forged_job(victim_id, "victim", "hello@example.com",
                                                                 HELD, mime="", body_ref=body_ref)}},
          queue="dead_letters")

    wait_for(lambda: log_has(f"refused a job not written by edgerelay (message {fresh_id})"),
             what="the refusal of the fresh-id job in the worker's log")
    # Its dead letter reached the dead-letter consumer with its reason.
    wait_for(lambda: log_has("dead letter without a job: forged job refused: it is not sealed"),
             what="the dead letter of a refused job")
    wait_for(lambda: log_has("unsealed dead letter ignored: forged dead letter refused"),
             what="the forged dead letter ignored")
    victim = wait_for(lambda: (r := victim_status(victim_id))
                      and "forged_job_refused" in kinds(r) and r,
                      what="the refusal noted on the victim's message")
    assert victim["status"] == "deferred", victim
    assert "dead_lettered" not in kinds(victim), "the forged dead letter recorded nothing"
    assert worker.stored_bodies(), "the forged dead letter deleted no body"
    s, body, _ = worker.request("GET", f"/v1/messages/{fresh_id}", headers=victim_auth)
    assert s == 404, body

    # Counted at the server: only the real message was ever delivered, and no
    # forged sender or recipient was ever named to it.
    assert len(server.messages) == 1 and server.messages[0].rcpt_tos == ["rcpt@example.net"]
    named = server.handler.rcpt_commands
    assert not [r for r in named if ATTACKER in r], named
    assert set(named) <= {"rcpt@example.net", HELD}, named
