"""Keys as data and scopes, end to end, on the built worker in workerd with
its local D1.

A key issued through POST /v1/keys sends at once (a real delivery to the
test SMTP server) within its domains and scopes; a revoked key is refused by
the next request; a rotation gives a working key and refuses the old one;
an admin key cannot issue a key wider than itself; a send-only key cannot
read or administer, and a read key cannot send. Afterwards no clear key is
found in any column of any table of the local D1, nor in the worker's log."""
import json
import re
import sqlite3

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, basic_message, new_api_key
from edgerelay_harness.local_d1 import database, every_text
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for

OTHER_DOMAIN = "example.org"
ISSUED = re.compile(r"^er_[A-Za-z0-9_-]{43}$")


def entry(secret, key_id, tenant, domains=(SENDER_DOMAIN, OTHER_DOMAIN), scopes=None,
          limits=None):
    e = api_key_entry(secret, key_id, domains=list(domains), tenant=tenant)
    if scopes is not None:
        e["scopes"] = scopes
    if limits is not None:
        e["limits"] = limits
    return e


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def create(worker, admin, **fields):
    return worker.request("POST", "/v1/keys", fields, bearer(admin))


def delivered(server, subject):
    return wait_for(lambda: [m for m in server.messages if subject.encode() in m.data],
                    timeout=60, what=f"a delivery of {subject!r}")


def refused_for_scope(reply, scope):
    status, body, _ = reply
    assert status == 403, body
    assert body["error"]["rule"] == "insufficient_scope", body
    assert f"`{scope}` scope" in body["error"]["message"], body


