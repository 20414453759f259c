"""The whole path: HTTP -> queue -> SMTP -> a real server, DKIM-verified by dkimpy."""
import email
import email.policy

import dkim

from edgerelay_harness.keys import SENDER_DOMAIN, basic_message, dkim_dns
from edgerelay_harness.net import free_port
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour


def test_signed_message_reaches_a_starttls_auth_server_and_verifies(start_worker, upstream, dkim_ed25519):
    server = upstream().start()
    worker = start_worker(server.url)

    status, body, _ = worker.send(basic_message())
    assert status == 202, body
    message_id = body["id"]

    received = wait_for(lambda: server.messages, what="the message at the server")
    assert len(received) == 1
    msg = received[0]
    assert msg.mail_from == f"hello@{SENDER_DOMAIN}"
    assert msg.rcpt_tos == ["rcpt@example.net"]
    # Someone else's DKIM verifier, given the public key instead of DNS.
    assert dkim.verify(msg.data, dnsfunc=dkim_dns(dkim_ed25519)), msg.data[:600]
    parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
    assert parsed["Subject"] == "Hello from the edge"
    assert parsed["From"].addresses[0].addr_spec == f"hello@{SENDER_DOMAIN}"
    assert parsed["Message-ID"].endswith(f"@{SENDER_DOMAIN}>")
    text = parsed.get_body(("plain",)).get_content()
    assert "\n.\nwith a lone dot line" in text.replace("\r\n", "\n")
    # The connection was secured and authenticated: the server requires both.
    assert len(server.connections) == 1

    final = wait_for(lambda: (s := worker.status(message_id))["status"] == "delivered" and s,
                     what="status delivered")
    assert final["attempts"] == 1


def test_upstream_down_is_retried_until_it_comes_up(start_worker, upstream, dkim_ed25519):
    port = free_port()
    server = upstream(port=port)  # not started: connections are refused
    worker = start_worker(server.url)

    status, body, _ = worker.send(basic_message(subject="retry me"))
    assert status == 202, body
    message_id = body["id"]

    deferred = wait_for(lambda: (s := worker.status(message_id))["status"] == "deferred" and s,
                        what="the first attempt to be deferred")
    assert deferred["attempts"] >= 1
    assert "connect" in (deferred["last_error"] or "").lower()

    server.start()
    wait_for(lambda: worker.status(message_id)["status"] == "delivered", what="delivery after upstream start")
    received = server.messages
    assert len(received) == 1, "delivered exactly once"
    assert dkim.verify(received[0].data, dnsfunc=dkim_dns(dkim_ed25519))
    kinds = [e["kind"] for e in worker.status(message_id)["events"]]
    assert kinds[0] == "accepted"
    assert "deferred" in kinds and kinds[-1] == "delivered"


def test_permanent_rcpt_rejection_is_dead_lettered_without_retry(start_worker, upstream):
    server = upstream(behaviour=Behaviour(rcpt_replies={"nobody@example.net": "550 5.1.1 No such user"})).start()
    worker = start_worker(server.url)

    status, body, _ = worker.send(basic_message(to="nobody@example.net"))
    assert status == 202, body
    message_id = body["id"]

    failed = wait_for(lambda: (s := worker.status(message_id))["status"] == "failed" and s,
                      what="status failed")
    assert "550" in failed["last_error"] and "5.1.1" in failed["last_error"]
    kinds = [e["kind"] for e in failed["events"]]
    assert "deferred" not in kinds
    # The dead-letter queue's consumer recorded the reason.
    wait_for(lambda: "dead_lettered" in [e["kind"] for e in worker.status(message_id)["events"]],
             what="the dead-letter record")
    assert failed["attempts"] == 1
    assert server.handler.rcpt_commands == ["nobody@example.net"]
    assert server.messages == []


def test_authentication_and_request_errors(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url)

    s, body, _ = worker.request("POST", "/v1/messages", basic_message())
    assert s == 401 and body["error"]["rule"] == "missing_credentials"

    s, body, _ = worker.send(basic_message(), key="er_test_wrong")
    assert s == 401 and body["error"]["rule"] == "invalid_api_key"

    s, body, _ = worker.request("POST", "/v1/messages", raw=b'{"from": ',
                                headers={"Authorization": f"Bearer {worker.api_key}"})
    assert s == 400 and body["error"]["rule"] == "malformed_json"
    assert body["error"]["message"]

    msg = basic_message()
    del msg["subject"]
    s, body, _ = worker.send(msg)
    assert s == 422, body
    assert body["error"]["field"] == "subject"
    assert body["error"]["details"][0]["rule"] == "required"

    s, body, _ = worker.send(basic_message(**{"from": "someone@example.org"}))
    assert s == 403 and body["error"]["field"] == "from"

    s, body, _ = worker.request("GET", "/v1/messages/does-not-exist",
                                headers={"Authorization": f"Bearer {worker.api_key}"})
    assert s == 404

    assert server.messages == []


def test_a_malformed_setting_is_logged_and_never_answered(start_worker):
    # A typo an operator makes (no ':' after the scheme) in a setting that
    # holds a password. Nobody, authenticated or not, learns any part of it,
    # nor even which setting is wrong: that is for the operator's log.
    secret_parts = ["relayuser", "S3cret", "smtps//", "mail.example.net"]
    worker = start_worker("smtps//relayuser:S3cret@mail.example.net")
    requests = [
        ("POST", "/v1/messages", {}),
        ("POST", "/v1/messages", {"Authorization": f"Bearer {worker.api_key}"}),
        ("GET", "/v1/messages", {"Authorization": f"Bearer {worker.api_key}"}),
        ("POST", "/v1/messages/batch", {}),
        ("POST", "/v1/forms/submit", {"Authorization": "Bearer pk_live_unknownunknownunknown"}),
    ]
    for method, path, headers in requests:
        payload = basic_message() if method == "POST" else None
        status, body, _ = worker.request(method, path, payload, headers=headers)
        assert status == 500, (method, path, body)
        assert body["error"]["rule"] == "server_misconfigured"
        text = str(body)
        for part in secret_parts + ["SMTP_UPSTREAMS"]:
            assert part not in text, (part, text)
    # The operator's log names the setting, still without its value. (Only
    # edgerelay's own lines: wrangler dev itself lists the vars it was given.)
    def own_lines():
        lines = [line for line in worker.log().splitlines() if '"event":' in line]
        return lines if any("SMTP_UPSTREAMS" in line for line in lines) else None

    for line in wait_for(own_lines, what="the setting named in the log"):
        for part in secret_parts:
            assert part not in line, (part, line)
