"""The Resend and SendGrid doors, driven by the providers' official SDKs
(Resend's Node and Python SDKs, SendGrid's Node and Python clients) changed
only in their base URL: mail arrives at a real SMTP server on loopback,
DKIM-signed (verified by dkimpy) with the request's headers, tags and
metadata; errors reach each SDK as its own error types; idempotency replays;
a permissive batch lists its refusals; sandbox mode sends nothing; a key
without the `send` scope, or a From domain the key may not use, is refused."""
import base64
import email
import json

import pytest
import python_http_client
import resend
import sendgrid
from sendgrid.helpers.mail import (Category, Content, CustomArg, Header, Mail, MailSettings,
                                   Personalization, SandBoxMode, Substitution, To)

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, new_api_key, verified_by_all
from edgerelay_harness.poll import wait_for
from edgerelay_harness.sdk import node_sdk

FROM = f"Acme <news@{SENDER_DOMAIN}>"
READ_ONLY_KEY = new_api_key()


@pytest.fixture
def relay(start_worker, upstream, api_key, dkim_ed25519, dkim_rsa):
    """A worker with the test key and a key that may only read, its
    upstream, and a check of every DKIM signature."""
    server = upstream().start()
    keys = [api_key_entry(api_key, "e2e", tenant="e2e"),
            dict(api_key_entry(READ_ONLY_KEY, "reader", tenant="e2e"), scopes=["read"])]
    worker = start_worker(server.url, API_KEYS=json.dumps(keys))

    def verified(message) -> email.message.EmailMessage:
        return verified_by_all(message.data, dkim_ed25519, dkim_rsa)

    return worker, server, verified


def node(sdk: str, op: str, worker, key: str, **args) -> dict:
    """Runs one call of a Node SDK against the worker."""
    return node_sdk(sdk, op, worker.url, key, **args)


def messages(worker) -> list:
    status, body, _ = worker.request("GET", "/v1/messages?limit=100", headers=worker.auth)
    assert status == 200, body
    return body["data"]


def arrived(server, subject: str):
    return wait_for(lambda: next((m for m in server.messages
                                  if f"Subject: {subject}".encode() in m.data), None),
                    what=f"the message {subject!r} at the upstream")


def test_resend_node_sdk_sends_replays_and_reads_back(relay, api_key):
    worker, server, verified = relay
    email_ = {
        "from": FROM, "to": ["bob@example.net"], "subject": "Resend node",
        "html": "<p>Hello</p>", "text": "Hello",
        "headers": {"X-Entity-Ref-ID": "ref-42"},
        "tags": [{"name": "category", "value": "welcome"}],
        "attachments": [{"filename": "a.txt", "content": base64.b64encode(b"hi there").decode()}],
    }
    options = {"idempotencyKey": "welcome/42"}
    sent = node("resend", "send", worker, api_key, email=email_, options=options)
    assert sent["error"] is None, sent
    message_id = sent["data"]["id"]
    received = verified(arrived(server, "Resend node"))
    assert received["X-Entity-Ref-ID"] == "ref-42"
    assert received["To"] == "bob@example.net"
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "a.txt" and attachment.get_content() == b"hi there"
    status = worker.status(message_id)
    assert status["tags"] == {"category": "welcome"}

    # The same key and body: the first answer again, nothing sent twice.
    again = node("resend", "send", worker, api_key, email=email_, options=options)
    assert again["data"] == {"id": message_id}, again
    assert [m["id"] for m in messages(worker)] == [message_id]
    # The same key, another body: Resend's invalid_idempotent_request.
    other = node("resend", "send", worker, api_key, email=dict(email_, subject="Other"),
                 options=options)
    assert other["data"] is None
    assert (other["error"]["statusCode"], other["error"]["name"]) == (
        409, "invalid_idempotent_request"), other

    # Read back: the smarthost's 250 is "sent", not "delivered".
    wait_for(lambda: worker.status(message_id)["status"] == "delivered", what="delivered")
    got = node("resend", "get", worker, api_key, id=message_id)
    assert got["error"] is None, got
    assert got["data"]["object"] == "email" and got["data"]["id"] == message_id
    assert got["data"]["last_event"] == "sent"
    assert got["data"]["to"] == ["bob@example.net"]
    missing = node("resend", "get", worker, api_key, id="0" * 32)
    assert missing["error"]["name"] == "not_found"


