"""Moving in from another provider, end to end on the built worker: a
SendGrid dynamic template imported as it is (keeping its id) and sent
through the official Resend and SendGrid Node SDKs changed only in their
base URL, arriving at a real SMTP server with every DKIM signature verified;
template errors reaching each SDK in its provider's shape; and every
suppression export format imported (fixtures in tests/fixtures/suppressions,
in the providers' documented layouts) so that sending to an imported
address is held back for the right scope, and only for it."""
import email
import json

import pytest

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, verified_by_all
from edgerelay_harness.paths import ROOT
from edgerelay_harness.sdk import node_sdk
from edgerelay_harness.poll import wait_for

FIXTURES = ROOT / "tests" / "fixtures" / "suppressions"
FROM = f"Shop <shop@{SENDER_DOMAIN}>"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")

# A dynamic template as SendGrid's GET /v3/templates/{id} answers it.
SENDGRID_ID = "d-0123456789abcdef0123456789abcdef"
RECEIPT = {
    "id": SENDGRID_ID,
    "name": "Receipt",
    "generation": "dynamic",
    "updated_at": "2024-01-01 00:00:00",
    "versions": [
        {"id": "v1", "template_id": SENDGRID_ID, "active": 0, "name": "old",
         "subject": "Old", "html_content": "<p>old</p>", "plain_content": "old"},
        {"id": "v2", "template_id": SENDGRID_ID, "active": 1, "name": "current",
         "editor": "code", "generate_plain_content": False,
         "subject": "Receipt for {{name}}",
         "html_content": "<p>Hi {{name}}</p><ul>{{#each items}}<li>{{this}}</li>{{/each}}</ul>"
                         "{{#if vip}}<b>VIP</b>{{/if}}",
         "plain_content": "Hi {{name}}, {{#each items}}{{this}} {{/each}}"},
    ],
}


@pytest.fixture
def relay(start_worker, upstream, api_key, dkim_ed25519, dkim_rsa):
    """A worker with the test key (every scope), its upstream, and a check
    of every DKIM signature."""
    server = upstream().start()
    keys = [api_key_entry(api_key, "e2e", tenant="e2e")]
    worker = start_worker(server.url, API_KEYS=json.dumps(keys))

    def verified(message) -> email.message.EmailMessage:
        return verified_by_all(message.data, dkim_ed25519, dkim_rsa)

    return worker, server, verified


def node(sdk: str, op: str, worker, key: str, **args) -> dict:
    """Runs one call of a Node SDK against the worker."""
    return node_sdk(sdk, op, worker.url, key, **args)


def arrived(server, to: str):
    return wait_for(lambda: next((m for m in server.messages if to in m.rcpt_tos), None),
                    what=f"the message to {to} at the upstream")


def parts(message) -> dict:
    out = {"subject": str(message["Subject"]), "to": str(message["To"])}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            out[part.get_content_type()] = part.get_content().strip()
    return out


