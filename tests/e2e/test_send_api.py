"""The send API end to end: the full request shape through workerd to a real
SMTP server, dual DKIM (RSA through WebCrypto + Ed25519) verified by dkimpy,
large bodies through R2, the batch endpoint, and the published OpenAPI
document checked against what these tests send and receive."""
import base64
import email
import email.policy
import hashlib
import json
import os
from pathlib import Path

import dkim
import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import DIAGNOSTICS_BUILD, ROOT, SENDER_DOMAIN, basic_message, wait_for

RSA_SELECTOR = "rsa1"
OPENAPI = json.loads((ROOT / "openapi.json").read_text())
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="session")
def dkim_rsa():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "key": key,
        "config": {
            "domain": SENDER_DOMAIN,
            "selector": RSA_SELECTOR,
            "algorithm": "rsa",
            "private_key": base64.b64encode(pkcs8).decode(),
        },
        "txt": f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}".encode(),
    }


@pytest.fixture
def dual_signing_worker(start_worker, upstream, dkim_ed25519, dkim_rsa):
    """A worker with both keys for the sender domain, and its upstream."""
    def start(upstream_running=True, **extra_vars):
        server = upstream()
        if upstream_running:
            server.start()
        worker = start_worker(
            server.url,
            DKIM_KEYS=json.dumps([dkim_rsa["config"], dkim_ed25519["config"]]),
            **extra_vars,
        )
        return worker, server
    return start


def dns_for(*keys):
    records = {f"{k['config']['selector']}._domainkey.{SENDER_DOMAIN}.": k["txt"] for k in keys}

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return records.get(name)
    return dnsfunc


def verify_every_signature(data: bytes, dnsfunc) -> list[str]:
    """dkimpy checks each DKIM-Signature on its own; returns their algorithms."""
    parsed = email.message_from_bytes(data)
    signatures = parsed.get_all("DKIM-Signature") or []
    algorithms = []
    for index, header in enumerate(signatures):
        tags = dict(
            part.strip().split("=", 1) for part in "".join(header.split()).split(";") if "=" in part
        )
        algorithms.append(tags["a"])
        assert dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc), f"signature {index} ({tags['a']})"
    return algorithms