def test_resend_node_sdk_errors_are_resend_errors(relay, api_key):
    worker, server, _ = relay
    base = {"from": FROM, "to": "bob@example.net", "subject": "s", "text": "t"}
    cases = [
        (dict(base, subject=None), api_key, 422, "missing_required_field"),
        (dict(base, to="not an address"), api_key, 422, "validation_error"),
        (dict(base, scheduledAt="tomorrow at 9am"), api_key, 422, "validation_error"),
        (dict(base, **{"from": "Mallory <m@foreign.example>"}), api_key, 403, "validation_error"),
        (base, "er_test_not_a_key", 403, "invalid_api_key"),
        (base, READ_ONLY_KEY, 401, "restricted_api_key"),
    ]
    for body, key, status, name in cases:
        got = node("resend", "send", worker, key, email=body)
        assert got["data"] is None, (body, got)
        assert (got["error"]["statusCode"], got["error"]["name"]) == (status, name), (body, got)
    scheduled = node("resend", "send", worker, api_key,
                     email=dict(base, scheduledAt="tomorrow at 9am"))
    assert "scheduled_at" in scheduled["error"]["message"]
    assert "in 10 minutes" in scheduled["error"]["message"]
    canceled = node("resend", "cancel", worker, api_key, id="0" * 32)
    assert canceled["error"]["name"] == "not_found", canceled
    assert messages(worker) == []


def test_resend_node_sdk_batches_strict_and_permissive(relay, api_key):
    worker, server, verified = relay
    good = [{"from": FROM, "to": f"user{i}@example.net", "subject": f"Batch {i}", "text": "x"}
            for i in range(2)]
    bad = {"from": FROM, "to": "not an address", "subject": "Batch bad", "text": "x"}
    strict = node("resend", "batch", worker, api_key, emails=[good[0], bad, good[1]])
    assert strict["data"] is None, strict
    assert strict["error"]["name"] == "validation_error"
    assert "emails[1]" in strict["error"]["message"]
    assert messages(worker) == []  # strict: nothing was sent

    permissive = node("resend", "batch", worker, api_key, emails=[good[0], bad, good[1]],
                      options={"batchValidation": "permissive"})
    assert permissive["error"] is None, permissive
    ids = [item["id"] for item in permissive["data"]["data"]]
    assert len(ids) == 2
    [refused] = permissive["data"]["errors"]
    assert refused["index"] == 1 and refused["message"]
    for i in range(2):
        verified(arrived(server, f"Batch {i}"))
    assert sorted(m["id"] for m in messages(worker)) == sorted(ids)


def test_resend_python_sdk(relay, api_key, monkeypatch):
    worker, server, verified = relay
    # The documented switch for the Python SDK: resend.api_url.
    monkeypatch.setattr(resend, "api_url", worker.url)
    monkeypatch.setattr(resend, "api_key", api_key)
    params = {"from": FROM, "to": ["carol@example.net"], "subject": "Resend python",
              "html": "<p>Hi</p>", "tags": [{"name": "kind", "value": "python"}],
              "attachments": [{"filename": "b.bin", "content": list(b"bytes")}]}
    sent = resend.Emails.send(params, {"idempotency_key": "py/1"})
    received = verified(arrived(server, "Resend python"))
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content() == b"bytes"
    assert resend.Emails.send(params, {"idempotency_key": "py/1"})["id"] == sent["id"]
    assert worker.status(sent["id"])["tags"] == {"kind": "python"}

    with pytest.raises(resend.exceptions.MissingRequiredFieldsError):
        resend.Emails.send({"from": FROM, "to": "carol@example.net", "html": "x"})
    with pytest.raises(resend.exceptions.ValidationError):
        resend.Emails.send(dict(params, to="nobody"))
    monkeypatch.setattr(resend, "api_key", "er_test_not_a_key")
    with pytest.raises(resend.exceptions.InvalidApiKeyError):
        resend.Emails.send(params)
    monkeypatch.setattr(resend, "api_key", READ_ONLY_KEY)
    with pytest.raises(resend.exceptions.ResendError) as refused:
        resend.Emails.send(params)
    assert refused.value.error_type == "restricted_api_key"
    # A read key may read.
    assert resend.Emails.get(sent["id"])["object"] == "email"
    assert [m["id"] for m in messages(worker)] == [sent["id"]]