def test_an_imported_sendgrid_template_sends_through_both_sdks(relay, api_key):
    worker, server, verified = relay
    auth = {"Authorization": f"Bearer {api_key}"}
    status, imported, _ = worker.request("POST", "/v1/templates/import", RECEIPT, auth)
    assert status == 201, imported
    tid = "tpl_0123456789abcdef0123456789abcdef"
    assert (imported["id"], imported["status"], imported["sendgrid_template_id"]) == (
        tid, "draft", SENDGRID_ID)
    assert imported["variables"] == [
        {"name": "items", "type": "list"},
        {"name": "name", "type": "string"},
        {"name": "vip", "type": "boolean", "fallback": False},
    ]
    status, again, _ = worker.request("POST", "/v1/templates/import", RECEIPT, auth)
    assert status == 409 and again["error"]["rule"] == "template_exists", again
    # A draft is not sent: the SDKs see their not-found.
    draft = node("resend", "send", worker, api_key, email={
        "from": FROM, "to": "ada@example.net", "template": {"id": tid, "variables": {}}})
    assert (draft["error"]["statusCode"], draft["error"]["name"]) == (404, "not_found"), draft
    status, _, _ = worker.request("POST", f"/v1/templates/{tid}/publish", None, auth)
    assert status == 200

    # Resend: template {id, variables}; the subject is the template's.
    sent = node("resend", "send", worker, api_key, email={
        "from": FROM, "to": "ada@example.net",
        "template": {"id": tid, "variables": {"name": "Ada <3", "items": ["tea", "cake"]}}})
    assert sent["error"] is None, sent
    got = parts(verified(arrived(server, "ada@example.net")))
    assert got["subject"] == "Receipt for Ada <3"
    assert got["text/html"] == "<p>Hi Ada &lt;3</p><ul><li>tea</li><li>cake</li></ul>"
    assert got["text/plain"] == "Hi Ada <3, tea cake"

    # SendGrid: templateId d-<hex> (the id the app already uses), each
    # personalization with its own dynamicTemplateData; the request's
    # subject is ignored, as SendGrid does with a dynamic template.
    message = {
        "from": {"email": f"shop@{SENDER_DOMAIN}", "name": "Shop"},
        "templateId": SENDGRID_ID,
        "subject": "ignored",
        "personalizations": [
            {"to": [{"email": "bob@example.net"}],
             "dynamicTemplateData": {"name": "Bob", "items": ["tea"], "vip": True}},
            {"to": [{"email": "carol@example.net"}],
             "dynamicTemplateData": {"name": "Carol", "items": []}},
        ],
    }
    answer = node("sendgrid", "send", worker, api_key, message=message)
    assert answer.get("statusCode") == 202, answer
    bob = parts(verified(arrived(server, "bob@example.net")))
    carol = parts(verified(arrived(server, "carol@example.net")))
    assert bob["subject"] == "Receipt for Bob"
    assert bob["text/html"] == "<p>Hi Bob</p><ul><li>tea</li></ul><b>VIP</b>"
    assert carol["subject"] == "Receipt for Carol"
    assert carol["text/html"] == "<p>Hi Carol</p><ul></ul>"

    # Errors, each in its provider's shape and naming the variable.
    missing = node("resend", "send", worker, api_key, email={
        "from": FROM, "to": "dan@example.net", "template": {"id": tid, "variables": {"name": "D"}}})
    assert (missing["error"]["statusCode"], missing["error"]["name"]) == (422, "validation_error")
    assert "template.variables.items" in missing["error"]["message"], missing
    undeclared = node("resend", "send", worker, api_key, email={
        "from": FROM, "to": "dan@example.net",
        "template": {"id": tid, "variables": {"name": "D", "items": [], "coupon": "X"}}})
    assert "template.variables.coupon" in undeclared["error"]["message"], undeclared
    unknown = node("resend", "send", worker, api_key, email={
        "from": FROM, "to": "dan@example.net", "template": {"id": "tpl_ffff", "variables": {}}})
    assert (unknown["error"]["statusCode"], unknown["error"]["name"]) == (404, "not_found")
    bad = dict(message, personalizations=[
        {"to": [{"email": "dan@example.net"}], "dynamicTemplateData": {"items": []}}])
    refused = node("sendgrid", "send", worker, api_key, message=bad)
    assert refused["code"] == 400, refused
    assert refused["body"]["errors"][0]["field"] == \
        "personalizations[0].dynamic_template_data.name", refused
    gone = node("sendgrid", "send", worker, api_key,
                message=dict(message, templateId="d-ffff"))
    assert gone["code"] == 404 and gone["body"]["errors"][0]["field"] == "template_id", gone
    assert not any("dan@example.net" in m.rcpt_tos for m in server.messages)


# Each format: the query, and the counts of its first import.
IMPORTS = [
    ("sendgrid_bounces", "", 2, 0, 0),
    ("sendgrid_blocks", "", 1, 0, 0),
    ("sendgrid_invalid_emails", "", 1, 0, 1),
    ("sendgrid_spam_reports", "", 1, 0, 0),
    ("sendgrid_global_unsubscribes", "", 1, 0, 0),
    ("sendgrid_group_unsubscribes", "&group_id=42", 1, 0, 0),
    ("mailgun_bounces", "", 1, 0, 0),
    ("mailgun_unsubscribes", "", 3, 0, 0),
    ("mailgun_complaints", "", 1, 0, 0),
    ("postmark", "", 3, 0, 0),
    ("resend", "", 1, 1, 0),
    ("csv", "", 3, 0, 0),
]

