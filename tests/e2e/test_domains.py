"""/v1/domains end to end: a domain added through the API gets its keys
made inside the worker and sealed at rest, is told the exact records to
publish, and is verified over DNS: a real DNS server on loopback (Unbound,
serving the test zone) behind a real DNS-over-HTTPS front (dnsdist, RFC 8484
wire format), whose zone the test edits (publish, then break each record in
turn). A message from the verified domain is checked by dkimpy against the
records as DNS serves them. The private keys are opened from D1 with the
documented derivation and the master secret, then looked for, in clear, in
every answer, log line and D1 cell; a wrong master secret fails closed
naming the setting only."""
import base64
import email
import re
import hashlib
import hmac
import json
import os
import secrets
import sqlite3

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edgerelay_harness.dns_server import DnsServerMissing, DohServer
from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, basic_message
from edgerelay_harness.local_d1 import database, every_text
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for
from edgerelay_harness.webhook_receiver import WebhookReceiver
from standardwebhooks import Webhook

DOMAIN = "shop.example.org"
SPF = "include:spf.smarthost.example"


@pytest.fixture
def zone(tmp_path):
    """Unbound serving example.org behind dnsdist's DoH. Missing, the test
    is skipped, unless CI=true, where it fails."""
    try:
        server = DohServer(tmp_path / "dns", "example.org")
    except DnsServerMissing as e:
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(f"{e}, and CI=true")
        pytest.skip(str(e))
    yield server
    server.stop()


def admin(worker):
    return {"Authorization": f"Bearer {worker.api_key}"}


def start(start_worker, upstream, api_key, zone, master, **extra):
    server = upstream().start()
    keys = json.dumps([api_key_entry(api_key, "e2e", domains=[SENDER_DOMAIN, DOMAIN])])
    worker = start_worker(server.url, API_KEYS=keys, DOMAIN_KEYS_SECRET=master,
                          UPSTREAM_SPF=json.dumps({"127.0.0.1": SPF}),
                          DNS_RESOLVER_URL=zone.url, DNS_RESOLVER_FORMAT="wire", **extra)
    worker.server = server
    return worker


def zone_dns(zone):
    """A `dnsfunc` for dkimpy that asks the DNS server, through its DoH
    front, for what is published."""
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        texts = zone.txt(name)
        return texts[0].encode() if texts else None
    return dnsfunc


def open_sealed(master: str, row: dict) -> bytes:
    """Opens a sealed key as docs/domains.md describes the sealing."""
    key = hmac.new(master.encode(), b"edgerelay master secret v1\0dkim private keys",
                   hashlib.sha256).digest()
    raw = base64.b64decode(row["sealed_key"].removeprefix("v1:"))
    aad = f"edgerelay dkim key v1\0{row['domain']}\0{row['selector']}\0{row['algorithm']}".encode()
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


def rows_of(worker, table):
    with sqlite3.connect(database(worker), timeout=10) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM {table}")]


def sealed_rows(worker):
    return sorted(rows_of(worker, "domain_keys"), key=lambda r: r["selector"])


def clear_forms(der: bytes) -> list[str]:
    """The ways a private key could be written in clear."""
    b64 = base64.b64encode(der).decode()
    return [b64[20:80], der.hex()[40:120], base64.urlsafe_b64encode(der).decode()[20:80]]


def publish_all(zone, records):
    by_name = {}
    for r in records:
        if r["type"] == "TXT":
            by_name.setdefault(r["name"], []).append(r["value"])
    for name, values in by_name.items():
        zone.publish(name, *values)
        assert sorted(zone.txt(name)) == sorted(values)


def verify(worker):
    reply = worker.request("POST", f"/v1/domains/{DOMAIN}/verify", headers=admin(worker))
    assert reply.status == 200, reply.body
    schema("DomainReport").validate(reply.body)
    return reply.body


def report_of(report, name, purpose):
    return next(r for r in report["records"] if r["name"] == name and r["purpose"] == purpose)


