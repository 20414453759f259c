"""`POST /v1/messages?dry_run=true` end to end: the answer is the signed MIME a
real send would deliver (dkimpy verifies it; with the clock and entropy fixed
by FIXED_ACCEPT in the diagnostics build, a real send of the same request
delivers exactly these bytes), with its lint; nothing is stored, queued or
sent, and an Idempotency-Key given to a dry run stays free for the real send."""
import email
import json

import dkim

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message, dkim_dns
from edgerelay_harness.paths import DIAGNOSTICS_BUILD
from edgerelay_harness.poll import wait_for

FIXED = "1767225600000:" + "5a" * 32

# Crafted to trip content rules: an image with no alt, link and image hosts.
CRAFTED = basic_message(
    subject="Spring catalogue",
    html='<p>New in: <a href="https://shop.example.org/spring">the catalogue</a></p>'
         '<img src="https://cdn.example.org/banner.png">',
)


def rules(answer: dict) -> dict:
    return {f["rule"]: f["severity"] for f in answer["lint"]}


def verify_every_signature(data: bytes, dnsfunc) -> list[str]:
    """dkimpy checks each DKIM-Signature on its own; returns their algorithms."""
    signatures = email.message_from_bytes(data).get_all("DKIM-Signature") or []
    algorithms = []
    for index, header in enumerate(signatures):
        tags = dict(p.strip().split("=", 1) for p in "".join(header.split()).split(";") if "=" in p)
        algorithms.append(tags["a"])
        assert dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc), f"signature {index} ({tags['a']})"
    return algorithms


def test_a_dry_run_is_what_a_real_send_delivers_and_leaves_nothing(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, FIXED_ACCEPT=FIXED,
                          DKIM_KEYS=json.dumps([dkim_rsa.config, dkim_ed25519.config]))
    headers = {**worker.auth, "Idempotency-Key": "dry-then-real"}

    status, dry, _ = worker.request("POST", "/v1/messages?dry_run=true", CRAFTED, headers)
    assert status == 200, dry
    assert dry["object"] == "dry_run"
    mime = dry["mime"].encode()
    algorithms = verify_every_signature(mime, dkim_dns(dkim_rsa, dkim_ed25519))
    assert sorted(algorithms) == ["ed25519-sha256", "rsa-sha256"]
    assert dry["envelope"] == {"mail_from": f"hello@{SENDER_DOMAIN}", "rcpt_to": ["rcpt@example.net"]}
    found = rules(dry)
    assert found["image_without_alt"] == "warning"
    assert found["link_hosts"] == "info" and found["image_hosts"] == "info"
    assert "shop.example.org" in next(f["message"] for f in dry["lint"] if f["rule"] == "link_hosts")
    # Signed by the From domain with RSA too, text part present: no finding.
    for absent in ("dmarc_alignment", "no_rsa_signature", "missing_text_part", "line_too_long"):
        assert absent not in found, dry["lint"]

    # Nothing stored, nothing queued, nothing sent.
    s, body, _ = worker.request("GET", f"/v1/messages/{dry['id']}", headers=worker.auth)
    assert s == 404, body
    s, page, _ = worker.request("GET", "/v1/messages", headers=worker.auth)
    assert s == 200 and page["data"] == []
    assert server.messages == [] and server.connections == []

    # The real send under the same Idempotency-Key is not a replay of the
    # dry run: it is accepted, and delivers the dry run's bytes exactly.
    status, real, _ = worker.request("POST", "/v1/messages", CRAFTED, headers)
    assert status == 202, real
    assert real["id"] == dry["id"], "FIXED_ACCEPT gives the real send the dry run's id"
    wait_for(lambda: worker.status(real["id"])["status"] == "delivered", what="the real send")
    assert len(server.messages) == 1, "only the real send reached the server"
    received = server.messages[0]
    assert received.data == mime
    assert received.mail_from == dry["envelope"]["mail_from"]
    assert received.rcpt_tos == dry["envelope"]["rcpt_to"]
    assert "no message with its id is stored" not in worker.log(), "the dry run queued no job"


