"""Calling edgerelay from a page: publishable keys, CORS, abuse limits, and the
example contact form driven in headless Chromium."""
import email
import email.policy
import functools
import http.server
import json
import threading
import tomllib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from edgerelay_harness.keys import SENDER_DOMAIN
from edgerelay_harness.net import free_port
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for

PUBLISHABLE_KEY = "pk_test_contact_0123456789"
OWNER = f"owner@{SENDER_DOMAIN}"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def forms_config(*origins, **overrides):
    form = {
        "id": "contact",
        "key": PUBLISHABLE_KEY,
        "origins": list(origins),
        "from": f"Example site <forms@{SENDER_DOMAIN}>",
        "to": [OWNER],
        "subject": "Contact form: {{name}}",
        "text": "From {{name}} <{{email}}>\n\n{{message}}",
        "fields": {
            "name": {"required": True, "max_length": 100},
            "email": {"kind": "email", "required": True},
            "message": {"kind": "multiline", "required": True, "max_length": 5000},
        },
        "reply_to_field": "email",
    }
    form.update(overrides)
    return json.dumps([form])


class PageServer:
    """Serves the example contact form, pointed at a worker, on its own port."""

    def __init__(self, tmp: Path, worker_url: str, port: int, key: str = PUBLISHABLE_KEY):
        html = (ROOT / "examples" / "contact-form" / "index.html").read_text()
        html = html.replace('data-endpoint="https://edgerelay.example.workers.dev"', f'data-endpoint="{worker_url}"')
        html = html.replace('data-key="pk_live_replace_me"', f'data-key="{key}"')
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "index.html").write_text(html)
        handler = functools.partial(QuietHandler, directory=str(tmp))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.origin = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def submit_form(browser, page_url, name="Ada Lovelace", email_addr="ada@example.net",
                message="Hello from the page.\nSecond line.", honeypot=None):
    page = browser.new_page()
    page.goto(page_url)
    page.fill("#name", name)
    page.fill("#email", email_addr)
    page.fill("#message", message)
    if honeypot is not None:
        page.evaluate("v => { document.getElementById('_gotcha').value = v }", honeypot)
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('status').dataset.state === 'success'"
                           " || document.getElementById('status').dataset.state === 'error'")
    state = page.get_attribute("#status", "data-state")
    text = page.inner_text("#status")
    page.close()
    return state, text


def form_post(worker, body, origin, key=PUBLISHABLE_KEY):
    return worker.request("POST", "/v1/forms/submit", body,
                          {"Authorization": f"Bearer {key}", "Origin": origin})


def test_contact_form_in_chromium_delivers_with_visitor_as_reply_to(start_worker, upstream, browser, tmp_path):
    server = upstream().start()
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    worker = start_worker(server.url, PUBLISHABLE_KEYS=forms_config(origin))
    page = PageServer(tmp_path / "site", worker.url, page_port)
    try:
        state, text = submit_form(browser, page.origin + "/index.html")
        assert state == "success", text

        received = wait_for(lambda: server.messages, what="the form's message at the server")
        assert len(received) == 1
        msg = email.message_from_bytes(received[0].data, policy=email.policy.default)
        assert received[0].rcpt_tos == [OWNER]
        assert msg["From"].addresses[0].addr_spec == f"forms@{SENDER_DOMAIN}"
        assert msg["Reply-To"].addresses[0].addr_spec == "ada@example.net"
        assert msg["Subject"] == "Contact form: Ada Lovelace"
        assert "Hello from the page.\nSecond line." in msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    finally:
        page.close()