def test_a_domain_is_added_told_its_records_and_verified_over_dns(start_worker, upstream, api_key,
                                                                   zone):
    master = secrets.token_urlsafe(40)
    worker = start(start_worker, upstream, api_key, zone, master)
    answers = []

    added = worker.request("POST", "/v1/domains", {"domain": DOMAIN.upper()}, admin(worker))
    assert added.status == 201, added.body
    answers.append(added.body)
    schema("Domain").validate(added.body)
    body = added.body
    assert (body["domain"], body["source"], body["status"]) == (DOMAIN, "api", "pending")
    assert [(k["selector"], k["algorithm"]) for k in body["keys"]] == [
        ("er1-ed25519", "ed25519"), ("er1-rsa", "rsa")]
    records = body["records"]
    dkim_records = {r["selector"]: r for r in records if r["purpose"] == "dkim"}
    assert dkim_records["er1-rsa"]["name"] == f"er1-rsa._domainkey.{DOMAIN}" and dkim_records["er1-rsa"]["required"]
    assert dkim_records["er1-rsa"]["value"].startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # RSA-2048 SPKI
    spf = next(r for r in records if r["purpose"] == "spf")
    assert (spf["name"], spf["value"]) == (DOMAIN, f"v=spf1 {SPF} ~all")
    assert any(r["purpose"] == "dmarc" and r["name"] == f"_dmarc.{DOMAIN}" for r in records)

    # The sealed keys open with the master secret into the keys published.
    rows = sealed_rows(worker)
    assert [r["selector"] for r in rows] == ["er1-ed25519", "er1-rsa"]
    opened = {r["selector"]: open_sealed(master, r) for r in rows}
    rsa_key = serialization.load_der_private_key(opened["er1-rsa"], None)
    assert rsa_key.key_size == 2048
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    assert dkim_records["er1-rsa"]["value"] == f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"

    # Twice, a domain of DKIM_KEYS, a domain the key may not send as.
    for domain, status, rule in [(DOMAIN, 409, "domain_exists"),
                                 (SENDER_DOMAIN, 409, "settings_domain"),
                                 ("other.example.net", 403, "domain_not_allowed")]:
        reply = worker.request("POST", "/v1/domains", {"domain": domain}, admin(worker))
        assert (reply.status, reply.body["error"]["rule"]) == (status, rule), reply.body
        answers.append(reply.body)

    listed = worker.request("GET", "/v1/domains", headers=admin(worker))
    assert listed.status == 200, listed.body
    schema("DomainList").validate(listed.body)
    answers.append(listed.body)
    assert [(d["domain"], d["source"], d["read_only"]) for d in listed.body["data"]] == [
        (DOMAIN, "api", False), (SENDER_DOMAIN, "settings", True)]

    # Nothing published yet: pending, and the report says what is missing.
    report = verify(worker)
    answers.append(report)
    assert (report["status"], report["verified"]) == ("pending", False)
    assert "no DKIM record" in " ".join(report_of(report, dkim_records["er1-rsa"]["name"], "dkim")["problems"])
    assert "DMARC missing" in " ".join(report_of(report, f"_dmarc.{DOMAIN}", "dmarc")["problems"])

    # Not verified yet: mail from the domain is refused.
    status, refused, _ = worker.send(basic_message(**{"from": f"hello@{DOMAIN}"}))
    assert (status, refused["error"]["rule"]) == (403, "domain_not_verified"), refused

    # Published as told: verified.
    publish_all(zone, records)
    report = verify(worker)
    answers.append(report)
    assert (report["status"], report["verified"]) == ("verified", True), report
    for r in report["records"]:
        if r["type"] == "TXT":
            assert (r["found"], r["matches"], r["problems"]) == (True, True, []), r
    got = worker.request("GET", f"/v1/domains/{DOMAIN}", headers=admin(worker))
    assert got.status == 200 and got.body["status"] == "verified" and got.body["verified_at"]
    schema("Domain").validate(got.body)
    answers.append(got.body)

    # Verified: a message from the domain arrives signed with both keys, and
    # dkimpy verifies each signature against the records in the zone.
    status, sent, _ = worker.send(basic_message(**{"from": f"hello@{DOMAIN}"}))
    assert status == 202, sent
    received = wait_for(lambda: worker.server.messages, what="the message at the server")[0]
    signatures = email.message_from_bytes(received.data).get_all("DKIM-Signature")
    selectors = sorted(re.search(r"s=([^;\s]+)", "".join(h.split())).group(1) for h in signatures)
    assert selectors == ["er1-ed25519", "er1-rsa"]
    for index in range(len(signatures)):
        assert dkim.DKIM(received.data).verify(idx=index, dnsfunc=zone_dns(zone)), index

    # The SendGrid door checks every personalization before sending any, with
    # the domain's own keys too.
    mail = {"personalizations": [{"to": [{"email": "p1@example.net"}]},
                                 {"to": [{"email": "p2@example.net"}]}],
            "from": {"email": f"hello@{DOMAIN}"}, "subject": "Two at once",
            "content": [{"type": "text/plain", "value": "Hello"}]}
    sent = worker.request("POST", "/v3/mail/send", mail, headers=admin(worker))
    assert sent.status == 202, sent

    # Break each record in turn: the report names the problem.
    other = dkim_records["er1-rsa"]["value"].replace("p=MIIBIjAN", "p=MIIBIjAX")
    breaks = [
        (dkim_records["er1-rsa"]["name"], [other], "dkim", "DKIM key mismatch", False),
        (dkim_records["er1-rsa"]["name"], [], "dkim", "no DKIM record", False),
        (DOMAIN, [spf["value"], "v=spf1 include:other.example ~all"], "spf", "2 SPF records", True),
        (DOMAIN, ["v=spf1 " + " ".join(f"include:s{i}.example" for i in range(11)) + f" {SPF} ~all"],
         "spf", "DNS lookups, more than the 10", True),
        (DOMAIN, ["v=spf1 mx ~all"], "spf", f"does not contain {SPF}", True),
        (f"_dmarc.{DOMAIN}", [], "dmarc", "DMARC missing", True),
    ]
    for name, texts, purpose, words, verified in breaks:
        publish_all(zone, records)
        zone.publish(name, *texts)
        report = verify(worker)
        assert report["verified"] is verified, (name, report)
        problems = " ".join(report_of(report, name, purpose)["problems"])
        assert words in problems, (words, problems)
        broken = [r for r in report["records"] if r["type"] == "TXT" and r["matches"] is not True]
        assert len(broken) == 1, broken
        answers.append(report)

    # Private keys appear nowhere in clear: not in an answer, a log line or a D1 cell.
    texts = [json.dumps(a) for a in answers] + [worker.log()]
    texts += [value for table, column, value in every_text(worker) if column != "sealed_key"]
    for der in opened.values():
        for form in clear_forms(der):
            for text in texts:
                assert form not in text
    for table, column, value in every_text(worker):
        assert "PRIVATE KEY" not in value, (table, column)

    deleted = worker.request("DELETE", f"/v1/domains/{DOMAIN}", headers=admin(worker))
    assert deleted.status == 200 and deleted.body == {"domain": DOMAIN, "deleted": True}
    assert worker.request("GET", f"/v1/domains/{DOMAIN}", headers=admin(worker)).status == 404
    assert sealed_rows(worker) == []
    refused = worker.request("DELETE", f"/v1/domains/{SENDER_DOMAIN}", headers=admin(worker))
    assert (refused.status, refused.body["error"]["rule"]) == (409, "settings_domain")


