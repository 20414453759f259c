"""Shaping per upstream (`UPSTREAM_LIMITS`): a burst of a few hundred messages
reaches a limited upstream at no more than its rate, measured at the server,
over no more sessions at once than allowed, none failed; an upstream that
answers `454 4.7.0 Throttling` for a while slows edgerelay down (its rate
halves, shown by `GET /v1/upstreams`) and every message is still delivered,
none failed, the throttled tries not counted as attempts."""
import json

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

RATE = 20
SESSIONS = 2
BURST = 300
# docs/upstreams.md "Margin": at most rate + 1 slots in any one-second
# window, plus the network's jitter bunching a message with the next.
MARGIN = 3


def limited(server, rate=RATE, sessions=SESSIONS) -> str:
    return json.dumps({f"127.0.0.1:{server.port}": {"rate": rate, "sessions": sessions}})


def send_burst(worker, count: int, subject: str) -> list[str]:
    ids = []
    for start in range(0, count, 100):
        batch = [basic_message(subject=f"{subject} {n}")
                 for n in range(start, min(count, start + 100))]
        status, body, _ = worker.request("POST", "/v1/messages/batch", batch, worker.auth)
        assert status in (200, 207) and body["accepted"] == len(batch), body
        ids += [item["id"] for item in body["results"]]
    return ids


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any one-second window starting at an arrival."""
    times = sorted(times)
    most, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        most = max(most, j - i)
    return most


FINAL = ("delivered", "partially_delivered", "failed", "unknown", "suppressed")


def settled(worker, message_id) -> dict:
    return wait_for(lambda: (s := worker.status(message_id))["status"] in FINAL and s,
                    timeout=90, interval=0.2, what=f"{message_id} settled")


def shaping_of(worker, server) -> dict:
    status, body, _ = worker.request("GET", "/v1/upstreams", headers=worker.auth)
    assert status == 200, body
    (view,) = [u for u in body["data"] if u["port"] == server.port]
    return view["shaping"]


def test_a_burst_goes_out_at_the_configured_rate_and_sessions(start_worker, upstream):
    server = upstream(require_tls=False).start()
    worker = start_worker(server.url, UPSTREAM_LIMITS=limited(server))
    ids = send_burst(worker, BURST, "burst")

    wait_for(lambda: len(server.messages) >= BURST, timeout=90, interval=0.2,
             what=f"{BURST} messages at the server")
    times = [m.accepted_at for m in server.messages]
    assert len(times) == BURST, "each message once"
    t0 = min(times)
    assert busiest_second(times) <= RATE + MARGIN, (
        busiest_second(times), [round(t - t0, 3) for t in sorted(times)][:60],
        [line for line in worker.log().splitlines() if "shaper" in line][:3])
    assert server.sessions.most <= SESSIONS, server.sessions.most
    spread = max(times) - min(times)
    assert spread >= (BURST - RATE - MARGIN) / RATE, f"{BURST} in {spread:.1f} s"

    for message_id in ids:
        record = settled(worker, message_id)
        assert (record["status"], record["attempts"]) == ("delivered", 1), record
    view = shaping_of(worker, server)
    assert view["limits"] == {"rate": RATE, "sessions": SESSIONS, "per_day": None}, view
    assert view["today"] >= BURST and view["current_rate"] == RATE, view


def test_a_throttling_upstream_slows_edgerelay_down_and_loses_nothing(start_worker, upstream):
    throttled = 40
    server = upstream(require_tls=False, behaviour=Behaviour(
        data_failures=throttled,
        data_failure_reply="454 4.7.0 Throttling failure: Maximum sending rate exceeded.",
    )).start()
    worker = start_worker(server.url, UPSTREAM_LIMITS=limited(server))
    ids = send_burst(worker, 100, "throttled")

    records = [settled(worker, i) for i in ids]
    assert [r["status"] for r in records] == ["delivered"] * len(ids)
    # Attempts count only the delivery: the throttled tries used none.
    assert [r["attempts"] for r in records] == [1] * len(ids)
    assert len(server.messages) == len(ids)
    assert server.handler.data_commands >= len(ids) + throttled
    # The upstream was not cooled down, and its rate came down.
    status, body, _ = worker.request("GET", "/v1/upstreams", headers=worker.auth)
    (view,) = [u for u in body["data"] if u["port"] == server.port]
    assert view["health"]["state"] == "healthy", view
    assert view["shaping"]["current_rate"] < RATE, view["shaping"]
    assert view["shaping"]["throttled_since"] is not None, view["shaping"]
    assert busiest_second([m.accepted_at for m in server.messages]) <= RATE + MARGIN
