"""Open and click tracking end to end: a tracked message through a real SMTP
server with its links rewritten and the pixel added before DKIM signing
(every signature checked by dkimpy), the pixel fetched and a link followed
as a browser would (never following the redirect), the events that makes,
404 without a Location for tampered and re-targeted tokens, and a message
without consent that only moves the aggregate counts."""
import base64
import email
import email.policy
import http.client
import json
import re
import sqlite3
import urllib.parse

import dkim

from edgerelay_harness.keys import SENDER_DOMAIN, dkim_dns
from edgerelay_harness.local_d1 import database
from edgerelay_harness.poll import wait_for

ADA = "ada@example.net"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Safari/605.1.15")
SHOP = "https://shop.example.com/spring?utm_source=mail&id=42#top"
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"
HTML = (
    "<html><body>"
    f'<p><a href="{SHOP.replace("&", "&amp;")}">Spring sale</a></p>'
    "<p><a href=https://shop.example.com/b>Unquoted</a></p>"
    '<p><a href="mailto:help@example.com">Write to us</a></p>'
    '<p><a data-notrack href="https://shop.example.com/account">Account</a></p>'
    '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>'
    "</body></html>"
)


def tracked(tracking: dict, **overrides) -> dict:
    m = {
        "from": f"News <news@{SENDER_DOMAIN}>",
        "to": ADA,
        "subject": "Spring sale",
        "text": "Half price. Leave: {{unsubscribe_url}}",
        "html": HTML,
        "stream": "marketing",
        "tracking": tracking,
    }
    m.update(overrides)
    return m


def start(start_worker, upstream, dkim_ed25519, dkim_rsa):
    server = upstream().start()
    keys = json.dumps([dkim_ed25519.config, dkim_rsa.config])
    return server, start_worker(server.url, DKIM_KEYS=keys)