def test_a_wrong_master_secret_fails_closed_naming_the_setting_only(start_worker, upstream,
                                                                     api_key, zone, tmp_path):
    master = secrets.token_urlsafe(40)
    worker = start(start_worker, upstream, api_key, zone, master)
    assert worker.request("POST", "/v1/domains", {"domain": DOMAIN}, admin(worker)).status == 201

    # The same rows under another master secret: the keys do not open.
    wrong = secrets.token_urlsafe(40)
    other = start(start_worker, upstream, api_key, zone, wrong)
    with sqlite3.connect(database(other), timeout=10) as db:
        for table in ("domains", "domain_keys"):
            for row in rows_of(worker, table):
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    assert sealed_rows(other) == sealed_rows(worker)
    reply = other.request("POST", f"/v1/domains/{DOMAIN}/verify", headers=admin(other))
    assert reply.status == 500, reply.body
    error = reply.body["error"]
    assert error["rule"] == "server_misconfigured"
    assert "DOMAIN_KEYS_SECRET" in error["message"]
    assert wrong not in json.dumps(reply.body) and master not in json.dumps(reply.body)
    assert wrong not in other.log() and master not in other.log()


def selectors_of(raw: bytes) -> list[str]:
    signatures = email.message_from_bytes(raw).get_all("DKIM-Signature")
    return sorted(re.search(r"s=([^;\s]+)", "".join(h.split())).group(1) for h in signatures)