def test_dry_run_in_the_release_build_and_its_parameter(start_worker, upstream, dkim_ed25519):
    server = upstream().start()
    worker = start_worker(server.url)
    unsigned_html = basic_message(text=None, html='<p>Sale</p><img src="cid:x" alt="">')
    unsigned_html.pop("text")

    status, dry, _ = worker.request("POST", "/v1/messages?dry_run=true", unsigned_html, worker.auth)
    assert status == 200, dry
    assert dkim.verify(dry["mime"].encode(), dnsfunc=dkim_dns(dkim_ed25519))
    found = rules(dry)
    # Every sending domain signs with RSA too (an Ed25519-only domain is
    # refused): nothing for Gmail and Microsoft to see unsigned.
    assert "no_rsa_signature" not in found
    assert found["missing_text_part"] == "warning"
    assert "image_without_alt" not in found
    s, _, _ = worker.request("GET", f"/v1/messages/{dry['id']}", headers=worker.auth)
    assert s == 404

    # With delivery=immediate, nothing is delivered either.
    status, body, _ = worker.request("POST", "/v1/messages?dry_run=true&delivery=immediate",
                                     unsigned_html, worker.auth)
    assert status == 200 and body["object"] == "dry_run", body
    for query, rule in [("dry_run=yes", "invalid_dry_run"),
                        ("dry_run=true&dry_run=true", "invalid_dry_run")]:
        status, body, _ = worker.request("POST", f"/v1/messages?{query}", unsigned_html, worker.auth)
        assert status == 422, (query, body)
        assert body["error"]["field"] == "dry_run"
        assert body["error"]["details"][0]["rule"] == rule
    # A validation error is the real send's.
    status, body, _ = worker.request("POST", "/v1/messages?dry_run=true",
                                     basic_message(to="not an address"), worker.auth)
    assert status == 422, body
    s, page, _ = worker.request("GET", "/v1/messages", headers=worker.auth)
    assert page["data"] == []
    assert server.messages == [] and server.connections == []


class Resolver:
    """A DNS-over-HTTPS JSON resolver on loopback with fixed TXT records."""

    def __init__(self, records: dict[str, list[str]]):
        import http.server
        import threading
        from urllib.parse import parse_qs, urlparse

        self.asked: list[str] = []
        resolver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)
                name = query["name"][0]
                resolver.asked.append(f"{name} {query['type'][0]} {self.headers['Accept']}")
                texts = records.get(name)
                answer = {"Status": 0 if texts else 3, "Answer": [
                    {"name": name, "type": 16, "TTL": 60, "data": json.dumps(t)} for t in texts or []]}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/dns-json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dns-query"


def test_the_dry_run_reads_the_from_domain_dmarc_and_bimi_records(start_worker, upstream):
    resolver = Resolver({
        f"_dmarc.{SENDER_DOMAIN}": ["v=DMARC1; p=none; rua=mailto:dmarc@" + SENDER_DOMAIN],
        f"default._bimi.{SENDER_DOMAIN}": ["v=BIMI1; l=https://" + SENDER_DOMAIN + "/logo.svg"],
    })
    worker = start_worker(upstream().start().url, DNS_RESOLVER_URL=resolver.url)
    try:
        status, dry, _ = worker.request("POST", "/v1/messages?dry_run=true", CRAFTED, worker.auth)
        assert status == 200, dry
        found = {f["rule"]: f for f in dry["lint"]}
        assert found["dmarc_policy"]["severity"] == "info"
        assert "p=none" in found["dmarc_policy"]["message"]
        # A BIMI record without enforcement shows no logo.
        assert found["bimi_readiness"]["severity"] == "warning", found["bimi_readiness"]
        # example.com is its own organisational domain: two names.
        assert sorted(resolver.asked) == [
            f"_dmarc.{SENDER_DOMAIN} TXT application/dns-json",
            f"default._bimi.{SENDER_DOMAIN} TXT application/dns-json"]
    finally:
        resolver.server.shutdown()
    # With no resolver answering, the lint says so and the dry run still answers.
    resolver.server.server_close()
    status, dry, _ = worker.request("POST", "/v1/messages?dry_run=true", CRAFTED, worker.auth)
    assert status == 200, dry
    policy = next(f for f in dry["lint"] if f["rule"] == "dmarc_policy")
    assert "could not be asked" in policy["message"], policy
    assert "bimi_readiness" not in {f["rule"] for f in dry["lint"]}