# Addresses each import holds back from every message.
EVERYWHERE = ["sg-bounce1@example.net", "sg-bounce2@example.net", "sg-block@example.net",
              "sg-invalid@example.net", "sg-spam@example.net", "sg-unsub@example.net",
              "mg-bounce@example.net", "mg-unsub-all@example.net", "mg-complaint@example.net",
              "pm-bounce@example.net", "pm-spam@example.net", "pm-manual@example.net",
              "csv-all@example.org", "csv-complaint@example.org"]


def outcome(worker, message: dict) -> str:
    status, body, _ = worker.send(message)
    assert status == 202, body
    return wait_for(lambda: (s := worker.status(body["id"])["status"]) in FINAL and s,
                    what="the message's final status")


def test_every_export_format_imports_and_holds_back_the_right_scope(relay, api_key):
    worker, server, _ = relay
    auth = {"Authorization": f"Bearer {api_key}", "Content-Type": "text/csv"}
    for fmt, extra, imported, skipped, invalid in IMPORTS:
        body = (FIXTURES / f"{fmt}.csv").read_bytes()
        path = f"/v1/suppressions/import?format={fmt}{extra}"
        status, got, _ = worker.request("POST", path, headers=auth, raw=body)
        assert status == 200, (fmt, got)
        assert (got["imported"], got["skipped"], got["invalid_count"]) == (
            imported, skipped, invalid), (fmt, got)
        assert got["already_present"] == 0 and got["capped"] is False, (fmt, got)
        # Again: nothing changes.
        status, again, _ = worker.request("POST", path, headers=auth, raw=body)
        assert (again["imported"], again["already_present"]) == (0, imported), (fmt, again)
    status, bad, _ = worker.request("POST", "/v1/suppressions/import?format=mandrill",
                                    headers=auth, raw=b"email\na@example.net\n")
    assert status == 422 and bad["error"]["details"][0]["rule"] == "invalid_format", bad
    status, listed, _ = worker.request("GET", "/v1/suppressions?address=sg-group@example.net",
                                       headers={"Authorization": f"Bearer {api_key}"})
    assert [(e["scope"], e["reason"]) for e in listed["data"]] == [("topic:asm-42", "unsubscribe")]

    def mail(to, **extra):
        m = {"from": FROM, "to": to, "subject": "Hello", "text": "Hi"}
        m.update(extra)
        return m

    # Transactional mail: every address with an `all` entry is held back;
    # those suppressed for a topic or the marketing stream are not.
    status, body, _ = worker.send(mail(EVERYWHERE + ["sg-group@example.net",
                                                     "mg-unsub-news@example.net",
                                                     "csv-topic@example.org",
                                                     "rs-unsub@example.net"]))
    assert status == 202, body
    record = wait_for(lambda: (r := worker.status(body["id"]))["status"] in FINAL and r,
                      what="the transactional message's final status")
    states = {r["address"]: r["state"] for r in record["recipients"]}
    assert {a for a, s in states.items() if s == "suppressed"} == set(EVERYWHERE), states
    assert states["sg-group@example.net"] == "delivered"
    assert states["rs-unsub@example.net"] == "delivered"

    # A topic holds back that topic's mail and no other.
    marketing = {"stream": "marketing", "text": "Hi. Leave: {{unsubscribe_url}}"}
    table = [
        ("sg-group@example.net", "asm-42", "suppressed"),
        ("sg-group@example.net", "asm-43", "delivered"),
        ("mg-unsub-news@example.net", "newsletter", "suppressed"),
        ("mg-unsub-news@example.net", "promo", "suppressed"),
        ("mg-unsub-news@example.net", "weekly", "delivered"),
        ("csv-topic@example.org", "digest", "suppressed"),
        ("csv-topic@example.org", "weekly", "delivered"),
        # Resend's unsubscribed flag: the marketing stream, any topic.
        ("rs-unsub@example.net", "weekly", "suppressed"),
        ("rs-subscribed@example.net", "weekly", "delivered"),
    ]
    for to, topic, want in table:
        got = outcome(worker, mail(to, topic=topic, **marketing))
        assert got == want, (to, topic, got)
    delivered = {r for m in server.messages for r in m.rcpt_tos}
    assert not delivered & set(EVERYWHERE), delivered
