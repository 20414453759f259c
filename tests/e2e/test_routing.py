"""Routing (`UPSTREAM_ROUTES`): one batch of marketing and transactional
mail arrives at two different smarthosts, a From-domain route fails over
only within its own list, and a table naming an unknown upstream is a
configuration error named in the log, never answered."""
import email
import json

from edgerelay_harness.keys import SENDER_DOMAIN
from edgerelay_harness.net import free_port
from edgerelay_harness.poll import wait_for


def label(server) -> str:
    return f"127.0.0.1:{server.port}"


def message(subject, stream=None, sender="news"):
    m = {"from": f"{sender}@{SENDER_DOMAIN}", "to": "rcpt@example.net",
         "subject": subject, "text": "Body."}
    if stream:
        m["stream"] = stream
    if stream == "marketing":
        m["text"] = "Half price. Leave: {{unsubscribe_url}}"
    return m


def subjects(server) -> set[str]:
    return {email.message_from_bytes(m.data)["Subject"] for m in server.messages}


def test_marketing_and_transactional_mail_of_one_batch_go_to_their_own_upstreams(
        start_worker, upstream):
    bulk = upstream().start()
    transactional = upstream().start()
    routes = [{"stream": "marketing", "upstreams": [label(bulk)]}]
    # Without a rule of its own, transactional mail may use every upstream
    # in order: the transactional server is listed first.
    worker = start_worker(f"{transactional.url},{bulk.url}",
                          UPSTREAM_ROUTES=json.dumps(routes))
    batch = [message("sale 1", "marketing"), message("receipt 1"),
             message("sale 2", "marketing"), message("receipt 2", "transactional")]
    status, body, _ = worker.request("POST", "/v1/messages/batch", batch,
                                     {"Authorization": f"Bearer {worker.api_key}"})
    assert status == 207 and body["accepted"] == 4, body
    ids = [item["id"] for item in body["results"]]
    for message_id in ids:
        wait_for(lambda: worker.status(message_id)["status"] == "delivered",
                 what=f"{message_id} delivered")
    assert subjects(bulk) == {"sale 1", "sale 2"}
    assert subjects(transactional) == {"receipt 1", "receipt 2"}


def test_a_from_domain_route_fails_over_within_its_own_list(start_worker, upstream):
    first_choice_down = f"127.0.0.1:{free_port()}"
    billing = upstream().start()
    other = upstream().start()
    routes = [{"from_domain": SENDER_DOMAIN, "upstreams": [first_choice_down, label(billing)]}]
    worker = start_worker(
        f"smtp+insecure://{first_choice_down},{other.url},{billing.url}",
        UPSTREAM_ROUTES=json.dumps(routes))
    code, body, _ = worker.send(message("invoice", sender="billing"))
    assert code == 202, body
    record = wait_for(lambda: (s := worker.status(body["id"]))["status"] == "delivered" and s,
                      what="delivered")
    assert record["attempts"] == 1
    assert subjects(billing) == {"invoice"}
    # `other` is in SMTP_UPSTREAMS before `billing`, but not on the route.
    assert other.messages == [] and other.connections == []


def test_a_route_naming_an_unknown_upstream_is_a_configuration_error(start_worker, upstream):
    server = upstream().start()
    routes = [{"stream": "marketing", "upstreams": ["hidden.example:2525"]}]
    worker = start_worker(server.url, UPSTREAM_ROUTES=json.dumps(routes))
    status, body, _ = worker.send(message("never"))
    assert status == 500 and body["error"]["rule"] == "server_misconfigured", body
    assert "UPSTREAM_ROUTES" not in str(body) and "hidden" not in str(body)

    def own_lines():
        lines = [line for line in worker.log().splitlines() if '"event":' in line]
        return lines if any("UPSTREAM_ROUTES" in line for line in lines) else None

    for line in wait_for(own_lines, what="the setting named in the log"):
        assert "hidden.example" not in line, line
    assert server.messages == []
