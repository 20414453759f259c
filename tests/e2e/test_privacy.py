"""Retention and erasure end to end, on the built worker in workerd with its
local D1 and R2.

Retention: with a one-second retention (the diagnostics build's
TEST_RETENTION_SECONDS), the local cron trigger purges final messages with
everything about them and a kept report with its raw body, counts it in
purge_runs, and leaves a deferred message, its records and its stored body
alone.

Export and erasure: GET /v1/privacy/export returns exactly one address's
records of the caller's tenant; DELETE /v1/privacy/data leaves no trace of
the address in any table of the local D1 (every text column of every row is
read) or in R2, except its hashed suppression entry, and a later message to
it is suppressed."""
import base64
import json
import os
import re
import sqlite3
from urllib.parse import quote

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, basic_message, new_api_key
from edgerelay_harness.local_d1 import database, every_text
from edgerelay_harness.openapi import schema
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

RETURN_PATH_DOMAIN = f"rp.{SENDER_DOMAIN}"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")


def query(worker, sql, *args):
    with sqlite3.connect(database(worker), timeout=10) as db:
        return db.execute(sql, args).fetchall()


def settled(worker, message_id, key=None, states=FINAL):
    headers = {"Authorization": f"Bearer {key or worker.api_key}"}

    def done():
        s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=headers)
        assert s == 200, body
        return body["status"] in states and body

    return wait_for(done, timeout=60, what=f"{message_id} to reach {states}")


def send(worker, key=None, **fields):
    status, body, _ = worker.send(basic_message(**fields), key=key)
    assert status == 202, body
    return body["id"]


def large_attachment():
    # Composed, about 270 KB: over the queue's limit, so the body waits in R2.
    blob = base64.b64encode(os.urandom(200 * 1024)).decode()
    return [{"filename": "data.bin", "content": blob}]


def test_the_purge_removes_old_final_records_and_keeps_a_deferred_message(start_worker,
                                                                          upstream):
    late = "late@example.net"
    server = upstream(behaviour=Behaviour(rcpt_replies={late: "450 4.2.1 Try again later"})).start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, TEST_RETENTION_SECONDS="1",
                          RETURN_PATH_DOMAINS=json.dumps({SENDER_DOMAIN: RETURN_PATH_DOMAIN}))
    auth = {"Authorization": f"Bearer {worker.api_key}"}
    # A report that matches no message, kept raw under inbound/ in R2.
    report = (ROOT / "tests" / "fixtures" / "reports" / "postfix-unknown-user.eml").read_bytes()
    s, answer, _ = worker.email(report, "MAILER-DAEMON@mx.example.net",
                                f"b+tok@{RETURN_PATH_DOMAIN}")
    assert s == 200 and answer.get("rejectReason") is None, answer
    assert query(worker, "SELECT body_key LIKE 'inbound/%' FROM inbound_reports") == [(1,)]

    old = [send(worker, to="one@example.net"),
           send(worker, to=["two@example.net", "three@example.net"]),
           send(worker, to="big@example.net", attachments=large_attachment())]
    waiting = send(worker, to=late, attachments=large_attachment())
    for message_id in old:
        settled(worker, message_id, states=("delivered",))
    settled(worker, waiting, states=("deferred",))
    # The delivered large body is gone at its end state; the deferred one waits.
    wait_for(lambda: len(worker.stored_bodies()) == 2,
             what="only the deferred body and the report in R2")
    s, body, _ = worker.request("POST", "/v1/suppressions",
                                {"suppressions": [{"address": "kept@example.net"}]}, auth)
    assert s == 200, body

    def purged():
        worker.sweep()
        remaining = query(worker, "SELECT COUNT(*) FROM messages WHERE id IN (?, ?, ?)", *old)
        reports = query(worker, "SELECT COUNT(*) FROM inbound_reports")
        return remaining[0][0] == 0 and reports[0][0] == 0

    wait_for(purged, timeout=30, interval=0.5,
             what="the old final messages and the report to be purged")

    # Nothing of the purged messages is left in any table.
    for table, column in (("recipients", "message_id"), ("events", "message_id"),
                          ("email_events", "message_id")):
        rows = query(worker, f"SELECT COUNT(*) FROM {table} WHERE {column} IN (?, ?, ?)", *old)
        assert rows[0][0] == 0, table
    for message_id in old:
        s, _, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=auth)
        assert s == 404
    # The purge log counts them.
    runs = [json.loads(d) for (d,) in query(worker, "SELECT deleted FROM purge_runs")]
    assert sum(r["messages"] for r in runs) == 3, runs
    assert sum(r["recipients"] for r in runs) == 4, runs
    assert sum(r["events"] for r in runs) >= 6, runs
    assert sum(r["email_events"] for r in runs) >= 4, runs
    assert sum(r["inbound_reports"] for r in runs) == 1, json.dumps(runs)

    # The deferred message keeps its record, recipients, events and body,
    # however old; the suppression list is never purged by age.
    record = worker.status(waiting)
    assert record["status"] == "deferred", record
    assert [r["address"] for r in record["recipients"]] == [late]
    assert record["events"]
    stored = worker.stored_bodies()
    assert len(stored) == 1 and stored[0].stat().st_size > 128 * 1024, stored
    assert query(worker, "SELECT address FROM suppressions") == [("kept@example.net",)]