def test_other_origins_and_secret_keys_cannot_send(start_worker, upstream, browser, tmp_path):
    server = upstream().start()
    allowed_port, other_port = free_port(), free_port()
    allowed = f"http://127.0.0.1:{allowed_port}"
    worker = start_worker(server.url, PUBLISHABLE_KEYS=forms_config(allowed))
    other_page = PageServer(tmp_path / "other", worker.url, other_port)
    try:
        # The browser itself refuses: the preflight from this origin fails.
        state, text = submit_form(browser, other_page.origin + "/index.html")
        assert state == "error"
        assert "could not be reached" in text

        s, body, headers = form_post(worker, {"fields": {}}, other_page.origin)
        assert s == 403 and body["error"]["rule"] == "origin_not_allowed"
        assert headers.get("Access-Control-Allow-Origin") is None

        s, _, headers = worker.request("OPTIONS", "/v1/forms/submit", headers={
            "Origin": other_page.origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert s == 403 and headers.get("Access-Control-Allow-Origin") is None

        s, _, headers = worker.request("OPTIONS", "/v1/forms/submit", headers={
            "Origin": allowed, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert s == 204
        assert headers["Access-Control-Allow-Origin"] == allowed
        assert "Access-Control-Allow-Credentials" not in headers

        # A secret key from a page is refused, even a valid one.
        s, body, _ = worker.request("POST", "/v1/messages",
                                    {"from": f"a@{SENDER_DOMAIN}", "to": "b@example.net", "subject": "x", "text": "y"},
                                    {"Authorization": f"Bearer {worker.api_key}", "Origin": allowed})
        assert s == 403 and body["error"]["rule"] == "secret_key_in_browser"

        # A publishable key is not an API key.
        s, body, _ = worker.request("POST", "/v1/messages",
                                    {"from": f"a@{SENDER_DOMAIN}", "to": "b@example.net", "subject": "x", "text": "y"},
                                    {"Authorization": f"Bearer {PUBLISHABLE_KEY}"})
        assert s == 401
    finally:
        other_page.close()
    assert server.messages == []


def test_honeypot_is_silent_and_a_page_cannot_change_the_message(start_worker, upstream):
    server = upstream().start()
    origin = "http://127.0.0.1:9"
    # A roomy limit here: this test is about what gets through, not how often.
    worker = start_worker(server.url, PUBLISHABLE_KEYS=forms_config(origin),
                          config_overrides={"ratelimits": rate_limits(ip_limit=100)})

    # The honeypot filled in: answered like a success, never delivered.
    bot = {"name": "Bot", "email": "bot@example.net", "message": "buy now", "_gotcha": "http://spam.example"}
    s, body, headers = form_post(worker, {"fields": bot}, origin)
    assert s == 202 and body["status"] == "queued", body
    assert headers["Access-Control-Allow-Origin"] == origin

    # What a publishable key cannot change: recipients, From, headers, attachments.
    base = {"name": "Ada", "email": "ada@example.net", "message": "hi"}
    for extra, field, rule in [
        ({"to": "someone@evil.test"}, "to", "not_allowed"),
        ({"from": "ceo@example.com"}, "", "invalid_form"),
        ({"headers": {"Bcc": "x@evil.test"}}, "", "invalid_form"),
        ({"attachments": [{"filename": "a.exe", "content": "AAAA"}]}, "", "invalid_form"),
        ({"html": "<img src=x>"}, "", "invalid_form"),
    ]:
        s, body, headers = form_post(worker, {"fields": base, **extra}, origin)
        assert s == 422, (extra, body)
        problem = body["error"]["details"][0]
        assert (problem["field"], problem["rule"]) == (field, rule), body
        assert headers["Access-Control-Allow-Origin"] == origin, "errors carry CORS headers"
    s, body, _ = form_post(worker, {"fields": {**base, "name": "A\r\nBcc: x@evil.test"}}, origin)
    assert s == 422 and body["error"]["details"][0]["rule"] == "header_injection"

    # A legitimate submission after all that: it is the only thing that arrives.
    s, body, _ = form_post(worker, {"fields": {**base, "message": "the legitimate one"}}, origin)
    assert s == 202, body
    # (Form messages belong to the form, not to an API key: watch the server.)
    wait_for(lambda: server.messages, what="the legitimate message")
    assert len(server.messages) == 1
    assert b"the legitimate one" in server.messages[0].data


def test_rate_limit_answers_429_with_retry_after(start_worker, upstream):
    server = upstream().start()
    origin = "http://127.0.0.1:9"
    worker = start_worker(server.url, PUBLISHABLE_KEYS=forms_config(origin))  # 5 per minute per client
    base = {"name": "Ada", "email": "ada@example.net", "message": "hi"}
    for n in range(5):
        s, body, _ = form_post(worker, {"fields": {**base, "message": f"message {n}"}}, origin)
        assert s == 202, (n, body)
    s, body, headers = form_post(worker, {"fields": {**base, "message": "one too many"}}, origin)
    assert s == 429, body
    assert body["error"]["rule"] == "rate_limited"
    assert headers["Retry-After"] == "60"
    assert headers["Access-Control-Allow-Origin"] == origin
    wait_for(lambda: len(server.messages) == 5, what="the five accepted messages")
    assert all(b"one too many" not in m.data for m in server.messages)


def rate_limits(ip_limit: int):
    with open(ROOT / "wrangler.toml", "rb") as f:
        limits = tomllib.load(f)["ratelimits"]
    for limit in limits:
        if limit["name"] == "FORM_IP_LIMITER":
            limit["simple"]["limit"] = ip_limit
    return limits


class TurnstileVerifier(http.server.BaseHTTPRequestHandler):
    """Stands in for Turnstile's siteverify endpoint on loopback: it passes
    the token "pass" sent with the right secret, and records what it got."""
    seen: list = []

    def do_POST(self):
        import urllib.parse
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        TurnstileVerifier.seen.append(form)
        ok = form.get("secret") == ["ts-secret"] and form.get("response") == ["pass"]
        body = json.dumps({"success": ok, "error-codes": [] if ok else ["invalid-input-response"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_turnstile_is_verified_server_side(start_worker, upstream):
    server = upstream().start()
    verifier = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TurnstileVerifier)
    threading.Thread(target=verifier.serve_forever, daemon=True).start()
    origin = "http://127.0.0.1:9"
    try:
        worker = start_worker(
            server.url,
            PUBLISHABLE_KEYS=forms_config(origin, turnstile=True),
            TURNSTILE_SECRET="ts-secret",
            TURNSTILE_VERIFY_URL=f"http://127.0.0.1:{verifier.server_address[1]}/siteverify",
        )
        base = {"name": "Ada", "email": "ada@example.net", "message": "hi"}
        s, body, _ = form_post(worker, {"fields": base}, origin)
        assert s == 422 and body["error"]["details"][0]["field"] == "turnstile_token"
        s, body, _ = form_post(worker, {"fields": base, "turnstile_token": "fail"}, origin)
        assert s == 403 and body["error"]["rule"] == "turnstile_failed"
        s, body, _ = form_post(worker, {"fields": {**base, "message": "verified"}, "turnstile_token": "pass"}, origin)
        assert s == 202, body
        wait_for(lambda: server.messages, what="the verified message")
        assert len(server.messages) == 1 and b"verified" in server.messages[0].data
        assert [f["response"] for f in TurnstileVerifier.seen] == [["fail"], ["pass"]]
    finally:
        verifier.shutdown()
