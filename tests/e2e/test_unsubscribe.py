"""One-click unsubscribe (RFC 8058) end to end: marketing mail through a real
SMTP server, every DKIM signature checked by dkimpy, the link posted to as a
mailbox provider posts it, the next send to that address held back by the
suppression list, and the routes refusing what they do not take."""
import email
import email.policy
import http.client
import json
import re
import urllib.parse

import dkim

from edgerelay_harness.keys import SENDER_DOMAIN, dkim_dns
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for

ADA = "ada@example.net"
BOB = "bob@example.net"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def marketing(to, **overrides) -> dict:
    m = {
        "from": f"News <news@{SENDER_DOMAIN}>",
        "to": to,
        "subject": "Spring sale",
        "text": "Everything is half price.\nLeave: {{unsubscribe_url}}",
        "html": '<p>Half price.</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>',
        "stream": "marketing",
    }
    m.update(overrides)
    return m


def transactional(to, subject="Your receipt") -> dict:
    return {"from": f"Shop <shop@{SENDER_DOMAIN}>", "to": to, "subject": subject,
            "text": "Thanks for your order."}


def start(start_worker, upstream, dkim_ed25519, dkim_rsa):
    """A worker signing with both keys (every signature must cover the
    headers) and a STARTTLS + AUTH server."""
    server = upstream().start()
    keys = json.dumps([dkim_ed25519.config, dkim_rsa.config])
    return server, start_worker(server.url, DKIM_KEYS=keys)


