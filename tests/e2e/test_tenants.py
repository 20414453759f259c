"""Messages belong to a tenant, not to the key that sent them: a rotated key
(a second key of the same tenant) sees everything the first one sent, and a
key of another tenant sees none of it."""
import json

from edgerelay_harness.keys import api_key_entry, basic_message, new_api_key
from edgerelay_harness.poll import wait_for


def test_keys_of_one_tenant_share_its_messages_and_no_other_tenant_sees_them(
        start_worker, upstream, api_key):
    server = upstream().start()
    rotated, stranger = new_api_key(), new_api_key()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(api_key, "acme-2026", tenant="acme"),
        api_key_entry(rotated, "acme-2027", tenant="acme"),
        api_key_entry(stranger, "stranger"),
    ]))

    def auth(key):
        return {"Authorization": f"Bearer {key}"}

    s, accepted, _ = worker.send(basic_message(subject="tenant-owned"))
    assert s == 202, accepted
    message_id = accepted["id"]
    wait_for(lambda: server.messages, what="the message at the server")

    # The rotated key reads and lists the first key's message.
    s, record, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=auth(rotated))
    assert s == 200, record
    assert record["subject"] == "tenant-owned" and record["stream"] == "transactional"
    s, page, _ = worker.request("GET", "/v1/messages", headers=auth(rotated))
    assert s == 200 and [m["id"] for m in page["data"]] == [message_id], page

    # Another tenant: the message does not exist for it.
    s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=auth(stranger))
    assert s == 404, body
    s, page, _ = worker.request("GET", "/v1/messages", headers=auth(stranger))
    assert s == 200 and page["data"] == [], page


def test_a_tenant_name_that_breaks_the_rule_is_logged_by_setting_never_by_value(
        start_worker, upstream, api_key):
    server = upstream().start()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(api_key, "e2e", tenant="no spaces allowed"),
    ]))
    s, body, _ = worker.send(basic_message())
    assert s == 500 and body["error"]["rule"] == "server_misconfigured", body
    assert "API_KEYS" not in json.dumps(body)

    def own_lines():
        lines = [line for line in worker.log().splitlines() if '"event":' in line]
        return lines if any("API_KEYS" in line for line in lines) else None

    [line] = [l for l in wait_for(own_lines, what="the setting named in the log") if "API_KEYS" in l][:1]
    assert "tenant must be" in line, line
    assert "no spaces allowed" not in line, line
