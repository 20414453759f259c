"""The reputation guard in workerd: complaints (ARF reports through the email
handler, as mailbox providers send them) push a tenant's complaint rate past
the threshold; below the minimum volume the cron trigger pauses nothing, at
it the tenant's marketing stream pauses and `stream.paused` reaches a
webhook subscribed to it. While paused, marketing mail is held (status
`held`, never at the smarthost, no attempt spent, put back again and again
without failing) and transactional mail is delivered; the dashboard shows
the pause. A resume fires `stream.resumed` and the held mail goes out."""
import json

from playwright.sync_api import sync_playwright
from standardwebhooks import Webhook

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message
from edgerelay_harness.openapi import schema
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.webhook_receiver import WebhookReceiver

RETURN_PATH_DOMAIN = f"rp.{SENDER_DOMAIN}"
ARF = ROOT / "tests" / "fixtures" / "reports" / "arf-rfc5965.eml"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")
MARKETING = {"stream": "marketing", "text": "Half price. Leave: {{unsubscribe_url}}",
             "html": '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>'}
# Four messages sent is the minimum volume: one complaint in four is 25%.
MIN_VOLUME = 4
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def settled(worker, message_id, states=FINAL):
    def done():
        record = worker.status(message_id)
        return record["status"] in states and record
    return wait_for(done, timeout=60, what=f"{message_id} to reach {states}")


def guard(worker) -> dict:
    s, body, _ = worker.request("GET", "/v1/streams/marketing", headers=worker.auth)
    assert s == 200, body
    schema("MarketingStream").validate(body)
    return body


def complain(worker, upstream, reader: str, n: int):
    """A mailbox provider's ARF report about the message `reader` got,
    quoting the return path it went out with."""
    [sent] = [m for m in upstream.messages if reader in m.rcpt_tos]
    arf = ARF.read_bytes().replace(b"b+tok@rp.example.com", sent.mail_from.encode())
    arf = arf.replace(b"user@example.net", reader.encode())
    arf = f"Message-ID: <arf-{n}@mail.example.net>\r\n".encode() + arf
    s, answer, _ = worker.email(arf, "abuse@mail.example.net", f"fbl@{RETURN_PATH_DOMAIN}")
    assert s == 200 and answer.get("rejectReason") is None, answer


