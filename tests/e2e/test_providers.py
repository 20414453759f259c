"""The smarthost providers' event webhooks end to end (docs/providers.md).

A message goes through the worker to a real SMTP upstream marked
`?provider=sendgrid`: it arrives with SendGrid's `X-SMTPAPI` header naming
the message, in front of a DKIM signature that still verifies. Then each
provider's documented payload (tests/fixtures/providers/) is posted the way
that provider signs it, with test keys: Mailgun's HMAC, SendGrid's ECDSA
P-256, Postmark's basic auth, and SES through an SNS message signed with
SignatureVersion 2, its certificate served on loopback (the diagnostics
build's SNS_LOOPBACK_URLS). Signed events reach the right message and
recipient, hard bounces and complaints suppress the next send; unsigned,
wrongly signed, stale and replayed requests change nothing; events for an
unknown message or another tenant's are kept as unmatched.

The smarthost here keeps edgerelay's MAIL FROM, but nothing below depends
on it: events match through the provider header alone, as they must when a
provider rewrites MAIL FROM to its own return path.

One worker (the diagnostics build) serves most of the module; the other
providers' headers are checked on the release build."""
import base64
import email
import hashlib
import hmac
import json
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import dkim
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from edgerelay_harness.client import Worker
from edgerelay_harness.keys import api_key_entry, basic_message, dkim_dns, new_api_key, relay_vars
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Upstream
from edgerelay_harness.wrangler import WranglerDev, worker_config

FIXTURES = ROOT / "tests" / "fixtures" / "providers"
SNS_CERT = (ROOT / "tests" / "fixtures" / "sns" / "signing-cert.pem").read_bytes()
SNS_KEY = serialization.load_pem_private_key(
    (ROOT / "src" / "message" / "dkim" / "testdata" / "rsa2048.pkcs8.pem").read_bytes(), None)
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")
OTHER_TENANT = "globex"


class SnsHost:
    """Stands in for sns.<region>.amazonaws.com on loopback: serves the
    signing certificate and records every request (a subscription
    confirmation is a GET of its SubscribeURL)."""

    def __init__(self):
        self.paths: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                host.paths.append(self.path)
                body = SNS_CERT if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Relay:
    worker: Worker
    upstream: Upstream
    sns: SnsHost
    other_key: str
    mailgun_key: str
    sendgrid_key: ec.EllipticCurvePrivateKey
    postmark: tuple


