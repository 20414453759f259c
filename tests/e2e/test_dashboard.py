"""The dashboard in headless Chromium against the worker in workerd: a wrong
key gets a readable refusal; the right one draws the totals, the rate and
volume charts, the per-tag table, the latest failures with their SMTP
replies and the suppression list, from a seeded run; the key stays out of
every URL. With EDGERELAY_SCREENSHOTS=1 it also refreshes the screenshots in
docs/img/."""
import os

import pytest
from playwright.sync_api import sync_playwright

from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
GONE = "gone@example.net"
FINAL = ("delivered", "partially_delivered", "failed")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def seeded(start_worker, upstream):
    server = upstream(behaviour=Behaviour(rcpt_replies={GONE: "550 5.1.1 <gone@example.net>: No such user"})).start()
    worker = start_worker(server.url)
    ids = []
    for i, (tag, to) in enumerate([("welcome", "a@example.net"), ("welcome", "b@example.net"),
                                   ("digest", "c@example.net"), ("digest", GONE)]):
        s, body, _ = worker.send(basic_message(to=to, subject=f"Hello {i}", tags={"kind": tag}))
        assert s == 202, body
        ids.append(body["id"])
    for message_id in ids:
        def done(message_id=message_id):
            s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=worker.auth)
            return s == 200 and body["status"] in FINAL
        wait_for(done, timeout=60, what=f"{message_id} to settle")
    return worker


def test_a_wrong_key_is_refused_with_a_readable_message(browser, seeded):
    page = browser.new_page()
    page.goto(f"{seeded.url}/dashboard")
    page.fill("#key", "er_not_a_key_of_this_worker")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "not accepted" in page.inner_text("#login-error")
    assert page.is_hidden("#board")
    assert page.evaluate("sessionStorage.getItem('edgerelay.key')") is None
    page.close()


def test_the_dashboard_draws_a_seeded_run(browser, seeded):
    requests = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda r: requests.append((r.url, r.headers)))
    page.goto(f"{seeded.url}/dashboard")
    page.fill("#key", seeded.api_key)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#board:not([hidden]) #cards .card")

    cards = dict(zip(page.locator("#cards .card .label").all_text_contents(),
                     page.locator("#cards .card .value").all_text_contents()))
    # 4 accepted, 3 taken by the smarthost, 1 hard bounce: a third of sent.
    assert (cards["Accepted"], cards["Sent"], cards["Bounced"]) == ("4", "3", "33.3%"), cards

    # The charts: one point per bucket of the week for the delivered and
    # bounced series with mail in them, and a volume bar per bucket.
    assert page.locator("#chart svg circle[data-series=bounced]").count() == 1
    assert page.locator("#volume svg rect[data-series=sent]").count() == 7
    assert page.locator("#legend span").count() == 5

    tags = sorted(page.locator("#tags tbody tr").all_inner_texts())
    assert [row.split()[0] for row in tags] == ["kind:digest", "kind:welcome"], tags
    # digest: 2 accepted, 1 sent, and 1 bounce over 1 sent.
    assert tags[0].split()[1:4] == ["2", "1", "100.0%"], tags

    failures = page.locator("#failures tbody tr").all_inner_texts()
    assert len(failures) == 1 and "550 5.1.1" in failures[0] and GONE in failures[0], failures
    suppressed = page.locator("#suppressions tbody tr").all_inner_texts()
    assert len(suppressed) == 1 and GONE in suppressed[0] and "hard_bounce" in suppressed[0]

    # The key went in the Authorization header only, to the worker only.
    api_calls = [(u, h) for u, h in requests if "/v1/" in u]
    assert api_calls and all(h.get("authorization") == f"Bearer {seeded.api_key}"
                             for _, h in api_calls)
    assert all(u.startswith(seeded.url) for u, _ in requests)
    assert all(seeded.api_key not in u for u, _ in requests)
    assert seeded.api_key not in page.url

    # A reload keeps the session; "Forget key" drops it.
    page.reload()
    page.wait_for_selector("#board:not([hidden]) #cards .card")
    shots = ROOT / "docs" / "img" if os.environ.get("EDGERELAY_SCREENSHOTS") == "1" else None
    if shots:
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "dashboard-laptop.png"), full_page=True)
    page.click("#forget")
    assert page.is_visible("#login") and page.is_hidden("#board")
    assert page.evaluate("sessionStorage.getItem('edgerelay.key')") is None
    page.close()

    # On a phone: nothing wider than the screen but the tables, which scroll.
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True)
    phone.goto(f"{seeded.url}/dashboard")
    phone.fill("#key", seeded.api_key)
    phone.click("#login button[type=submit]")
    phone.wait_for_selector("#board:not([hidden]) #cards .card")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    if shots:
        phone.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)
    phone.close()