def send_and_receive(worker, count):
    status, sent, _ = worker.send(basic_message(**{"from": f"hello@{DOMAIN}"}))
    assert status == 202, sent
    return wait_for(lambda: len(worker.server.messages) >= count and worker.server.messages,
                    what=f"message {count} at the server")[count - 1].data


def all_verify(raw, zone):
    count = len(email.message_from_bytes(raw).get_all("DKIM-Signature"))
    return all(dkim.DKIM(raw).verify(idx=i, dnsfunc=zone_dns(zone)) for i in range(count))


def test_keys_rotate_without_an_outage(start_worker, upstream, api_key, zone):
    master = secrets.token_urlsafe(40)
    worker = start(start_worker, upstream, api_key, zone, master)
    added = worker.request("POST", "/v1/domains", {"domain": DOMAIN}, admin(worker))
    assert added.status == 201, added.body
    assert added.body["rotation"]["state"] == "steady"
    publish_all(zone, added.body["records"])
    assert verify(worker)["verified"] is True
    answers = []

    # Before: the first generation signs.
    before = send_and_receive(worker, 1)
    assert selectors_of(before) == ["er1-ed25519", "er1-rsa"]

    rotated = worker.request("POST", f"/v1/domains/{DOMAIN}/rotate", headers=admin(worker))
    assert rotated.status == 200, rotated.body
    schema("Domain").validate(rotated.body)
    answers.append(rotated.body)
    rotation = rotated.body["rotation"]
    assert (rotation["state"], rotation["signing_generation"], rotation["next_generation"]) == (
        "rotating", 1, 2)
    roles = {r["selector"]: (r["key_role"], r["required"]) for r in rotated.body["records"]
             if r["purpose"] == "dkim"}
    assert roles == {"er1-rsa": ("signing", True), "er1-ed25519": ("signing", False),
                     "er2-rsa": ("next", False), "er2-ed25519": ("next", False)}
    again = worker.request("POST", f"/v1/domains/{DOMAIN}/rotate", headers=admin(worker))
    assert (again.status, again.body["error"]["rule"]) == (409, "rotation_in_progress"), again.body

    # During: the new records are not published yet; verifying keeps the
    # old keys signing, and the domain stays verified.
    report = verify(worker)
    answers.append(report)
    assert report["verified"] is True and report["rotation"]["state"] == "rotating", report
    assert "no DKIM record" in " ".join(report_of(report, f"er2-rsa._domainkey.{DOMAIN}", "dkim")["problems"])
    during = send_and_receive(worker, 2)
    assert selectors_of(during) == ["er1-ed25519", "er1-rsa"]

    # The new RSA record alone is not enough: the Ed25519 one would fail.
    new = {r["selector"]: r for r in rotated.body["records"] if r["purpose"] == "dkim"}
    zone.publish(new["er2-rsa"]["name"], new["er2-rsa"]["value"])
    assert verify(worker)["rotation"]["state"] == "rotating"

    # After: every new record published and verified, the new keys sign;
    # the old ones stay published, unused, until the grace period ends.
    publish_all(zone, rotated.body["records"])
    report = verify(worker)
    answers.append(report)
    rotation = report["rotation"]
    assert (rotation["state"], rotation["signing_generation"], rotation["retiring_generation"]) == (
        "retiring", 2, 1), report
    removable = rotation["old_record_removable_at"]
    got = worker.request("GET", f"/v1/domains/{DOMAIN}", headers=admin(worker))
    schema("Domain").validate(got.body)
    answers.append(got.body)
    roles = {r["selector"]: (r["key_role"], r["required"]) for r in got.body["records"]
             if r["purpose"] == "dkim"}
    assert roles == {"er1-rsa": ("retiring", False), "er1-ed25519": ("retiring", False),
                     "er2-rsa": ("signing", True), "er2-ed25519": ("signing", False)}
    old_note = next(r["note"] for r in got.body["records"] if r["selector"] == "er1-rsa")
    assert removable[:16] in old_note, (removable, old_note)
    after = send_and_receive(worker, 3)
    assert selectors_of(after) == ["er2-ed25519", "er2-rsa"]
    refused = worker.request("POST", f"/v1/domains/{DOMAIN}/rotate", headers=admin(worker))
    assert (refused.status, refused.body["error"]["rule"]) == (409, "rotation_in_progress")
    assert removable[:10] in refused.body["error"]["message"]

    # Each message verifies against the records DNS serves.
    for raw in (before, during, after):
        assert all_verify(raw, zone)

    # No private key, old or new, in clear anywhere.
    opened = [open_sealed(master, r) for r in sealed_rows(worker)]
    assert len(opened) == 4
    texts = [json.dumps(a) for a in answers] + [worker.log()]
    texts += [value for table, column, value in every_text(worker) if column != "sealed_key"]
    for der in opened:
        for form in clear_forms(der):
            for text in texts:
                assert form not in text


