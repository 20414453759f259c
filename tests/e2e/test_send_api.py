"""The send API end to end: the full request shape through workerd to a real
SMTP server, dual DKIM (RSA through WebCrypto + Ed25519) verified by dkimpy,
large bodies through R2, the batch endpoint, and the published OpenAPI
document checked against what these tests send and receive."""
import base64
import email
import http.client
import itertools
import socket
import urllib.parse
import email.policy
import json
import os

import dkim
import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message, dkim_dns
from edgerelay_harness.openapi import OPENAPI, schema
from edgerelay_harness.paths import DIAGNOSTICS_BUILD
from edgerelay_harness.poll import wait_for

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def dual_signing_worker(start_worker, upstream, dkim_ed25519, dkim_rsa):
    """A worker with both keys for the sender domain, and its upstream."""
    def start(upstream_running=True, build_dir=None, **extra_vars):
        server = upstream()
        if upstream_running:
            server.start()
        if build_dir is not None:
            extra_vars["build_dir"] = build_dir
        worker = start_worker(
            server.url,
            DKIM_KEYS=json.dumps([dkim_rsa.config, dkim_ed25519.config]),
            **extra_vars,
        )
        return worker, server
    return start


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

    algorithms = verify_every_signature(received.data, dkim_dns(dkim_rsa, dkim_ed25519))
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


def test_a_domain_with_only_an_ed25519_key_is_refused(start_worker, upstream, dkim_ed25519):
    """RSA always: the largest mailbox providers verify only RSA signatures,
    so a domain whose only key is Ed25519 may not send at all."""
    server = upstream()
    server.start()
    worker = start_worker(server.url, DKIM_KEYS=json.dumps([dkim_ed25519.config]))
    status, body, _ = worker.send(basic_message())
    assert status == 403, body
    schema("Error").validate(body)
    error = body["error"]
    assert (error["rule"], error["field"]) == ("domain_needs_rsa_key", "from")
    assert SENDER_DOMAIN in error["message"] and "RSA" in error["message"]
    assert server.messages == []


def test_a_message_over_the_queue_limit_travels_through_r2(dual_signing_worker, dkim_ed25519, dkim_rsa):
    # The upstream is down at first, so the body must wait in R2 across a retry.
    worker, server = dual_signing_worker(upstream_running=False)
    blob = os.urandom(200 * 1024)  # composed: ~270 KB, over the 128 KB queue limit
    message = basic_message(attachments=[{"filename": "data.bin", "content": base64.b64encode(blob).decode()}])
    status, body, _ = worker.send(message)
    assert status == 202, body

    wait_for(lambda: worker.status(body["id"])["status"] == "deferred", what="the first attempt to fail")
    stored = worker.stored_bodies()
    assert len(stored) == 1 and stored[0].stat().st_size > 128 * 1024, stored

    server.start()
    received = wait_for(lambda: server.messages, what="the large message at the server")[0]
    assert len(server.messages) == 1
    assert len(received.data) > 128 * 1024
    verify_every_signature(received.data, dkim_dns(dkim_rsa, dkim_ed25519))
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    attachment = next(p for p in msg.walk() if p.get_filename() == "data.bin")
    assert attachment.get_content() == blob
    wait_for(lambda: worker.status(body["id"])["status"] == "delivered", what="status delivered")
    # Delivered is an end state: the stored body is deleted.
    wait_for(lambda: worker.stored_bodies() == [], what="the stored body to be deleted")


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


def post_chunked(url: str, path: str, headers: dict, chunks) -> tuple[int, dict, int]:
    """POST with Transfer-Encoding: chunked (no Content-Length). Returns the
    status, the JSON body and how many body bytes went out before the
    server answered or stopped reading."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.putrequest("POST", path)
    for name, value in {**headers, "Transfer-Encoding": "chunked",
                        "Content-Type": "application/json"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    sent = 0
    try:
        for chunk in chunks:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered early and closed: read its answer
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body, sent


def stream_chunked(url: str, path: str, headers: dict, total: int) -> int:
    """Streams a chunked body of `total` bytes; returns how many went out
    before the server stopped taking them (it answered and closed, or
    stopped reading for 30 s), `total` if all did."""
    parsed = urllib.parse.urlsplit(url)
    conn = socket.create_connection((parsed.hostname, parsed.port), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Host": parsed.netloc,
                   "Transfer-Encoding": "chunked", "Content-Type": "application/json"}.items())
    sent = 0
    chunk = b"x" * 65536
    try:
        conn.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
        conn.sendall(b"9\r\n{\"text\":\"\r\n")
        while sent < total:
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        conn.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # reset, broken pipe or timed out: the server stopped taking it
    finally:
        conn.close()
    return sent


def test_chunked_bodies_are_read_under_the_limit(dual_signing_worker):
    worker, server = dual_signing_worker(MAX_MESSAGE_BYTES="65536")
    limit = 2 * 65536 + 64 * 1024
    # Over the limit with no Content-Length: refused with 413 naming the
    # limit, without the rest being read first.
    prefix = b'{"from": "x@example.com", "to": "y@example.net", "subject": "s", "text": "'
    filler = (b"x" * 16384 for _ in range(4 * limit // 16384))
    status, body, _ = post_chunked(worker.url, "/v1/messages", worker.auth,
                                   itertools.chain([prefix], filler))
    assert status == 413, body
    assert body["error"]["rule"] == "too_large"
    assert str(limit) in body["error"]["message"] and "MAX_MESSAGE_BYTES" in body["error"]["message"]
    schema("Error").validate(body)
    # Cut off at the limit, not read whole first: of a 64 MiB body far less
    # than half goes out before the relay answers and closes (what is taken
    # is the loopback's and the local proxy's buffers).
    total = 64 * 1024 * 1024
    sent = stream_chunked(worker.url, "/v1/messages", worker.auth, total)
    assert sent < total // 2, sent
    # A chunked body within the limit is read whole and accepted.
    message = json.dumps(basic_message(subject="chunked")).encode()
    pieces = [message[i:i + 10] for i in range(0, len(message), 10)]
    status, body, _ = post_chunked(worker.url, "/v1/messages", worker.auth, pieces)
    assert status == 202, body
    wait_for(lambda: len(server.messages) == 1, what="the chunked message delivered")


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
    assert dkim_rsa.key.sign(data, padding.PKCS1v15(), hashes.SHA256()) == signature
    dkim_rsa.key.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    assert len(base64.b64decode(results["ed25519"]["signature"])) == 64


def test_bench_routes_are_off_by_default(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)
    status, body, _ = worker.request("GET", "/bench/signing?signer=ed25519&n=1")
    assert status == 404, body
