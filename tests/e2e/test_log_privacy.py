"""The worker's log carries no full recipient address: after a delivery, a
deferral whose reply names the recipient, a hard bounce whose 550 echoes
it and a send to the now suppressed address, the captured output of the
worker (wrangler's stdout and stderr) names each recipient only as
`h:<8 hex digits>@domain`, and each line the worker writes is one JSON
object."""
import hashlib
import json

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

DELIVERED = "kept-private@example.net"
DEFERRED = "greylisted-person@example.net"
BOUNCED = "no-such-person@example.org"
FINAL = ("delivered", "partially_delivered", "failed", "suppressed", "unknown")


def masked(address: str) -> str:
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:8]
    return f"h:{digest}@{address.split('@')[1]}"


def settled(worker, message_id, status):
    return wait_for(lambda: (r := worker.status(message_id))["status"] == status and r,
                    timeout=60, what=f"{message_id}: {status}")


def send(worker, to, subject):
    s, body, _ = worker.send(basic_message(to=to, subject=subject))
    assert s == 202, body
    return body["id"]


def test_no_full_address_reaches_the_log(start_worker, upstream):
    server = upstream(behaviour=Behaviour(
        rcpt_replies={BOUNCED: f"550 5.1.1 <{BOUNCED}>: Recipient address rejected: user unknown"},
        rcpt_failures_first={DEFERRED: [1, f"450 4.2.0 <{DEFERRED}>: greylisted, try again"]},
    )).start()
    worker = start_worker(server.url)

    settled(worker, send(worker, DELIVERED, "one"), "delivered")
    deferred = send(worker, DEFERRED, "two")
    settled(worker, deferred, "delivered")
    bounced = settled(worker, send(worker, BOUNCED, "three"), "failed")
    assert BOUNCED in json.dumps(bounced), "the API shows the tenant its own addresses"
    settled(worker, send(worker, BOUNCED, "four"), "suppressed")
    assert server.deliveries_to(DELIVERED) == 1 and server.deliveries_to(DEFERRED) == 1

    # The settlement lines name each recipient, masked, and keep the
    # replies with the address in them masked too; the bounce's line is
    # written right after its record, so wait for it rather than assume it.
    rejected = f"<{masked(BOUNCED)}>: Recipient address rejected"
    wait_for(lambda: rejected in worker.log(), timeout=30, what="the bounce's settlement line")
    log = worker.log()
    for address in (DELIVERED, DEFERRED, BOUNCED):
        assert address not in log.lower(), f"{address} in the log:\n{log}"
        local = address.split("@")[0]
        assert local not in log, f"the local part of {address} in the log"
        assert masked(address) in log, f"no line about {address}"

    lines = [line[line.index("{\"level\""):] for line in log.splitlines() if "{\"level\"" in line]
    assert lines, log
    for line in lines:
        entry = json.loads(line)
        assert entry["level"] in ("info", "warn", "error") and entry["event"], entry
    events = {json.loads(line)["event"] for line in lines}
    assert "message_settled" in events, events
    assert f"<{masked(DEFERRED)}>: greylisted" in log