def dashboard_banner(worker) -> str | None:
    """The dashboard's pause banner once the board is drawn, or None."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{worker.url}/dashboard")
            page.fill("#key", worker.api_key)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#board:not([hidden]) #cards .card")
            return None if page.is_hidden("#paused") else page.inner_text("#paused")
        finally:
            browser.close()


def hook_events(receiver, secret):
    return [json.loads(d.body) for d in receiver.to("/guard")
            if Webhook(secret).verify(d.body, d.headers)]


def test_complaints_pause_marketing_until_it_is_resumed(start_worker, upstream):
    server = upstream().start()
    receiver = WebhookReceiver({}).start()
    try:
        worker = start_worker(server.url, RETURN_PATH_DOMAINS=json.dumps(
            {SENDER_DOMAIN: RETURN_PATH_DOMAIN}), WEBHOOK_ALLOW_LOCAL_URLS="on",
            REPUTATION_MIN_VOLUME=str(MIN_VOLUME), REPUTATION_HOLD_SECONDS="1")
        # A subscription that selects the stream events alone.
        s, hook, _ = worker.request("POST", "/v1/webhooks", {
            "url": receiver.url("/guard"), "events": ["stream.paused", "stream.resumed"]},
            worker.auth)
        assert s == 201, hook
        secret = hook["secret"]

        readers = [f"reader{i}@example.net" for i in range(MIN_VOLUME)]
        for reader in readers[:-1]:
            s, accepted, _ = worker.send(basic_message(to=reader))
            assert s == 202, accepted
            assert settled(worker, accepted["id"])["status"] == "delivered"
        complain(worker, server, readers[0], 1)

        # Below the minimum volume a complaint rate of a third pauses nothing.
        worker.sweep()
        state = guard(worker)
        assert state["state"] == "active", state
        assert state["window"]["volume"] == {"sent": 3, "complaints": 1, "hard_bounces": 0}
        assert state["thresholds"]["min_volume"] == MIN_VOLUME

        # At the minimum volume, 1 complaint in 4 is past 0.3%: paused.
        s, accepted, _ = worker.send(basic_message(to=readers[-1]))
        assert s == 202, accepted
        settled(worker, accepted["id"])
        worker.sweep()
        state = guard(worker)
        assert (state["state"], state["reason"]) == ("paused", "complaint_rate"), state
        [paused] = wait_for(lambda: hook_events(receiver, secret) or None,
                            what="stream.paused at the webhook")
        assert paused["type"] == "stream.paused"
        data = paused["data"]
        assert "email_id" not in data
        assert (data["stream"], data["reason"]) == ("marketing", "complaint_rate")
        assert data["volume"] == {"sent": 4, "complaints": 1, "hard_bounces": 0}
        assert data["rates"] == {"complaint": 0.25, "hard_bounce": 0.0}
        assert data["thresholds"]["complaint_rate"] == 0.003
        assert data["thresholds"]["min_volume"] == MIN_VOLUME
        assert state["paused"] == data
        # Another run does not pause (or announce) it twice.
        worker.sweep()
        # The dashboard says so, and why.
        banner = dashboard_banner(worker)
        assert banner and "Marketing mail is paused" in banner, banner
        assert "complaint rate reached 25.0% (threshold 0.30%)" in banner, banner

        # Marketing mail waits; transactional mail goes on.
        held_to, plain_to, quick_to = "held@example.net", "plain@example.net", "quick@example.net"
        s, held, _ = worker.send(basic_message(to=held_to, **MARKETING))
        assert s == 202, held
        s, quick, _ = worker.request("POST", "/v1/messages?delivery=immediate",
                                     basic_message(to=quick_to, **MARKETING), worker.auth)
        assert s == 202 and quick["status"] == "queued", quick
        s, plain, _ = worker.send(basic_message(to=plain_to))
        assert s == 202, plain
        assert settled(worker, plain["id"])["status"] == "delivered"
        for message in (held, quick):
            record = settled(worker, message["id"], ("held",))
            assert record["attempts"] == 0, record
        # Put back again and again (each time without an attempt), never failed.
        wait_for(lambda: worker.log().count("marketing_held") >= 4, timeout=60,
                 what="held jobs to come back and be held again")
        for message in (held, quick):
            record = worker.status(message["id"])
            assert (record["status"], record["attempts"]) == ("held", 0), record
        assert server.deliveries_to(held_to) == 0 and server.deliveries_to(quick_to) == 0
        assert server.deliveries_to(plain_to) == 1
        s, listed, _ = worker.request("GET", "/v1/messages?status=held", headers=worker.auth)
        assert s == 200 and {m["id"] for m in listed["data"]} == {held["id"], quick["id"]}, listed

        # The resume fires stream.resumed and lets the held mail go.
        s, resumed, _ = worker.request("POST", "/v1/streams/marketing/resume", headers=worker.auth)
        assert s == 200, resumed
        schema("MarketingStream").validate(resumed)
        assert resumed["state"] == "active" and resumed["resumed_by"] == "e2e", resumed
        events = wait_for(lambda: len(hook_events(receiver, secret)) == 2
                          and hook_events(receiver, secret), what="stream.resumed")
        assert [e["type"] for e in events] == ["stream.paused", "stream.resumed"]
        again = events[1]["data"]
        assert (again["reason"], again["rates"], again["volume"]) == (
            "complaint_rate", data["rates"], data["volume"])
        assert again["resumed_by"] == "e2e" and again["paused_at"]
        for message in (held, quick):
            record = settled(worker, message["id"])
            assert (record["status"], record["attempts"]) == ("delivered", 1), record
        assert server.deliveries_to(held_to) == 1 and server.deliveries_to(quick_to) == 1

        # The complaints before the resume do not pause it again, and a
        # second resume changes nothing and fires nothing.
        worker.sweep()
        assert guard(worker)["state"] == "active"
        assert dashboard_banner(worker) is None
        s, body, _ = worker.request("POST", "/v1/streams/marketing/resume", headers=worker.auth)
        assert s == 200 and body["state"] == "active", body
        worker.sweep()
        assert len(hook_events(receiver, secret)) == 2
        assert worker.log().count('"marketing_paused"') == 1
    finally:
        receiver.stop()


def test_the_guard_needs_a_key_and_takes_no_other_method(start_worker, upstream):
    worker = start_worker(upstream().start().url)
    s, body, _ = worker.request("GET", "/v1/streams/marketing")
    assert s == 401, body
    s, body, headers = worker.request("DELETE", "/v1/streams/marketing/resume",
                                      headers=worker.auth)
    assert s == 405 and headers["Allow"] == "POST", body
    state = guard(worker)
    assert (state["state"], state["reason"], state["paused_at"]) == ("active", None, None)
    assert state["window"]["volume"] == {"sent": 0, "complaints": 0, "hard_bounces": 0}