def test_an_issued_key_works_at_once_within_its_grant_and_a_revoked_one_is_refused(
        start_worker, upstream):
    admin, sender, reader, outsider = (new_api_key() for _ in range(4))
    server = upstream().start()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        entry(admin, "ops", "acme"),
        entry(sender, "sender", "acme", scopes=["send"]),
        entry(reader, "reader", "acme", scopes=["read"]),
        entry(outsider, "other-ops", "other"),
    ]))
    secrets = [admin, sender, reader, outsider]

    # Scopes on the keys of API_KEYS: send-only cannot read or administer,
    # read cannot send nor administer.
    refused_for_scope(worker.request("GET", "/v1/messages", headers=bearer(sender)), "read")
    refused_for_scope(worker.request("GET", "/v1/suppressions", headers=bearer(sender)), "read")
    refused_for_scope(worker.request("GET", "/v1/webhooks", headers=bearer(sender)), "admin")
    refused_for_scope(create(worker, sender, name="x", scopes=["send"], domains=[SENDER_DOMAIN]),
                      "admin")
    refused_for_scope(worker.send(basic_message(), key=reader), "send")
    refused_for_scope(worker.request("POST", "/v1/messages/batch", [basic_message()],
                                     bearer(reader)), "send")
    refused_for_scope(worker.request("GET", "/v1/keys", headers=bearer(reader)), "admin")
    refused_for_scope(worker.request("POST", "/v1/suppressions",
                                     {"suppressions": [{"address": "a@example.net"}]},
                                     bearer(reader)), "admin")
    s, body, _ = worker.request("GET", "/v1/messages", headers=bearer(reader))
    assert s == 200, body

    # Issue a send-only key for one domain: it is shown once and works at once.
    s, made, _ = create(worker, admin, name="billing", scopes=["send"], domains=["EXAMPLE.com"])
    assert s == 201, made
    schema("ApiKeyCreated").validate(made)
    key = made["key"]
    secrets.append(key)
    assert ISSUED.match(key), key
    assert made["id"].startswith("key_") and made["source"] == "api"
    assert made["prefix"] == key[:8] and made["tenant"] == "acme"
    assert (made["scopes"], made["domains"]) == (["send"], [SENDER_DOMAIN])
    assert made["created_by"] == "ops" and made["revoked_at"] is None
    s, accepted, _ = worker.send(basic_message(subject="Sent with an issued key"), key=key)
    assert s == 202, accepted
    got = delivered(server, "Sent with an issued key")
    assert got[0].rcpt_tos == ["rcpt@example.net"]
    # Within its domains and scopes only.
    s, body, _ = worker.send(basic_message(**{"from": f"Edge <hello@{OTHER_DOMAIN}>"}), key=key)
    assert (s, body["error"]["rule"]) == (403, "domain_not_allowed"), body
    refused_for_scope(worker.request("GET", f"/v1/messages/{accepted['id']}",
                                     headers=bearer(key)), "read")
    refused_for_scope(worker.request("GET", "/v1/keys", headers=bearer(key)), "admin")
    # The admin key of its tenant reads the message it sent.
    s, body, _ = worker.request("GET", f"/v1/messages/{accepted['id']}", headers=bearer(admin))
    assert s == 200, body

    # Listed without secrets, beside the tenant's keys of API_KEYS.
    s, listed, _ = worker.request("GET", "/v1/keys", headers=bearer(admin))
    assert s == 200, listed
    schema("ApiKeyList").validate(listed)
    by_id = {k["id"]: k for k in listed["data"]}
    assert set(by_id) == {made["id"], "ops", "sender", "reader"}, by_id
    assert by_id["sender"]["source"] == "settings" and by_id["sender"]["scopes"] == ["send"]
    assert by_id[made["id"]]["prefix"] == key[:8]
    assert key not in json.dumps(listed) and "key" not in by_id[made["id"]]
    s, one, _ = worker.request("GET", f"/v1/keys/{made['id']}", headers=bearer(admin))
    assert s == 200 and one == by_id[made["id"]], one
    # Another tenant sees none of it.
    s, theirs, _ = worker.request("GET", "/v1/keys", headers=bearer(outsider))
    assert [k["id"] for k in theirs["data"]] == ["other-ops"], theirs
    for method in ("GET", "DELETE"):
        s, body, _ = worker.request(method, f"/v1/keys/{made['id']}", headers=bearer(outsider))
        assert s == 404, body

    # Keys of API_KEYS are not changed through the API.
    for method, path in (("DELETE", "/v1/keys/sender"), ("POST", "/v1/keys/sender/rotate")):
        s, body, _ = worker.request(method, path, headers=bearer(admin))
        assert (s, body["error"]["rule"]) == (409, "settings_key"), (method, body)
        assert "API_KEYS" in body["error"]["message"]

    # Revoked: refused by the very next request.
    s, revoked, _ = worker.request("DELETE", f"/v1/keys/{made['id']}", headers=bearer(admin))
    assert s == 200 and revoked["revoked_at"] is not None, revoked
    s, body, _ = worker.send(basic_message(subject="After revocation"), key=key)
    assert (s, body["error"]["rule"]) == (401, "invalid_api_key"), body
    s, body, _ = worker.request("POST", f"/v1/keys/{made['id']}/rotate", headers=bearer(admin))
    assert (s, body["error"]["rule"]) == (409, "key_revoked"), body

    assert_no_clear_key(worker, secrets)
    assert not any(b"After revocation" in m.data for m in server.messages)