def export(worker, key, address):
    return worker.request("GET", f"/v1/privacy/export?email={quote(address)}",
                          headers={"Authorization": f"Bearer {key}"})


def erase(worker, key, address):
    return worker.request("DELETE", f"/v1/privacy/data?email={quote(address)}",
                          headers={"Authorization": f"Bearer {key}"})


def naming(address):
    """A pattern for `address` standing whole (not the tail of jimbob@...)."""
    return re.compile(r"(?<![a-z0-9.!#$%&'*+/=?^_`{|}~-])" + re.escape(address)
                      + r"(?![a-z0-9-]|\.[a-z0-9])")


def traces(worker, address):
    """Every (table, column, value) of the local D1 whose text names `address`."""
    pattern = naming(address)
    return [(table, column, value[:200]) for table, column, value in every_text(worker)
            if pattern.search(value.lower())]


def test_export_returns_one_address_records_and_erase_leaves_only_its_hash(start_worker,
                                                                            upstream, api_key):
    bob, amy, jimbob = "bob@example.net", "amy@example.net", "jimbob@example.net"
    other_key = new_api_key()
    server = upstream().start()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(api_key, "acme-1", tenant="acme"),
        api_key_entry(other_key, "other-1", tenant="other"),
    ]))
    auth = {"Authorization": f"Bearer {api_key}"}

    only_bob = send(worker, to="Bob@example.net", subject="For bob@example.net alone",
                    attachments=large_attachment())
    shared = send(worker, to=[bob, amy], subject="For both", metadata={"contact": bob})
    amys = send(worker, to=amy)
    jimbobs = send(worker, to=jimbob)
    others = send(worker, key=other_key, to=bob)
    # A marketing message goes as one copy per recipient; its idempotency
    # key keeps the answer, which names each copy's recipient.
    s, answer, _ = worker.request(
        "POST", "/v1/messages",
        basic_message(to=[bob, amy], stream="marketing", subject="News"),
        {**auth, "Idempotency-Key": "news-1"})
    assert s == 202, answer
    copies = {c["to"]: c["id"] for c in answer["copies"]}
    for message_id in (only_bob, shared, amys, jimbobs, *copies.values()):
        settled(worker, message_id)
    settled(worker, others, key=other_key)
    s, body, _ = worker.request("POST", "/v1/suppressions", {"suppressions": [
        {"address": bob, "scope": "topic:news", "detail": "asked on the phone"},
        {"address": jimbob}]}, auth)
    assert s == 200, body

    # Export: exactly bob's records of acme.
    s, body, _ = export(worker, api_key, "BOB@example.net")
    assert s == 200, body
    schema("PrivacyExport").validate(body)
    assert body["email"] == bob and body["complete"] is True
    bobs = sorted([only_bob, shared, copies[bob]])
    assert sorted(m["id"] for m in body["messages"]) == bobs
    assert sorted({r["message_id"] for r in body["recipients"]}) == bobs
    assert {r["address"].lower() for r in body["recipients"]} == {bob}
    assert sorted({e["message_id"] for e in body["events"]}) == bobs
    assert body["email_events"], body
    for event in body["email_events"]:
        assert event["message_id"] in bobs, event
        assert event["recipient"] is None or event["recipient"].lower() == bob, event
    assert [(e["address"], e["scope"]) for e in body["suppressions"]] == [(bob, "topic:news")]
    assert jimbob not in json.dumps(body)
    # The scan below finds what it looks for.
    found = [t[:2] for t in traces(worker, bob)]
    assert ("messages", "rcpt_to") in found and ("idempotency_keys", "response_body") in found
    # Another tenant's key sees only its own message to bob.
    s, theirs, _ = export(worker, other_key, bob)
    assert s == 200, theirs
    assert [m["id"] for m in theirs["messages"]] == [others]
    assert theirs["suppressions"] == []
    # An address that is not one: 422 naming `email` and the rule.
    for bad, rule in (("not-an-address", "missing_at"), ("", "empty")):
        s, err, _ = export(worker, api_key, bad)
        assert s == 422, err
        assert err["error"]["details"][0]["field"] == "email", err
        assert err["error"]["details"][0]["rule"] == rule, err
    s, err, _ = worker.request("DELETE", "/v1/privacy/data", headers=auth)
    assert s == 422 and err["error"]["details"][0]["field"] == "email", err

    # Erase bob for acme.
    s, done, _ = erase(worker, api_key, bob)
    assert s == 200, done
    schema("PrivacyErased").validate(done)
    assert done["deleted"]["messages"] == 2, done  # to bob alone, and bob's copy
    assert done["deleted"]["suppressions"] == 1, done
    assert done["complete"] is True
    hashed = done["suppression"]["address"]
    assert hashed.startswith("sha256:") and "bob" not in hashed
    # The message to bob alone is gone; the shared one stays, anonymised.
    s, _, _ = worker.request("GET", f"/v1/messages/{only_bob}", headers=auth)
    assert s == 404
    kept = worker.status(shared)
    addresses = [r["address"] for r in kept["recipients"]]
    assert amy in addresses and bob not in addresses, addresses
    assert any(a.endswith("@erased.invalid") for a in addresses), addresses
    # The other tenant's records are untouched; then it erases bob too.
    s, theirs, _ = export(worker, other_key, bob)
    assert [m["id"] for m in theirs["messages"]] == [others]
    s, done, _ = erase(worker, other_key, bob)
    assert s == 200, done

    # No trace of bob in any live table or in R2, except the hashed entries.
    assert traces(worker, bob) == []
    assert sorted(query(worker, "SELECT tenant, reason, scope FROM suppressions "
                                "WHERE address LIKE 'sha256:%'")) == [
        ("acme", "erased", "all"), ("other", "erased", "all")]
    for blob in worker.stored_bodies():
        assert not naming(bob).search(blob.read_bytes().decode("latin-1").lower()), blob
    # jimbob and amy keep their records.
    assert worker.status(jimbobs)["status"] == "delivered"
    assert worker.status(amys)["status"] == "delivered"
    assert worker.status(copies[amy])["status"] == "delivered"
    s, after, _ = export(worker, api_key, bob)
    assert s == 200 and after["messages"] == [] and after["email_events"] == []
    assert [(e["address"], e["reason"]) for e in after["suppressions"]] == [(hashed, "erased")]

    # A later message to bob is held back by the hashed entry.
    def sent_to_bob():
        return [a.lower() for a in server.handler.rcpt_commands].count(bob)

    before = sent_to_bob()
    later = send(worker, to=["BOB@example.net", amy])
    record = settled(worker, later)
    by_address = {r["address"].lower(): r for r in record["recipients"]}
    assert by_address[bob]["state"] == "suppressed", record
    assert "erased" in by_address[bob]["reply_text"]
    assert by_address[amy]["state"] == "delivered"
    assert sent_to_bob() == before