def test_the_cron_trigger_re_verifies_and_raises_domain_updated(start_worker, upstream, api_key,
                                                                zone):
    receiver = WebhookReceiver({}).start()
    try:
        worker = start(start_worker, upstream, api_key, zone, secrets.token_urlsafe(40),
                       WEBHOOK_ALLOW_LOCAL_URLS="on", DOMAIN_RECHECK_MINUTES="0")
        hook = worker.request("POST", "/v1/webhooks", {
            "url": receiver.url("/domains"), "events": ["domain.updated"]}, admin(worker))
        assert hook.status == 201, hook.body
        secret = hook.body["secret"]

        def events(count):
            def got():
                found = [json.loads(d.body) for d in receiver.to("/domains")
                         if Webhook(secret).verify(d.body, d.headers)]
                return len(found) >= count and found
            return wait_for(got, what=f"{count} domain.updated webhook(s)")

        added = worker.request("POST", "/v1/domains", {"domain": DOMAIN}, admin(worker))
        assert added.status == 201, added.body
        publish_all(zone, added.body["records"])
        assert verify(worker)["verified"] is True
        worker.sweep()  # Nothing changed: nothing to raise.

        # A rotation whose new records are published switches on the cron run.
        rotated = worker.request("POST", f"/v1/domains/{DOMAIN}/rotate", headers=admin(worker))
        assert rotated.status == 200, rotated.body
        publish_all(zone, rotated.body["records"])
        worker.sweep()
        switched = events(1)[0]
        assert switched["type"] == "domain.updated"
        assert (switched["data"]["domain"], switched["data"]["reason"]) == (DOMAIN, "key_switched")
        assert switched["data"]["rotation"]["signing_generation"] == 2
        got = worker.request("GET", f"/v1/domains/{DOMAIN}", headers=admin(worker))
        assert got.body["rotation"]["state"] == "retiring", got.body

        # The signing RSA record disappears: the next run names it.
        name = f"er2-rsa._domainkey.{DOMAIN}"
        zone.publish(name)
        assert zone.txt(name) == []
        worker.sweep()
        updated = events(2)[1]
        assert updated["data"]["reason"] == "records_changed", updated
        [record] = updated["data"]["records"]
        assert (record["name"], record["purpose"], record["problem"], record["required"]) == (
            name, "dkim", "missing", True)
        assert "no DKIM record" in " ".join(record["problems"])
        # A warning, not an outage: the domain still sends.
        got = worker.request("GET", f"/v1/domains/{DOMAIN}", headers=admin(worker))
        assert got.body["status"] == "verified"
        assert len(events(2)) == 2
    finally:
        receiver.stop()