def test_rotation_gives_a_working_key_and_no_key_is_issued_wider_than_its_maker(
        start_worker, upstream):
    admin, narrow = new_api_key(), new_api_key()
    server = upstream().start()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        entry(admin, "ops", "acme"),
        entry(narrow, "team-admin", "acme", domains=[SENDER_DOMAIN], scopes=["admin"],
              limits={"per_second": 5}),
    ]))
    secrets = [admin, narrow]

    s, made, _ = create(worker, admin, name="app", scopes=["send", "read"],
                        domains=[SENDER_DOMAIN], limits={"per_day": 1000})
    assert s == 201, made
    old = made["key"]
    secrets.append(old)
    s, body, _ = worker.send(basic_message(subject="Before rotation"), key=old)
    assert s == 202, body

    # Rotation: a new key with the same grant; the old one refused at once.
    s, rotated, _ = worker.request("POST", f"/v1/keys/{made['id']}/rotate", {}, bearer(admin))
    assert s == 201, rotated
    schema("ApiKeyCreated").validate(rotated)
    new = rotated["key"]
    secrets.append(new)
    assert ISSUED.match(new) and new != old
    assert rotated["rotated_from"] == made["id"] and rotated["id"] != made["id"]
    for field in ("name", "scopes", "domains", "limits", "tenant"):
        assert rotated[field] == made[field], field
    s, body, _ = worker.send(basic_message(subject="With the old key"), key=old)
    assert (s, body["error"]["rule"]) == (401, "invalid_api_key"), body
    s, body, _ = worker.send(basic_message(subject="With the rotated key"), key=new)
    assert s == 202, body
    delivered(server, "With the rotated key")
    s, body, _ = worker.request("GET", f"/v1/messages/{body['id']}", headers=bearer(new))
    assert s == 200, body
    # The old key cannot be rotated again.
    s, body, _ = worker.request("POST", f"/v1/keys/{made['id']}/rotate", {}, bearer(admin))
    assert (s, body["error"]["rule"]) == (409, "key_revoked"), body

    # With a grace period both work until it ends.
    s, graced, _ = worker.request("POST", f"/v1/keys/{rotated['id']}/rotate",
                                  {"grace_seconds": 600}, bearer(admin))
    assert s == 201, graced
    secrets.append(graced["key"])
    for k in (new, graced["key"]):
        s, body, _ = worker.send(basic_message(subject="During the grace period"), key=k)
        assert s == 202, body
    s, body, _ = worker.request("GET", f"/v1/keys/{rotated['id']}", headers=bearer(admin))
    assert body["revoked_at"] is not None, body
    s, body, _ = worker.request("POST", f"/v1/keys/{rotated['id']}/rotate", {"grace_seconds": 3601},
                                bearer(admin))
    assert (s, body["error"]["field"]) == (422, "grace_seconds"), body

    # No privilege escalation: an admin-only key for one domain, limited to
    # 5 requests a second, gives no more than it has.
    for fields, field in [
        ({"scopes": ["send"], "domains": [SENDER_DOMAIN]}, "scopes"),
        ({"scopes": ["read"], "domains": [SENDER_DOMAIN, OTHER_DOMAIN]}, "domains[1]"),
        ({"scopes": ["read"], "domains": [SENDER_DOMAIN], "limits": {"per_second": 6}},
         "limits.per_second"),
    ]:
        s, body, _ = create(worker, narrow, name="wider", **fields)
        assert (s, body["error"]["rule"], body["error"]["field"]) == (
            403, "privilege_escalation", field), body
    # What it holds it may give, and the limit it has is inherited.
    s, team, _ = create(worker, narrow, name="team", scopes=["admin", "read"],
                        domains=[SENDER_DOMAIN])
    assert s == 201, team
    secrets.append(team["key"])
    assert team["limits"] == {"per_second": 5}, team
    # An issued admin key is held to the same rule.
    s, body, _ = create(worker, team["key"], name="wider", scopes=["send"],
                        domains=[SENDER_DOMAIN])
    assert (s, body["error"]["rule"]) == (403, "privilege_escalation"), body
    s, child, _ = create(worker, team["key"], name="child", scopes=["read"],
                         domains=[SENDER_DOMAIN])
    assert s == 201 and child["created_by"] == team["id"], child
    secrets.append(child["key"])
    # Requests that are not keys: 422 naming the field and rule.
    s, body, _ = create(worker, admin, name="", scopes=["root"], domains=[])
    assert s == 422, body
    assert {(d["field"], d["rule"]) for d in body["error"]["details"]} == {
        ("name", "invalid_length"), ("scopes[0]", "unknown_scope"), ("domains", "empty")}, body

    assert_no_clear_key(worker, secrets)


def assert_no_clear_key(worker, secrets):
    """No key, nor any 20-character stretch of one, in any column of any table
    of the local D1 or in the worker's log; issued keys are stored as their
    digest and 8-character prefix."""
    stretches = {s[i:i + 20] for s in secrets for i in range(0, len(s) - 19)}
    with sqlite3.connect(database(worker), timeout=10) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert "api_keys" in tables, tables
    found = [(table, column) for table, column, value in every_text(worker)
             if any(p in value for p in stretches)]
    assert found == [], found
    log = worker.log()
    assert "/v1/keys" in log  # the log is the worker's, and was written
    assert not [p for p in stretches if p in log]
    with sqlite3.connect(database(worker), timeout=10) as db:
        rows = db.execute("SELECT sha256, prefix FROM api_keys").fetchall()
    assert rows and all(len(sha) == 64 and len(prefix) == 8 for sha, prefix in rows), rows