def schema(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component schema, resolving refs within the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    return jsonschema.Draft202012Validator(root)


def rich_message():
    return {
        "from": {"email": f"zoe@{SENDER_DOMAIN}", "name": "Zoë Ærøskøbing"},
        "to": [{"email": "jose@example.net", "name": "José Müller"}, "plain@example.net"],
        "cc": "Ümit Çelik <umit@example.net>",
        "bcc": ["hidden@example.net"],
        "reply_to": "Support Team <support@example.com>",
        "subject": "Grüße aus Köln — 東京 ✓",
        "text": "Hallo José,\nanbei die Rechnung.\n.\nGrüße",
        "html": '<p>Hallo José, <img src="cid:logo-1"> anbei die Rechnung.</p>',
        "attachments": [
            {"filename": "logo.png", "content": base64.b64encode(PNG).decode(),
             "content_type": "image/png", "content_id": "logo-1"},
            {"filename": "Rechnung März.pdf", "content": base64.b64encode(b"%PDF-1.4\n%\xe2\xe3\n").decode(),
             "content_type": "application/pdf"},
        ],
        "headers": {"X-Entity-Ref-ID": "inv-2024-001"},
        "tags": [{"name": "category", "value": "invoice"}],
        "metadata": {"customer": 42},
    }


def test_rich_message_arrives_intact_with_both_signatures_verified(dual_signing_worker, dkim_ed25519, dkim_rsa):
    worker, server = dual_signing_worker()
    sent = rich_message()
    schema("SendRequest").validate(sent)

    status, body, _ = worker.send(sent)
    assert status == 202, body
    schema("Accepted").validate(body)

    received = wait_for(lambda: server.messages, what="the message at the server")[0]
    assert received.mail_from == f"zoe@{SENDER_DOMAIN}"
    assert sorted(received.rcpt_tos) == sorted(
        ["jose@example.net", "plain@example.net", "umit@example.net", "hidden@example.net"])

    algorithms = verify_every_signature(received.data, dns_for(dkim_rsa, dkim_ed25519))
    assert sorted(algorithms) == ["ed25519-sha256", "rsa-sha256"]

    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    assert msg["Subject"] == sent["subject"]
    assert msg["From"].addresses[0].display_name == "Zoë Ærøskøbing"
    to = msg["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in to] == [
        ("José Müller", "jose@example.net"), ("", "plain@example.net")]
    assert msg["Cc"].addresses[0].display_name == "Ümit Çelik"
    assert msg["Reply-To"].addresses[0].addr_spec == "support@example.com"
    assert msg["Bcc"] is None and b"hidden@example.net" not in received.data
    assert msg["X-Entity-Ref-ID"] == "inv-2024-001"

    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.rstrip("\n") == sent["text"]
    assert msg.get_body(("html",)).get_content().strip() == sent["html"]
    parts = {part.get_content_type(): part for part in msg.walk() if not part.is_multipart()}
    logo = parts["image/png"]
    assert logo.get_content() == PNG
    assert logo["Content-ID"] == "<logo-1>"
    assert logo.get_content_disposition() == "inline"
    pdf = parts["application/pdf"]
    assert pdf.get_filename() == "Rechnung März.pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_content() == b"%PDF-1.4\n%\xe2\xe3\n"
    # The inline image sits with the HTML it illustrates.
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    assert [p.get_content_type() for p in related.iter_parts()] == ["text/html", "image/png"]


def test_a_key_cannot_send_as_a_domain_it_does_not_own(dual_signing_worker):
    worker, server = dual_signing_worker()
    for sender in ["someone@example.org", "Spoof <ceo@EXAMPLE.ORG>", "x@sub.example.com"]:
        status, body, _ = worker.send(basic_message(**{"from": sender}))
        assert status == 403, (sender, body)
        assert body["error"]["rule"] == "domain_not_allowed" and body["error"]["field"] == "from"
        schema("Error").validate(body)
    assert server.messages == []


def stored_bodies(worker) -> list[Path]:
    """Objects in the worker's local R2 state (miniflare keeps one file per blob)."""
    r2 = Path(worker.log_path).parent / "state" / "v3" / "r2"
    return [p for p in r2.rglob("*") if p.is_file() and p.parent.name == "blobs"]


def test_a_message_over_the_queue_limit_travels_through_r2(dual_signing_worker, dkim_ed25519, dkim_rsa):
    # The upstream is down at first, so the body must wait in R2 across a retry.
    worker, server = dual_signing_worker(upstream_running=False)
    blob = os.urandom(200 * 1024)  # composed: ~270 KB, over the 128 KB queue limit
    message = basic_message(attachments=[{"filename": "data.bin", "content": base64.b64encode(blob).decode()}])
    status, body, _ = worker.send(message)
    assert status == 202, body

    wait_for(lambda: worker.status(body["id"])["status"] == "deferred", what="the first attempt to fail")
    stored = stored_bodies(worker)
    assert len(stored) == 1 and stored[0].stat().st_size > 128 * 1024, stored

    server.start()
    received = wait_for(lambda: server.messages, what="the large message at the server")[0]
    assert len(server.messages) == 1
    assert len(received.data) > 128 * 1024
    verify_every_signature(received.data, dns_for(dkim_rsa, dkim_ed25519))
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    attachment = next(p for p in msg.walk() if p.get_filename() == "data.bin")
    assert attachment.get_content() == blob
    wait_for(lambda: worker.status(body["id"])["status"] == "delivered", what="status delivered")
    # Delivered is an end state: the stored body is deleted.
    wait_for(lambda: stored_bodies(worker) == [], what="the stored body to be deleted")


def test_messages_over_the_size_limit_are_refused_with_413(dual_signing_worker):
    worker, server = dual_signing_worker(MAX_MESSAGE_BYTES="65536")
    big = base64.b64encode(os.urandom(60 * 1024)).decode()
    status, body, _ = worker.send(basic_message(attachments=[{"filename": "a.bin", "content": big}]))
    assert status == 413, body
    assert body["error"]["rule"] == "too_large"
    schema("Error").validate(body)
    # A body beyond any message limit is refused before it is parsed.
    status, body, _ = worker.send(basic_message(text="x" * 200_000))
    assert status == 413 and "request body" in body["error"]["message"], body
    assert server.messages == []


def test_batch_answers_each_item_and_delivers_the_valid_ones(dual_signing_worker):
    worker, server = dual_signing_worker()
    no_subject = basic_message(to="b@example.net")
    del no_subject["subject"]
    items = [
        basic_message(to="a@example.net", subject="first"),
        no_subject,
        basic_message(**{"from": "x@example.org"}),
        basic_message(to="c@example.net", subject="second"),
        basic_message(subject="Hi\r\nBcc: victim@example.net"),
    ]
    status, body, _ = worker.request("POST", "/v1/messages/batch", items,
                                     {"Authorization": f"Bearer {worker.api_key}"})
    assert status == 207, body
    schema("BatchResponse").validate(body)
    assert [r["status"] for r in body["results"]] == [202, 422, 403, 202, 422]
    assert [r["index"] for r in body["results"]] == list(range(5))
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert body["results"][1]["error"]["field"] == "subject"
    assert body["results"][2]["error"]["rule"] == "domain_not_allowed"
    assert body["results"][4]["error"]["details"][0]["rule"] == "header_injection"

    wait_for(lambda: len(server.messages) == 2, what="both valid items delivered")
    subjects = sorted(email.message_from_bytes(m.data)["Subject"] for m in server.messages)
    assert subjects == ["first", "second"]
    for result in (body["results"][0], body["results"][3]):
        wait_for(lambda: worker.status(result["id"])["status"] == "delivered", what="delivered")
    assert not any(b"victim@" in m.data or "victim@example.net" in m.rcpt_tos for m in server.messages)

    for bad, code in [(b"[", 400), (b"{}", 422), (b"[]", 422),
                      (json.dumps([basic_message()] * 101).encode(), 413)]:
        s, err, _ = worker.request("POST", "/v1/messages/batch", raw=bad,
                                   headers={"Authorization": f"Bearer {worker.api_key}"})
        assert s == code, (bad[:20], err)
        schema("Error").validate(err)


INJECTION_VECTORS = [
    ("subject", "Hello\r\nBcc: victim@example.net"),
    ("from", "Ada\nBcc: victim@example.net <hello@example.com>"),
    ("from", {"email": "hello@example.com", "name": "Ada\r\nBcc: victim@example.net"}),
    ("to", "rcpt@example.net\r\nBcc: victim@example.net"),
    ("cc", "rcpt@example.net\u0000"),
    ("reply_to", "Bob\r <bob@example.com>"),
    ("headers", {"X-Note": "a\r\nBcc: victim@example.net"}),
    ("headers", {"X-Note\r\nBcc": "victim@example.net"}),
    ("attachments", [{"filename": "a.txt\r\nBcc: victim@example.net", "content": "aGk="}]),
    ("attachments", [{"content": "aGk=", "content_id": "x\r\nBcc: victim@example.net"}]),
]


def test_header_injection_is_refused_with_the_field_named(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    for field, value in INJECTION_VECTORS:
        status, body, _ = worker.send(basic_message(**{field: json.loads(json.dumps(value))}))
        assert status == 422, (field, value, body)
        assert body["error"]["details"][0]["rule"] == "header_injection", (field, body)
        assert body["error"]["field"].startswith(field), (field, body)
    assert server.messages == []


def test_openapi_document_is_served_verbatim_and_is_valid(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    status, served, headers = worker.request("GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert served == OPENAPI
    assert OPENAPI["openapi"].startswith("3.1")
    for name, component in OPENAPI["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(component)
    # The document's own examples, and what the other e2e tests send, fit the schema.
    examples = OPENAPI["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        schema("SendRequest").validate(example["value"])
    schema("SendRequest").validate(basic_message())
    schema("SendRequest").validate(rich_message())
    # And the schema refuses what the API refuses for shape.
    for wrong in [{"from": "a@example.com", "subject": "s", "hmtl": "x"},
                  {"from": 5, "subject": "s"}, {"subject": "s"}]:
        with pytest.raises(jsonschema.ValidationError):
            schema("SendRequest").validate(wrong)


def test_webcrypto_and_pure_rust_rsa_signatures_are_byte_identical(dual_signing_worker, dkim_rsa):
    worker, _ = dual_signing_worker(build_dir=DIAGNOSTICS_BUILD, BENCH_ROUTES="on")
    results = {}
    for signer in ["webcrypto-rsa", "rust-rsa", "ed25519"]:
        status, body, _ = worker.request("GET", f"/bench/signing?signer={signer}&n=2")
        assert status == 200, body
        results[signer] = body
    web, native = results["webcrypto-rsa"], results["rust-rsa"]
    assert web["signed_data"] == native["signed_data"]
    assert web["signature"] == native["signature"]
    data = base64.b64decode(web["signed_data"])
    signature = base64.b64decode(web["signature"])
    # A third, independent signer agrees, and the public key verifies it.
    assert dkim_rsa["key"].sign(data, padding.PKCS1v15(), hashes.SHA256()) == signature
    dkim_rsa["key"].public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    assert len(base64.b64decode(results["ed25519"]["signature"])) == 64


def test_bench_routes_are_off_by_default(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    status, body, _ = worker.request("GET", "/bench/signing?signer=ed25519&n=1")
    assert status == 404, body
