"""Stored templates end to end on the built worker: saved as a draft (checked:
undeclared variables refused), not sent until published, rendered into a real
delivery (HTML escaped, text not, fallbacks filled in), sends that give a
wrong or missing variable refused naming it, batches rendering each item,
scopes enforced and one tenant never seeing another's templates."""
import email
import email.policy
import json

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, new_api_key
from edgerelay_harness.poll import wait_for

WELCOME = {
    "name": "welcome",
    "subject": "Welcome, {{name}}",
    "html": "<p>Hi {{name}}</p>{{#if coupon}}<p>Code {{coupon}}</p>{{/if}}",
    "text": "Hi {{name}} & friends{{#if coupon}}, code {{coupon}}{{/if}}",
    "variables": [{"name": "name", "type": "string"},
                  {"name": "coupon", "type": "string", "fallback": "WELCOME10"}],
}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def using(template_id, to="ada@example.net", **variables):
    return {"from": f"Shop <shop@{SENDER_DOMAIN}>", "to": to,
            "template": {"id": template_id, "variables": variables}}


def parts(data: bytes) -> dict:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out = {"subject": str(msg["Subject"])}
    for part in msg.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            out[part.get_content_type()] = part.get_content()
    return out


def unknown(reply):
    status, body, _ = reply
    assert status == 404 and body["error"]["field"] == "template.id", body
    return True


def problem(reply):
    status, body, _ = reply
    assert status == 422, body
    detail = body["error"]["details"][0]
    return detail["field"], detail["rule"]


def test_a_published_template_is_rendered_into_the_delivered_message(start_worker, upstream):
    admin, sender, other = new_api_key(), new_api_key(), new_api_key()
    server = upstream().start()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(admin, "ops", tenant="acme"),
        {**api_key_entry(sender, "app", tenant="acme"), "scopes": ["send"]},
        api_key_entry(other, "elsewhere", tenant="other"),
    ]))

    # Saving checks the template; a send-only key cannot save one.
    status, body, _ = worker.request("POST", "/v1/templates", WELCOME, bearer(sender))
    assert status == 403 and body["error"]["rule"] == "insufficient_scope", body
    bad = {**WELCOME, "text": "Hi {{nmae}}"}
    assert problem(worker.request("POST", "/v1/templates", bad, bearer(admin))) == \
        ("text", "undeclared_variable")
    status, created, _ = worker.request("POST", "/v1/templates", WELCOME, bearer(admin))
    assert status == 201 and created["status"] == "draft", created
    tid = created["id"]

    # A draft is not sent; another tenant does not see it at all.
    assert unknown(worker.send(using(tid, name="Ada"), key=sender))
    status, _, _ = worker.request("GET", f"/v1/templates/{tid}", headers=bearer(other))
    assert status == 404
    assert unknown(worker.send(using(tid, name="Ada"), key=other))

    status, published, _ = worker.request("POST", f"/v1/templates/{tid}/publish",
                                          headers=bearer(admin))
    assert status == 200 and published["status"] == "published", published

    status, body, _ = worker.send(using(tid, name="<Ada & Bo>"), key=sender)
    assert status == 202, body
    got = wait_for(lambda: server.messages and parts(server.messages[0].data),
                   what="the rendered message")
    assert got["subject"] == "Welcome, <Ada & Bo>"
    assert got["text/html"].strip() == "<p>Hi &lt;Ada &amp; Bo&gt;</p><p>Code WELCOME10</p>"
    assert got["text/plain"].strip() == "Hi <Ada & Bo> & friends, code WELCOME10"

    # Variables are checked by name and type, and needed ones must be given.
    assert problem(worker.send(using(tid), key=sender)) == \
        ("template.variables.name", "missing_variable")
    assert problem(worker.send(using(tid, name=7), key=sender)) == \
        ("template.variables.name", "invalid_type")
    assert problem(worker.send(using(tid, name="A", colour="red"), key=sender)) == \
        ("template.variables.colour", "undeclared_variable")
    both = {**using(tid, name="A"), "html": "<p>mine</p>"}
    assert problem(worker.send(both, key=sender)) == ("html", "conflicting_fields")

    # A batch renders each item on its own.
    batch = [using(tid, to="b1@example.net", name="Bea"), using(tid, to="b2@example.net")]
    status, body, _ = worker.request("POST", "/v1/messages/batch", batch, bearer(sender))
    assert status == 207 and body["accepted"] == 1, body
    assert body["results"][1]["error"]["details"][0]["field"] == "template.variables.name"
    wait_for(lambda: any(parts(m.data)["subject"] == "Welcome, Bea" for m in server.messages),
             what="the batch item")

    # Listing and deleting; a deleted template is no longer sent.
    status, listed, _ = worker.request("GET", "/v1/templates", headers=bearer(admin))
    assert status == 200 and [t["id"] for t in listed["data"]] == [tid], listed
    status, _, _ = worker.request("DELETE", f"/v1/templates/{tid}", headers=bearer(admin))
    assert status == 200
    assert unknown(worker.send(using(tid, name="Ada"), key=sender))