def fetch(url: str, method: str = "GET", agent: str = SAFARI):
    """One request as a browser sends it, never following a redirect:
    (status, headers, body bytes)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(method, parts.path, headers={"User-Agent": agent, "Accept": "*/*"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.headers, body


def html_part(data: bytes) -> str:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    return parsed.get_body(("html",)).get_content()


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def events_of(worker, message_id: str, kind: str) -> list[dict]:
    return [e for e in worker.status(message_id).get("email_events", []) if e["type"] == kind]


def counts(worker) -> list[tuple]:
    """The aggregate tracking counts, read from the worker's local D1."""
    with sqlite3.connect(database(worker), timeout=10) as db:
        return db.execute(
            "SELECT type, machine, per_recipient, SUM(count) FROM tracking_counts "
            "GROUP BY type, machine, per_recipient ORDER BY type, machine, per_recipient"
        ).fetchall()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_tracked_message_is_signed_as_delivered_and_its_hits_become_events(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server, worker = start(start_worker, upstream, dkim_ed25519, dkim_rsa)
    status, body, _ = worker.send(tracked({"opens": True, "clicks": True, "consent": True}))
    assert status == 202, body
    message_id = body["id"]

    (msg,) = wait_for(lambda: server.messages, what="the tracked message at the server")
    # Rewritten before signing: every signature verifies over the tracked body.
    verifier = dkim.DKIM(msg.data)
    parsed = email.message_from_bytes(msg.data, policy=email.policy.compat32)
    assert len(parsed.get_all("DKIM-Signature")) == 2
    for index in range(2):
        assert verifier.verify(idx=index, dnsfunc=dkim_dns(dkim_ed25519, dkim_rsa)), index

    html = html_part(msg.data)
    links = hrefs(html)
    base = worker.url.rstrip("/")
    clicks = [h for h in links if h.startswith(f"{base}/t/c/")]
    assert len(clicks) == 2, links
    # Left alone: mailto, the data-notrack link and the unsubscribe link
    # (the same link as List-Unsubscribe).
    assert "mailto:help@example.com" in links
    assert "https://shop.example.com/account" in links
    unsubscribe = re.search(rb"List-Unsubscribe: <([^>]+)>", msg.data).group(1).decode()
    assert unsubscribe in links and "/unsubscribe/" in unsubscribe
    assert SHOP not in html
    pixel = re.search(r'<img src="([^"]+)" alt="" width="1" height="1"', html)
    assert pixel and pixel.group(1).startswith(f"{base}/t/o/"), html
    assert html.index(pixel.group(0)) < html.lower().index("</body>")

    # The pixel: a 43-byte transparent GIF no cache keeps.
    status, headers, gif = fetch(pixel.group(1))
    assert status == 200
    assert headers["Content-Type"] == "image/gif"
    assert len(gif) == 43 and gif.startswith(b"GIF89a")
    assert headers["Cache-Control"] == NO_STORE
    assert headers["Pragma"] == "no-cache"

    # The link: 302 to exactly the URL of the original link.
    status, headers, _ = fetch(clicks[0])
    assert status == 302
    assert headers["Location"] == SHOP
    assert headers["Referrer-Policy"] == "no-referrer"
    status, headers, _ = fetch(clicks[1])
    assert (status, headers["Location"]) == (302, "https://shop.example.com/b")

    opened = wait_for(lambda: events_of(worker, message_id, "email.opened"),
                      what="email.opened")
    assert len(opened) == 1, opened
    assert opened[0]["recipient"] == ADA
    data = opened[0]["data"]
    assert data["open"] == {"user_agent_class": "browser"}
    assert (data["machine"], data["machine_reason"], data["first"]) == (False, None, True)
    clicked = wait_for(lambda: len(e := events_of(worker, message_id, "email.clicked")) == 2
                       and e, what="two email.clicked")
    by_index = {e["data"]["click"]["link_index"]: e["data"] for e in clicked}
    assert by_index[0]["click"]["link"] == SHOP
    assert by_index[1]["click"]["link"] == "https://shop.example.com/b"
    # The first click counts for unique clicks, the second does not.
    assert (by_index[0]["first"], by_index[1]["first"]) == (True, False)
    for data in by_index.values():
        # A click seconds after the hand-off is a scanner's, unless it came
        # later than that: either way the flag and its reason agree.
        assert data["machine"] == (data["machine_reason"] == "too_soon"), data
    assert {e["recipient"] for e in clicked} == {ADA}

    # Machines are recorded, flagged: a HEAD on a link, a library's fetch.
    status, headers, _ = fetch(clicks[0], method="HEAD")
    assert (status, headers["Location"]) == (302, SHOP)
    fetch(pixel.group(1), agent="python-requests/2.32")
    machine = wait_for(
        lambda: {e["data"]["machine_reason"] for e in worker.status(message_id)["email_events"]
                 if e["type"] in ("email.opened", "email.clicked")} >= {
                     "head_request", "known_scanner"},
        what="machine hits flagged")
    assert machine

    # The statistics count these events: every open and click, the first
    # of each as unique, and only people's as human.
    events = [e for e in worker.status(message_id)["email_events"]
              if e["type"] in ("email.opened", "email.clicked")]
    human_clicks = sum(1 for e in events
                       if e["type"] == "email.clicked" and not e["data"]["machine"])
    status, stats, _ = worker.request("GET", "/v1/stats?bucket=day&stream=marketing",
                                      headers=worker.auth)
    assert status == 200, stats
    m = stats["totals"]["metrics"]
    assert (m["opens"], m["unique_opens"], m["human_opens"]) == (2, 1, 1), m
    assert (m["clicks"], m["unique_clicks"], m["human_clicks"]) == (3, 1, human_clicks), m

    # Tampered, truncated and re-targeted tokens: 404, never a Location.
    token = clicks[0].rsplit("/", 1)[1]
    raw = unb64(token)
    original = SHOP.encode()
    at = raw.index(original)
    retargeted = raw[:at] + b"https://evil.example.net/phish" + raw[at + len(original):]
    flipped = bytearray(raw)
    flipped[at + 8] ^= 0x01
    for bad in (b64(retargeted), b64(bytes(flipped)), b64(raw[:-1]), token[:-3] + "AAA",
                "not-a-token", pixel.group(1).rsplit("/", 1)[1]):
        for method in ("GET", "HEAD"):
            status, headers, _ = fetch(f"{base}/t/c/{bad}", method=method)
            assert status == 404, (bad, method)
            assert headers["Location"] is None, (bad, method)
    status, headers, _ = fetch(f"{base}/t/o/{token}")
    assert status == 404 and headers["Content-Type"] != "image/gif"

    # Every valid hit was counted too; the consented ones as per-recipient.
    wait_for(lambda: sum(n for (_, _, per_recipient, n) in counts(worker)
                         if per_recipient == 1) == 5, what="five hits counted")
    assert all(per_recipient == 1 for (_, _, per_recipient, _) in counts(worker))


def test_without_consent_no_event_names_anyone_but_the_counts_move(
        start_worker, upstream, dkim_ed25519, dkim_rsa):
    server, worker = start(start_worker, upstream, dkim_ed25519, dkim_rsa)
    ids = []
    for tracking in ({"opens": True, "clicks": True},
                     {"opens": True, "clicks": True, "mode": "aggregate"}):
        status, body, _ = worker.send(tracked(tracking, subject=f"Sale {tracking.get('mode')}"))
        assert status == 202, body
        ids.append(body["id"])
    wait_for(lambda: len(server.messages) == 2, what="both messages at the server")
    for msg in server.messages:
        html = html_part(msg.data)
        (pixel,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)"', html)
        click = next(h for h in hrefs(html) if "/t/c/" in h)
        assert fetch(pixel)[0] == 200
        status, headers, _ = fetch(click)
        assert (status, headers["Location"]) == (302, SHOP)
    # The counts move (a click seconds after the hand-off is counted as a
    # machine's)...
    def moved():
        totals = {}
        for kind, machine, per_recipient, n in counts(worker):
            assert per_recipient == 0 and (kind == "email.clicked" or machine == 0), counts(worker)
            totals[kind] = totals.get(kind, 0) + n
        return totals == {"email.clicked": 2, "email.opened": 2}

    wait_for(moved, what="two opens and two clicks counted")
    # The statistics count them as well, and none as unique: they name no one.
    status, stats, _ = worker.request("GET", "/v1/stats?bucket=day", headers=worker.auth)
    assert status == 200, stats
    m = stats["totals"]["metrics"]
    assert (m["opens"], m["clicks"], m["unique_opens"], m["unique_clicks"]) == (2, 2, 0, 0), m
    people = {kind: 0 for kind in ("email.opened", "email.clicked")}
    for kind, machine, _, n in counts(worker):
        people[kind] += 0 if machine else n
    assert (m["human_opens"], m["human_clicks"]) == (
        people["email.opened"], people["email.clicked"]), (m, people)
    # ...and no event names the recipient (a hit's event is stored before
    # its count, so there is none to wait for).
    for message_id in ids:
        types = [e["type"] for e in worker.status(message_id)["email_events"]]
        assert "email.opened" not in types and "email.clicked" not in types, types