def test_sendgrid_python_client(relay, api_key):
    worker, server, verified = relay
    # The documented switch for SendGrid's Python client: host=.
    client = sendgrid.SendGridAPIClient(api_key, host=worker.url)
    mail = Mail(from_email=FROM, subject="SG -who-")
    for who in ("dan", "erin"):
        p = Personalization()
        p.add_to(To(f"{who}@example.net"))
        p.add_substitution(Substitution("-who-", who.title()))
        p.add_custom_arg(CustomArg("user", who))
        if who == "erin":
            p.subject = "SG override"
            p.add_header(Header("X-Who", "erin"))
        mail.add_personalization(p)
    mail.add_content(Content("text/plain", "Hello -who-"))
    mail.add_category(Category("onboarding"))
    mail.add_custom_arg(CustomArg("campaign", "spring"))
    answer = client.send(mail)
    assert answer.status_code == 202
    first_id = answer.headers["X-Message-Id"]
    dan = verified(arrived(server, "SG Dan"))
    erin = verified(arrived(server, "SG override"))
    assert dan["To"] == "dan@example.net" and dan.get_content().strip() == "Hello Dan"
    assert erin["X-Who"] == "erin" and erin.get_content().strip() == "Hello Erin"
    listed = {m["id"]: m for m in messages(worker)}
    assert first_id in listed and len(listed) == 2
    assert all(m["tags"] == {"category": "onboarding"} for m in listed.values())

    # Sandbox mode: validated and answered, nothing sent.
    sandbox = Mail(from_email=FROM, to_emails="frank@example.net", subject="SG sandbox",
                   plain_text_content="x")
    sandbox.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
    assert client.send(sandbox).status_code == 200
    assert len(messages(worker)) == 2

    foreign = Mail(from_email="m@foreign.example", to_emails="frank@example.net",
                   subject="x", plain_text_content="x")
    with pytest.raises(python_http_client.exceptions.ForbiddenError) as refused:
        client.send(foreign)
    assert json.loads(refused.value.body)["errors"][0]["field"] == "from.email"
    with pytest.raises(python_http_client.exceptions.ForbiddenError):
        sendgrid.SendGridAPIClient(READ_ONLY_KEY, host=worker.url).send(sandbox)
    with pytest.raises(python_http_client.exceptions.UnauthorizedError):
        sendgrid.SendGridAPIClient("SG.not_a_key", host=worker.url).send(sandbox)
    # A template that does not exist (test_moving_in.py sends real ones).
    template = Mail(from_email=FROM, to_emails="frank@example.net", subject="x")
    template.template_id = "d-0123"
    with pytest.raises(python_http_client.exceptions.NotFoundError) as unknown:
        client.send(template)
    assert json.loads(unknown.value.body)["errors"][0]["field"] == "template_id"
    assert len(messages(worker)) == 2


def test_sendgrid_node_client(relay, api_key):
    worker, server, verified = relay
    message = {"to": "gina@example.net", "from": {"email": f"news@{SENDER_DOMAIN}", "name": "Acme"},
               "subject": "SG node", "text": "Hi", "html": "<p>Hi</p>",
               "categories": ["news"], "customArgs": {"user": "gina"},
               "headers": {"X-Campaign": "node"}}
    sent = node("sendgrid", "send", worker, api_key, message=message)
    assert sent.get("statusCode") == 202, sent
    received = verified(arrived(server, "SG node"))
    assert received["X-Campaign"] == "node"
    status = worker.status(sent["headers"]["x-message-id"])
    assert status["tags"] == {"category": "news"}

    refused = node("sendgrid", "send", worker, api_key, message=dict(message, to="nobody"))
    assert (refused["thrown"], refused["code"]) == ("ResponseError", 400), refused
    assert refused["body"]["errors"][0]["field"] == "personalizations[0].to[0]", refused
    too_far = node("sendgrid", "send", worker, api_key, message=dict(message, sendAt=1_900_000_000))
    assert (too_far["thrown"], too_far["code"]) == ("ResponseError", 400), too_far
    assert too_far["body"]["errors"][0]["field"] == "personalizations[0].send_at", too_far
