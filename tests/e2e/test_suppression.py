"""The suppression list end to end: a hard bounce at a real SMTP server
suppresses the address and the next send to it never reaches the server; a
policy refusal does not; the /v1/suppressions API refuses what breaks its
rules, naming field and rule, and is shared by a tenant's keys and invisible
to another tenant."""
import json
from urllib.parse import quote

from edgerelay_harness.keys import api_key_entry, basic_message, new_api_key
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")


def final_status(worker, message_id, key=None):
    headers = {"Authorization": f"Bearer {key or worker.api_key}"}

    def settled():
        s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=headers)
        assert s == 200, body
        return body["status"] in FINAL and body

    return wait_for(settled, timeout=60, what=f"{message_id} to settle")


def suppressions(worker, key=None, **query):
    headers = {"Authorization": f"Bearer {key or worker.api_key}"}
    path = "/v1/suppressions"
    if query:
        path += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    status, body, _ = worker.request("GET", path, headers=headers)
    assert status == 200, body
    schema("SuppressionPage").validate(body)
    return body["data"]


def email_event_types(record, recipient):
    return [e["type"] for e in record["email_events"] if e["recipient"] == recipient]


def test_a_550_5_1_1_at_rcpt_suppresses_and_a_policy_550_does_not(start_worker, upstream):
    ok, gone, spam = "ok@example.net", "gone@example.net", "strict@example.net"
    server = upstream(behaviour=Behaviour(rcpt_replies={
        gone: "550 5.1.1 No such user",
        spam: "550 5.7.1 Message refused by policy",
    })).start()
    worker = start_worker(server.url)

    status, first, _ = worker.send(basic_message(to=[ok, gone, spam]))
    assert status == 202, first
    record = final_status(worker, first["id"])
    assert record["status"] == "partially_delivered", record
    assert server.handler.rcpt_commands.count(gone) == 1

    # The hard bounce is on the list, with its message and reply; the
    # policy refusal is not.
    [entry] = wait_for(lambda: suppressions(worker, address=gone), what="the hard bounce's entry")
    assert (entry["address"], entry["scope"], entry["reason"]) == (gone, "all", "hard_bounce")
    assert entry["message_id"] == first["id"]
    assert "5.1.1" in entry["detail"] and entry["expires_at"] is None and entry["active"]
    assert suppressions(worker, address=spam) == []
    assert [e["address"] for e in suppressions(worker)] == [gone]

    # The next send: the suppressed address never reaches the server, the
    # others go on, the policy-refused one is tried again.
    shouted = "Gone@example.net"
    status, second, _ = worker.send(basic_message(to=[ok, shouted, spam]))
    assert status == 202, second
    record = final_status(worker, second["id"])
    assert server.handler.rcpt_commands.count(gone) == 1, "the suppressed address was sent"
    assert shouted not in server.handler.rcpt_commands
    assert server.handler.rcpt_commands.count(spam) == 2
    by_address = {r["address"]: r for r in record["recipients"]}
    held = by_address[shouted]
    assert held["state"] == "suppressed" and held["reply_code"] is None, held
    assert "hard_bounce" in held["reply_text"] and first["id"] in held["reply_text"]
    assert by_address[ok]["state"] == "delivered"
    assert record["status"] == "partially_delivered", record
    timeline = [e for e in record["events"] if e["kind"] == "suppressed"]
    assert len(timeline) == 1 and shouted in timeline[0]["detail"], record["events"]
    assert "email.suppressed" in email_event_types(record, shouted), record["email_events"]
    assert "email.suppressed" not in email_event_types(record, ok)

    # Every recipient suppressed: nothing is sent at all.
    messages_before = len(server.messages)
    status, third, _ = worker.send(basic_message(to=gone))
    assert status == 202, third
    record = final_status(worker, third["id"])
    assert record["status"] == "suppressed", record
    assert [r["state"] for r in record["recipients"]] == ["suppressed"]
    assert "email.suppressed" in email_event_types(record, gone)
    assert len(server.messages) == messages_before
    assert server.handler.rcpt_commands.count(gone) == 1

    # Immediate delivery screens the same way, and says so.
    status, body, _ = worker.request("POST", "/v1/messages?delivery=immediate",
                                     basic_message(to=gone), worker.auth)
    assert status == 200, body
    schema("ImmediateResult").validate(body)
    assert body["status"] == "suppressed"
    assert [r["state"] for r in body["recipients"]] == ["suppressed"]
    assert server.handler.rcpt_commands.count(gone) == 1

    # Removed from the list, the address is sent to again.
    status, removed, _ = worker.request("DELETE", f"/v1/suppressions/{quote(gone)}",
                                        headers=worker.auth)
    assert (status, removed) == (200, {"address": gone, "removed": 1}), removed
    status, fourth, _ = worker.send(basic_message(to=gone))
    final_status(worker, fourth["id"])
    assert server.handler.rcpt_commands.count(gone) == 2