def post(url: str, body: bytes, content_type: str | None = FORM, method: str = "POST",
         headers: dict | None = None):
    """One request exactly as sent, never following a redirect: (status,
    headers, body text)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    conn.request(method, parts.path, body=body, headers=sent)
    resp = conn.getresponse()
    text = resp.read().decode(errors="replace")
    conn.close()
    return resp.status, resp.headers, text


def signatures(data: bytes) -> list[str]:
    """Every DKIM-Signature header, unfolded."""
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    return [re.sub(r"\s+", "", str(v)) for v in parsed.get_all("DKIM-Signature", [])]


def signed_names(signature: str) -> list[str]:
    tag = next(t for t in signature.split(";") if t.startswith("h="))
    return tag[2:].lower().split(":")


def email_event_types(worker, message_id: str) -> list[str]:
    return [e["type"] for e in worker.status(message_id).get("email_events", [])]


def received_by(server, address: str) -> list:
    return [m for m in server.messages if m.rcpt_tos == [address]]


def test_a_marketing_message_carries_a_signed_one_click_link_that_unsubscribes(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server, worker = start(start_worker, upstream, dkim_ed25519, dkim_rsa)

    status, body, _ = worker.send(marketing([ADA, BOB]))
    assert status == 202, body
    # One copy per recipient, each with its own id.
    parent = body["id"]
    assert body["copies"] == [{"id": f"{parent}-1", "to": ADA}, {"id": f"{parent}-2", "to": BOB}]
    schema("Accepted").validate(body)

    wait_for(lambda: len(server.messages) == 2, what="both copies at the server")
    links = {}
    for address in (ADA, BOB):
        (msg,) = received_by(server, address)
        parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = re.fullmatch(r"<(http://[^>]+/unsubscribe/[A-Za-z0-9_-]+)>",
                            str(parsed["List-Unsubscribe"]))
        assert link, parsed["List-Unsubscribe"]
        links[address] = link.group(1)
        assert address not in links[address], "the link shows no address"
        # The body carries the same link.
        assert links[address] in parsed.get_body(("plain",)).get_content()
        assert f'href="{links[address]}"' in parsed.get_body(("html",)).get_content()
        # Every signature verifies with dkimpy, and covers (and over-signs)
        # both headers.
        sigs = signatures(msg.data)
        assert len(sigs) == 2, sigs
        verifier = dkim.DKIM(msg.data)
        for index, sig in enumerate(sigs):
            assert verifier.verify(idx=index, dnsfunc=dkim_dns(dkim_ed25519, dkim_rsa)), (index, sig)
            names = signed_names(sig)
            assert names.count("list-unsubscribe") == 2, names
            assert names.count("list-unsubscribe-post") == 2, names
    assert links[ADA] != links[BOB]

    # The parent reads back as its copies; no UNSUBSCRIBE_BASE_URL is set, so
    # each copy warns that its links use the worker's own host.
    group = wait_for(lambda: (g := worker.status(parent))["status"] == "delivered" and g,
                     what="both copies delivered")
    assert [c["id"] for c in group["copies"]] == [f"{parent}-1", f"{parent}-2"]
    schema("MessageGroup").validate(group)
    ada_copy = worker.status(f"{parent}-1")
    schema("MessageStatus").validate(ada_copy)
    assert ada_copy["parent_id"] == parent
    assert ada_copy["warnings"] and ada_copy["warnings"][0].startswith("unsubscribe_base_url_missing")

    # The GET a link scanner makes changes nothing.
    status, headers, page = post(links[ADA], b"", content_type=None, method="GET")
    assert status == 200 and headers["Content-Type"].startswith("text/html"), page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "email.unsubscribed" not in email_event_types(worker, f"{parent}-1")

    # The mailbox provider's one-click POST: no cookie, no credential, 200,
    # never a redirect; posting again changes nothing.
    for _ in range(2):
        status, headers, page = post(links[ADA], ONE_CLICK)
        assert status == 200, page
        assert headers["Location"] is None
        assert "Unsubscribed" in page
    events = wait_for(lambda: [e for e in worker.status(f"{parent}-1")["email_events"]
                               if e["type"] == "email.unsubscribed"],
                      what="email.unsubscribed on Ada's copy")
    assert len(events) == 1, events
    assert events[0]["recipient"] == ADA
    assert events[0]["data"]["unsubscribe"] == {"scope": "stream:marketing"}
    assert events[0]["data"]["subject"] == "Spring sale"
    # Bob did nothing: his copy has no unsubscribe.
    assert "email.unsubscribed" not in email_event_types(worker, f"{parent}-2")

    # Transactional mail to the same address still arrives: the unsubscribe
    # left marketing mail only.
    status, body, _ = worker.send(transactional(ADA))
    assert status == 202, body
    receipt = wait_for(lambda: [m for m in received_by(server, ADA)
                                if b"Your receipt" in m.data], what="the receipt at the server")
    assert b"List-Unsubscribe" not in receipt[0].data


def test_the_next_marketing_send_to_an_unsubscribed_address_is_suppressed(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server, worker = start(start_worker, upstream, dkim_ed25519, dkim_rsa)
    status, body, _ = worker.send(marketing(ADA))
    assert status == 202, body
    (msg,) = wait_for(lambda: received_by(server, ADA), what="the first marketing message")
    link = re.search(rb"List-Unsubscribe: <([^>]+)>", msg.data).group(1).decode()
    status, _, page = post(link, ONE_CLICK)
    assert status == 200, page

    # The next marketing send never reaches the server, is `suppressed` in
    # the status API and emits email.suppressed.
    status, body, _ = worker.send(marketing(ADA, subject="Summer sale"))
    assert status == 202, body
    second = body["id"]
    final = wait_for(lambda: (s := worker.status(second))["recipients"]
                     and s["recipients"][0]["state"] == "suppressed" and s,
                     what="the second message's recipient suppressed")
    assert "email.suppressed" in [e["type"] for e in final["email_events"]]
    # A transactional message sent after it does arrive, so the server has
    # seen everything sent before it: the marketing one never came.
    status, body, _ = worker.send(transactional(ADA))
    assert status == 202, body
    wait_for(lambda: any(b"Your receipt" in m.data for m in received_by(server, ADA)),
             what="the receipt at the server")
    assert not any(b"Summer sale" in m.data for m in server.messages)


def test_the_unsubscribe_routes_refuse_what_they_do_not_take(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server, worker = start(start_worker, upstream, dkim_ed25519, dkim_rsa)
    status, body, _ = worker.send(marketing(ADA, topic="weekly"))
    assert status == 202, body
    message_id = body["id"]
    (msg,) = wait_for(lambda: received_by(server, ADA), what="the marketing message")
    link = re.search(rb"List-Unsubscribe: <([^>]+)>", msg.data).group(1).decode()
    token = link.rsplit("/", 1)[1]
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    base = worker.url + "/unsubscribe/"

    refusals = [
        # (method, url, body, content type, status, rule)
        ("POST", link, b'{"List-Unsubscribe": "One-Click"}', "application/json", 415,
         "unsupported_media_type"),
        ("POST", link, ONE_CLICK, "text/plain", 415, "unsupported_media_type"),
        ("POST", link, ONE_CLICK, None, 415, "unsupported_media_type"),
        ("POST", link, b"", FORM, 400, "one_click_required"),
        ("POST", link, b"List-Unsubscribe=Yes", FORM, 400, "one_click_required"),
        ("POST", link, b"List-Unsubscribe=One-Click&scope=all", FORM, 400, "invalid_scope"),
        ("POST", base + altered, ONE_CLICK, FORM, 404, "invalid_unsubscribe_link"),
        ("POST", base + "A" * 60, ONE_CLICK, FORM, 404, "invalid_unsubscribe_link"),
        ("POST", base + "not-a-token", ONE_CLICK, FORM, 404, "malformed_unsubscribe_link"),
        ("POST", base + "x", ONE_CLICK, FORM, 404, "malformed_unsubscribe_link"),
        ("POST", link, b"List-Unsubscribe=One-Click&pad=" + b"x" * 9000, FORM, 413, "too_large"),
        ("PUT", link, ONE_CLICK, FORM, 405, "method_not_allowed"),
        ("DELETE", link, b"", None, 405, "method_not_allowed"),
        ("POST", link + "/preferences", ONE_CLICK, FORM, 405, "method_not_allowed"),
    ]
    for method, url, sent, content_type, want_status, want_rule in refusals:
        status, headers, text = post(url, sent, content_type, method)
        assert status == want_status, (method, url[-20:], sent[:40], status, text)
        assert json.loads(text)["error"]["rule"] == want_rule, (method, sent[:40], text)
        if status == 405:
            assert headers["Allow"] in ("GET, POST", "GET"), headers["Allow"]

    # A page for a link that does not open says so, with the same status.
    status, headers, page = post(base + altered, b"", None, "GET")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert "did not work" in page
    # The preference page offers the topic and the stream, and changes nothing.
    status, headers, page = post(link + "/preferences", b"", None, "GET")
    assert status == 200, page
    assert 'value="topic"' in page and 'value="stream"' in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    # Nothing above unsubscribed anyone.
    assert "email.unsubscribed" not in email_event_types(worker, message_id)

    # Extra fields never choose the address: the link's own is recorded,
    # with the scope the preference page's button chose. Cookies and
    # credentials are neither needed nor looked at.
    status, _, page = post(link, b"List-Unsubscribe=One-Click&scope=stream&email=" +
                           urllib.parse.quote(BOB).encode(), FORM,
                           headers={"Cookie": "session=1", "Authorization": "Bearer nothing"})
    assert status == 200, page
    events = wait_for(lambda: [e for e in worker.status(message_id)["email_events"]
                               if e["type"] == "email.unsubscribed"], what="the unsubscribe")
    assert [(e["recipient"], e["data"]["unsubscribe"]["scope"]) for e in events] == [
        (ADA, "stream:marketing")]