@pytest.fixture(scope="module")
def relay(tmp_path_factory, tls_paths, dkim_ed25519, dkim_rsa, api_key, migrated_state):
    server = Upstream(tls_paths).start()
    sns = SnsHost()
    other_key = new_api_key()
    mailgun_key = "key-" + secrets.token_hex(16)
    sendgrid_key = ec.generate_private_key(ec.SECP256R1())
    sendgrid_public = base64.b64encode(sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    postmark = ("pm-hook", secrets.token_urlsafe(16))
    endpoints = [
        {"id": "sg", "provider": "sendgrid", "tenant": "e2e", "public_key": sendgrid_public},
        {"id": "mg", "provider": "mailgun", "tenant": "e2e", "signing_key": mailgun_key},
        {"id": "pm", "provider": "postmark", "tenant": "e2e", "username": postmark[0],
         "password": postmark[1]},
        {"id": "ses", "provider": "ses", "tenant": "e2e", "topic_arns": [TOPIC]},
    ]
    vars_ = relay_vars(
        [api_key_entry(api_key, "e2e"), api_key_entry(other_key, OTHER_TENANT)], [dkim_ed25519, dkim_rsa],
        server.url + "?provider=sendgrid",
        PROVIDER_WEBHOOKS=json.dumps(endpoints), SNS_LOOPBACK_URLS="on")
    directory = tmp_path_factory.mktemp("providers-worker")
    config = worker_config(directory, vars_, build_dir=DIAGNOSTICS_BUILD)
    state = directory / "state"
    shutil.copytree(migrated_state, state)
    dev = WranglerDev([config], directory, state_dir=state, ca_cert=tls_paths["ca"])
    try:
        dev.wait_ready(timeout=60)
        yield Relay(Worker(dev, api_key), server, sns, other_key, mailgun_key, sendgrid_key,
                    postmark)
    finally:
        dev.stop()
        server.stop()
        sns.stop()


# --- sending --------------------------------------------------------------

def headers_of(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def settled(relay: Relay, message_id: str, key: str | None = None) -> dict:
    def done():
        s, body, _ = relay.worker.request("GET", f"/v1/messages/{message_id}",
                                          headers=headers_of(key or relay.worker.api_key))
        assert s == 200, body
        return body["status"] in FINAL and body
    return wait_for(done, timeout=60, what=f"{message_id} to settle")


def send_delivered(relay: Relay, to: list[str], key: str | None = None) -> str:
    """Sends one message to `to` and waits until it is delivered."""
    s, accepted, _ = relay.worker.send(basic_message(to=to), key=key)
    assert s == 202, accepted
    record = settled(relay, accepted["id"], key)
    assert record["status"] == "delivered", record
    return accepted["id"]


# --- the providers' requests -----------------------------------------------

def fixture(name: str, **values) -> str:
    text = (FIXTURES / name).read_text()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", str(v))
    return text


def sendgrid_request(relay: Relay, body: bytes, key=None, timestamp: int | None = None) -> dict:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = (key or relay.sendgrid_key).sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts}


def sendgrid_bounce(message_id: str, recipient: str) -> bytes:
    return fixture("sendgrid-events.json", message_id=message_id, recipient=recipient,
                   timestamp=int(time.time())).encode()


def mailgun_body(relay: Relay, message_id: str, recipient: str, key: str | None = None,
                 token: str | None = None) -> bytes:
    ts = str(int(time.time()))
    token = token or secrets.token_hex(25)
    signature = hmac.new((key or relay.mailgun_key).encode(), (ts + token).encode(),
                         hashlib.sha256).hexdigest()
    return fixture("mailgun-failed.json", message_id=message_id, recipient=recipient,
                   timestamp=ts, token=token, signature=signature).encode()


def basic_auth(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


SNS_SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"],
}


def sns_body(sns: SnsHost, kind: str, message: str, topic: str = TOPIC, key=None,
             cert_url: str | None = None, **extra) -> bytes:
    """An SNS message in the documented shape (sns-envelope.json), signed
    with SignatureVersion 2 (SHA256withRSA over the fields SNS signs)."""
    envelope = json.loads(fixture("sns-envelope.json"))
    envelope.pop("Subject")
    envelope.update({"Type": kind, "TopicArn": topic, "Message": message,
                     "MessageId": secrets.token_hex(16),
                     "SigningCertURL": cert_url or f"{sns.base}/SimpleNotificationService-test.pem",
                     **extra})
    to_sign = "".join(f"{name}\n{envelope[name]}\n" for name in SNS_SIGNED[kind] if name in envelope)
    signature = (key or SNS_KEY).sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    envelope["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(envelope).encode()


def post(worker: Worker, endpoint: str, body: bytes, headers: dict | None = None):
    return worker.request("POST", f"/v1/provider-events/{endpoint}", raw=body,
                                headers=headers)


def summary(received=1, applied=0, duplicate=0, unmatched=0, ignored=0) -> dict:
    return {"received": received, "applied": applied, "duplicate": duplicate,
            "unmatched": unmatched, "ignored": ignored}


def reports(relay: Relay, key: str | None = None, **query) -> list[dict]:
    path = "/v1/inbound-reports"
    if query:
        path += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    s, body, _ = relay.worker.request("GET", path, headers=headers_of(key or relay.worker.api_key))
    assert s == 200, body
    return body["data"]


def suppressed(relay: Relay, address: str, key: str | None = None) -> list[dict]:
    s, body, _ = relay.worker.request("GET", f"/v1/suppressions?address={quote(address)}",
                                      headers=headers_of(key or relay.worker.api_key))
    assert s == 200, body
    return body["data"]


# --- the tests ---------------------------------------------------------------

def test_mail_through_a_provider_upstream_carries_its_header_outside_the_signature(
        relay, dkim_ed25519):
    message_id = send_delivered(relay, ["header@example.net"])
    [received] = [m for m in relay.upstream.messages if m.rcpt_tos == ["header@example.net"]]
    first = received.data.splitlines()[0]
    assert first == (b'X-SMTPAPI: {"unique_args": {"edgerelay_id": "%s"}}'
                     % message_id.encode()), received.data[:300]
    parsed = email.message_from_bytes(received.data)
    assert json.loads(parsed["X-SMTPAPI"]) == {"unique_args": {"edgerelay_id": message_id}}
    assert len(parsed.get_all("X-SMTPAPI")) == 1
    # The signature does not cover it, and still verifies with it in front.
    signed = parsed["DKIM-Signature"].replace("\r\n", "").replace("\n", "")
    signed_headers = signed.split("h=", 1)[1].split(";", 1)[0].lower()
    assert "x-smtpapi" not in signed_headers, signed
    assert dkim.verify(received.data, dnsfunc=dkim_dns(dkim_ed25519)), received.data[:600]


@pytest.mark.parametrize("provider, header, value", [
    ("mailgun", "X-Mailgun-Variables", lambda i: json.dumps({"edgerelay_id": i})),
    ("postmark", "X-PM-Metadata-edgerelay_id", lambda i: i),
    ("ses", "X-SES-MESSAGE-TAGS", lambda i: f"edgerelay_id={i}"),
])
def test_each_provider_upstream_gets_its_own_header_in_the_release_build(
        start_worker, upstream, dkim_ed25519, provider, header, value):
    server = upstream().start()
    worker = start_worker(f"{server.url}?provider={provider}")
    s, accepted, _ = worker.send(basic_message(to=["header@example.net"]))
    assert s == 202, accepted
    [received] = wait_for(lambda: server.messages, what="the message at the upstream")
    first = received.data.splitlines()[0].decode()
    assert first == f"{header}: {value(accepted['id'])}", received.data[:300]
    assert dkim.verify(received.data, dnsfunc=dkim_dns(dkim_ed25519)), received.data[:600]


def test_the_release_build_fetches_no_sns_certificate_from_loopback(start_worker, upstream):
    """SNS_LOOPBACK_URLS exists only in the diagnostics build: the release
    build refuses the same signed message, and fetches nothing."""
    sns = SnsHost()
    try:
        worker = start_worker(upstream().start().url, SNS_LOOPBACK_URLS="on",
                              PROVIDER_WEBHOOKS=json.dumps(
                                  [{"id": "ses", "provider": "ses", "topic_arns": [TOPIC]}]))
        notification = fixture("ses-delivery.json", message_id="0" * 32,
                               recipient="x@example.net")
        s, answer, _ = post(worker, "ses", sns_body(sns, "Notification", notification))
        assert (s, answer["error"]["rule"], answer["error"]["field"]) == (
            401, "untrusted_url", "SigningCertURL"), answer
        assert sns.paths == []
    finally:
        sns.stop()


def test_a_caller_cannot_set_a_provider_header(relay):
    for name in ("X-SMTPAPI", "X-Mailgun-Variables", "X-SES-MESSAGE-TAGS"):
        s, body, _ = relay.worker.send(basic_message(headers={name: '{"edgerelay_id": "x"}'}))
        assert s == 422, (name, body)


def test_each_providers_signed_event_reaches_its_message_and_recipient(relay):
    sg, mg, pm, ses_ok, ses_gone, quiet = (
        "sg-gone@example.net", "mg-gone@example.net", "pm-complains@example.net",
        "ses-ok@example.net", "ses-gone@example.net", "quiet@example.net")
    message_id = send_delivered(relay, [sg, mg, pm, ses_ok, ses_gone, quiet])

    # SendGrid: a batch of a bounce and an open (not tracked).
    body = sendgrid_bounce(message_id, sg)
    s, answer, _ = post(relay.worker, "sg", body, sendgrid_request(relay, body))
    assert (s, answer) == (200, summary(received=2, applied=1, ignored=1)), answer
    # Mailgun: a permanent failure.
    s, answer, _ = post(relay.worker, "mg", mailgun_body(relay, message_id, mg))
    assert (s, answer) == (200, summary(applied=1)), answer
    # Postmark: a spam complaint, with the credentials of the webhook URL.
    body = fixture("postmark-spam-complaint.json", message_id=message_id, recipient=pm).encode()
    s, answer, _ = post(relay.worker, "pm", body, basic_auth(*relay.postmark))
    assert (s, answer) == (200, summary(applied=1)), answer
    # SES through SNS: a delivery and a permanent bounce.
    for name, recipient in (("ses-delivery.json", ses_ok), ("ses-bounce.json", ses_gone)):
        notification = fixture(name, message_id=message_id, recipient=recipient)
        s, answer, _ = post(relay.worker, "ses", sns_body(relay.sns, "Notification", notification))
        assert (s, answer) == (200, summary(applied=1)), (name, answer)
    assert any(p.endswith(".pem") for p in relay.sns.paths)

    record = relay.worker.status(message_id)
    seen = {(e["type"], e["recipient"]): e["data"] for e in record["email_events"]}
    expected = {
        ("email.bounced", sg): "sendgrid",
        ("email.bounced", mg): "mailgun",
        ("email.complained", pm): "postmark",
        ("email.delivered", ses_ok): "ses",
        ("email.bounced", ses_gone): "ses",
    }
    for key, source in expected.items():
        assert key in seen, (key, sorted(seen))
        assert seen[key]["evidence"]["source"] == source, seen[key]
    for address in (sg, mg, ses_gone):
        data = seen[("email.bounced", address)]
        assert data["bounce"]["type"] == "hard", data
        assert "5.1.1" in json.dumps(data["smtp"]), data
    assert not [k for k in seen if k[1] == quiet and k[0] != "email.sent"
                and k[0] != "email.delivered"], seen
    states = {r["address"]: r for r in record["recipients"]}
    for address in (sg, mg, ses_gone):
        assert states[address]["state"] == "bounced", states[address]
        assert states[address]["enhanced_code"] == "5.1.1", states[address]
    assert states[quiet]["state"] == "delivered"

    # The same events again (a provider's retry) change nothing more.
    body = sendgrid_bounce(message_id, sg)
    s, answer, _ = post(relay.worker, "sg", body, sendgrid_request(relay, body))
    assert (s, answer) == (200, summary(received=2, duplicate=1, ignored=1)), answer
    # A delivery or a complaint sent again is known by its provider ids.
    body = fixture("postmark-spam-complaint.json", message_id=message_id, recipient=pm).encode()
    s, answer, _ = post(relay.worker, "pm", body, basic_auth(*relay.postmark))
    assert (s, answer) == (200, summary(duplicate=1)), answer
    notification = fixture("ses-delivery.json", message_id=message_id, recipient=ses_ok)
    s, answer, _ = post(relay.worker, "ses", sns_body(relay.sns, "Notification", notification))
    assert (s, answer) == (200, summary(duplicate=1)), answer
    assert len(relay.worker.status(message_id)["email_events"]) == len(record["email_events"])

    # Hard bounces and the complaint suppress; the next send skips them.
    for address, reason in ((sg, "hard_bounce"), (mg, "hard_bounce"), (ses_gone, "hard_bounce"),
                            (pm, "complaint")):
        [entry] = suppressed(relay, address)
        assert (entry["reason"], entry["message_id"]) == (reason, message_id), entry
    assert suppressed(relay, ses_ok) == []
    s, again, _ = relay.worker.send(basic_message(to=[sg, pm, quiet]))
    assert s == 202, again
    record = settled(relay, again["id"])
    states = {r["address"]: r["state"] for r in record["recipients"]}
    assert states == {sg: "suppressed", pm: "suppressed", quiet: "delivered"}, states
    assert relay.upstream.deliveries_to(sg) == 1 and relay.upstream.deliveries_to(pm) == 1


def test_unsigned_wrongly_signed_or_stale_requests_are_refused_and_change_nothing(relay):
    victim = "victim@example.net"
    message_id = send_delivered(relay, [victim])
    before = relay.worker.status(message_id)["email_events"]
    sg_body = sendgrid_bounce(message_id, victim)
    other_ec = ec.generate_private_key(ec.SECP256R1())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned_mailgun = json.loads(mailgun_body(relay, message_id, victim))
    del unsigned_mailgun["signature"]
    notification = fixture("ses-bounce.json", message_id=message_id, recipient=victim)
    # (endpoint, body, headers, status, rule, field)
    table = [
        ("sg", sg_body, {}, 401, "missing_signature", "X-Twilio-Email-Event-Webhook-Signature"),
        ("sg", sg_body, sendgrid_request(relay, sg_body, key=other_ec), 401, "invalid_signature",
         "X-Twilio-Email-Event-Webhook-Signature"),
        ("sg", sg_body + b" ", sendgrid_request(relay, sg_body), 401, "invalid_signature",
         "X-Twilio-Email-Event-Webhook-Signature"),
        ("sg", sg_body, sendgrid_request(relay, sg_body, timestamp=int(time.time()) - 3600), 401,
         "stale_signature", "X-Twilio-Email-Event-Webhook-Timestamp"),
        ("sg", b"not json", sendgrid_request(relay, b"not json"), 400, "malformed_json", None),
        ("mg", mailgun_body(relay, message_id, victim, key="key-not-this-one"), {}, 401,
         "invalid_signature", "signature"),
        ("mg", json.dumps(unsigned_mailgun).encode(), {}, 401, "missing_signature", "signature"),
        ("pm", fixture("postmark-spam-complaint.json", message_id=message_id,
                       recipient=victim).encode(), {}, 401, "missing_signature", "Authorization"),
        ("pm", fixture("postmark-spam-complaint.json", message_id=message_id,
                       recipient=victim).encode(), basic_auth(relay.postmark[0], "guess"), 401,
         "invalid_signature", "Authorization"),
        ("ses", sns_body(relay.sns, "Notification", notification, key=other_rsa), {}, 401,
         "invalid_signature", "Signature"),
        ("ses", sns_body(relay.sns, "Notification", notification,
                         topic="arn:aws:sns:us-east-1:999999999999:someone-else"), {}, 401,
         "unknown_topic", "TopicArn"),
        ("ses", sns_body(relay.sns, "Notification", notification,
                         cert_url="https://attacker.example/SimpleNotificationService-x.pem"), {},
         401, "untrusted_url", "SigningCertURL"),
        ("nowhere", sg_body, sendgrid_request(relay, sg_body), 404, "not_found", None),
    ]
    for endpoint, body, headers, status, rule, field_ in table:
        s, answer, _ = post(relay.worker, endpoint, body, headers)
        assert s == status, (endpoint, rule, answer)
        assert answer["error"]["rule"] == rule, (endpoint, answer)
        assert answer["error"].get("field") == field_, (endpoint, answer)
    assert relay.worker.status(message_id)["email_events"] == before
    assert relay.worker.status(message_id)["recipients"][0]["state"] == "delivered"
    assert suppressed(relay, victim) == []
    assert reports(relay, message_id=message_id) == []


def test_a_mailgun_token_is_taken_once(relay):
    first, second = "replay-1@example.net", "replay-2@example.net"
    message_id = send_delivered(relay, [first, second])
    token = secrets.token_hex(25)
    body = mailgun_body(relay, message_id, first, token=token)
    s, answer, _ = post(relay.worker, "mg", body)
    assert (s, answer) == (200, summary(applied=1)), answer
    s, answer, _ = post(relay.worker, "mg", body)
    assert (s, answer["error"]["rule"], answer["error"]["field"]) == (
        401, "replayed_signature", "signature.token"), answer
    # Mailgun signs the token, not the event: the captured signature with
    # other event data is refused too.
    captured = json.loads(body)
    forged = json.loads(mailgun_body(relay, message_id, second))
    forged["signature"] = captured["signature"]
    s, answer, _ = post(relay.worker, "mg", json.dumps(forged).encode())
    assert (s, answer["error"]["rule"]) == (401, "replayed_signature"), answer
    states = {r["address"]: r["state"] for r in relay.worker.status(message_id)["recipients"]}
    assert states == {first: "bounced", second: "delivered"}, states
    assert suppressed(relay, second) == []


def test_events_for_an_unknown_message_or_another_tenants_are_kept_as_unmatched(relay):
    theirs = "globex-customer@example.net"
    their_id = send_delivered(relay, [theirs], key=relay.other_key)
    unknown_id = "0123456789abcdef0123456789abcdef"
    for message_id in (their_id, unknown_id):
        body = sendgrid_bounce(message_id, theirs)
        s, answer, _ = post(relay.worker, "sg", body, sendgrid_request(relay, body))
        assert (s, answer) == (200, summary(received=2, unmatched=1, ignored=1)), answer
    # Mail the smarthost sent for someone else: no edgerelay id at all.
    events = json.loads(sendgrid_bounce("x", "stranger@example.net"))
    for event in events:
        del event["edgerelay_id"]
    body = json.dumps(events).encode()
    s, answer, _ = post(relay.worker, "sg", body, sendgrid_request(relay, body))
    assert (s, answer) == (200, summary(received=2, unmatched=1, ignored=1)), answer

    kept = reports(relay, verdict="unmatched", source="sendgrid")
    by_id = {r["message_id"]: r for r in kept}
    for message_id in (their_id, unknown_id):
        record = by_id[message_id]
        assert record["kind"] == "provider_event" and record["recipient"] == theirs, record
        assert f"no message {message_id} of tenant e2e" in record["reason"], record
        assert record["events"] == [] and record["raw_kept"], record
    [stranger] = [r for r in kept if r["recipient"] == "stranger@example.net"]
    assert "names no edgerelay message" in stranger["reason"], stranger
    # The other tenant's message is untouched, and its records are not theirs to see.
    record = settled(relay, their_id, relay.other_key)
    assert record["recipients"][0]["state"] == "delivered", record
    assert not [e for e in record["email_events"] if e["type"] == "email.bounced"]
    assert suppressed(relay, theirs, key=relay.other_key) == []
    assert reports(relay, key=relay.other_key, source="sendgrid") == []


def test_an_sns_subscription_from_a_listed_topic_is_confirmed(relay):
    token = secrets.token_hex(32)
    url = f"{relay.sns.base}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}"
    body = sns_body(relay.sns, "SubscriptionConfirmation",
                    f"You have chosen to subscribe to the topic {TOPIC}.",
                    SubscribeURL=url, Token=token)
    s, answer, _ = post(relay.worker, "ses", body)
    assert (s, answer) == (200, {"confirmed": True, "topic_arn": TOPIC}), answer
    assert url.removeprefix(relay.sns.base) in relay.sns.paths
    # Another topic's confirmation is refused, and nothing is fetched.
    other = "arn:aws:sns:us-east-1:999999999999:not-ours"
    token = secrets.token_hex(32)
    url = f"{relay.sns.base}/?Action=ConfirmSubscription&TopicArn={other}&Token={token}"
    body = sns_body(relay.sns, "SubscriptionConfirmation", "subscribe", topic=other,
                    SubscribeURL=url, Token=token)
    s, answer, _ = post(relay.worker, "ses", body)
    assert (s, answer["error"]["rule"]) == (401, "unknown_topic"), answer
    assert url.removeprefix(relay.sns.base) not in relay.sns.paths