def test_the_list_is_the_tenants_and_refuses_what_breaks_its_rules(start_worker, upstream,
                                                                   api_key):
    server = upstream().start()
    acme_2, other = new_api_key(), new_api_key()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        {**api_key_entry(api_key, "acme-1"), "tenant": "acme"},
        {**api_key_entry(acme_2, "acme-2"), "tenant": "acme"},
        {**api_key_entry(other, "other"), "tenant": "other"},
    ]))
    auth = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731

    # One key of the tenant adds; the other sees the same list.
    status, added, _ = worker.request("POST", "/v1/suppressions", {"suppressions": [
        {"address": "Bob@Example.net"},
        {"address": "carol@example.net", "scope": "topic:weekly", "reason": "unsubscribe",
         "detail": "asked by phone"},
    ]}, worker.auth)
    assert status == 200, added
    schema("SuppressionsAdded").validate(added)
    assert added["added"] == 2
    listed = suppressions(worker, key=acme_2)
    assert sorted((e["address"], e["scope"], e["reason"]) for e in listed) == [
        ("bob@example.net", "all", "manual"),
        ("carol@example.net", "topic:weekly", "unsubscribe"),
    ]
    assert suppressions(worker, key=acme_2, reason="unsubscribe")[0]["detail"] == "asked by phone"
    assert [e["address"] for e in suppressions(worker, key=acme_2, scope="all")] == ["bob@example.net"]

    # Another tenant sees nothing, removes nothing, and its mail to bob goes out.
    assert suppressions(worker, key=other) == []
    status, body, _ = worker.request("DELETE", "/v1/suppressions/bob@example.net",
                                     headers=auth(other))
    assert (status, body["error"]["rule"]) == (404, "not_found"), body
    status, sent, _ = worker.send(basic_message(to="bob@example.net"), key=other)
    assert final_status(worker, sent["id"], key=other)["status"] == "delivered"
    status, held, _ = worker.send(basic_message(to="bob@example.net"), key=acme_2)
    assert final_status(worker, held["id"], key=acme_2)["status"] == "suppressed"
    assert server.deliveries_to("bob@example.net") == 1
    # An entry for a topic never holds back a transactional message.
    status, sent, _ = worker.send(basic_message(to="carol@example.net"))
    assert final_status(worker, sent["id"])["status"] == "delivered"
    assert server.deliveries_to("carol@example.net") == 1

    # Pages with a cursor, newest first.
    status, body, _ = worker.request("POST", "/v1/suppressions", {"suppressions": [
        {"address": f"u{i}@example.net"} for i in range(5)]}, auth(acme_2))
    assert status == 200, body
    seen, cursor = [], None
    while True:
        status, body, _ = worker.request(
            "GET", "/v1/suppressions?limit=3" + (f"&cursor={cursor}" if cursor else ""),
            headers=worker.auth)
        assert status == 200, body
        schema("SuppressionPage").validate(body)
        assert len(body["data"]) <= 3
        seen += [(e["address"], e["scope"]) for e in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7, seen

    # Removal by one key, seen by the other; one scope at a time.
    status, body, _ = worker.request("DELETE", "/v1/suppressions/carol%40example.net?scope=all",
                                     headers=auth(acme_2))
    assert status == 404, body
    status, body, _ = worker.request(
        "DELETE", "/v1/suppressions/CAROL%40example.net?scope=topic:weekly", headers=auth(acme_2))
    assert (status, body) == (200, {"address": "carol@example.net", "removed": 1}), body
    assert suppressions(worker, address="carol@example.net") == []

    # Validation: every problem named by field and rule.
    status, body, _ = worker.request("POST", "/v1/suppressions", {"suppressions": [
        {"address": "ok@example.net"},
        {"address": "nobody", "scope": "everywhere", "reason": "bored", "expires_at": 1},
    ]}, worker.auth)
    assert status == 422, body
    schema("Error").validate(body)
    problems = [(d["field"], d["rule"]) for d in body["error"]["details"]]
    assert problems == [("suppressions[1].address", "missing_at"),
                        ("suppressions[1].scope", "invalid_scope"),
                        ("suppressions[1].reason", "invalid_reason"),
                        ("suppressions[1].expires_at", "in_the_past")], problems
    assert suppressions(worker, address="ok@example.net") == [], "all or nothing"
    for path, rule, field in [
        ("/v1/suppressions?scope=stream:", "invalid_scope", "scope"),
        ("/v1/suppressions?reason=bounce", "invalid_reason", "reason"),
        ("/v1/suppressions?limit=101", "out_of_range", "limit"),
        ("/v1/suppressions?cursor=abc", "invalid_cursor", "cursor"),
        ("/v1/suppressions?colour=red", "unknown_parameter", "colour"),
    ]:
        status, body, _ = worker.request("GET", path, headers=worker.auth)
        assert (status, body["error"]["field"], body["error"]["details"][0]["rule"]) \
            == (422, field, rule), (path, body)
    status, body, _ = worker.request("DELETE", "/v1/suppressions/not-an-address",
                                     headers=worker.auth)
    assert (status, body["error"]["field"]) == (422, "address"), body
    status, body, _ = worker.request("POST", "/v1/suppressions", raw=b"{", headers=worker.auth)
    assert (status, body["error"]["rule"]) == (400, "malformed_json"), body
    status, body, _ = worker.request("POST", "/v1/suppressions", {"suppressions": [
        {"address": f"x{i}@example.net"} for i in range(1001)]}, worker.auth)
    assert (status, body["error"]["rule"]) == (413, "too_large"), body

    # Keys: none is 401; a secret key from a page is 403 before it is looked at.
    status, body, _ = worker.request("GET", "/v1/suppressions")
    assert status == 401, body
    status, body, _ = worker.request("GET", "/v1/suppressions",
                                     headers={**worker.auth, "Origin": "https://app.example"})
    assert (status, body["error"]["rule"]) == (403, "secret_key_in_browser"), body
