"""Shaping per upstream (`UPSTREAM_LIMITS`): a burst of a few hundred messages
reaches a limited upstream at no more than its rate, measured at the server,
over no more sessions at once than allowed, none failed; an upstream that
answers `454 4.7.0 Throttling` for a while slows edgerelay down (its rate
halves, shown by `GET /v1/upstreams`) and every message is still delivered,
none failed, the throttled tries not counted as attempts."""
import email
import json
from collections import Counter, defaultdict

from edgerelay_harness.keys import basic_message, verified_by_all
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
    assert view["limits"] == {"rate": RATE, "sessions": SESSIONS, "per_day": None,
                              "recipients_per_message": None,
                              "recipients_per_session": None}, view
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


def edgerelay_id(data: bytes) -> str:
    """The message's id, from the Message-ID edgerelay wrote (`<id@domain>`)."""
    return email.message_from_bytes(data)["Message-ID"].strip("<>").split("@")[0]


def test_recipient_limits_cut_messages_and_sessions(start_worker, upstream, dkim_ed25519,
                                                     dkim_rsa):
    per_message, per_session = 2, 5
    server = upstream(require_tls=False, behaviour=Behaviour(pipelining=True)).start()
    worker = start_worker(server.url, UPSTREAM_LIMITS=json.dumps({
        f"127.0.0.1:{server.port}": {"recipients_per_message": per_message,
                                     "recipients_per_session": per_session}}))
    sizes = [7, 1, 3, 2, 1, 4]
    batch = [basic_message(subject=f"cut {i}",
                           to=[f"r{i}-{n}@example.net" for n in range(size)])
             for i, size in enumerate(sizes)]
    status, body, _ = worker.request("POST", "/v1/messages/batch", batch, worker.auth)
    assert status in (200, 207) and body["accepted"] == len(batch), body
    ids = [item["id"] for item in body["results"]]
    records = [settled(worker, i) for i in ids]
    assert [(r["status"], r["attempts"]) for r in records] == [("delivered", 1)] * len(ids)

    # Every transaction within the per-message limit, every session within
    # the per-session one.
    assert all(len(m.rcpt_tos) <= per_message for m in server.messages), [
        len(m.rcpt_tos) for m in server.messages]
    by_session = defaultdict(int)
    for m in server.messages:
        by_session[m.peer] += len(m.rcpt_tos)
    assert max(by_session.values()) <= per_session, dict(by_session)
    assert len(by_session) >= -(-sum(sizes) // per_session)
    # Each recipient exactly one copy, of its own message, signed and intact.
    copies = Counter()
    for m in server.messages:
        verified_by_all(m.data, dkim_ed25519, dkim_rsa)
        for rcpt in m.rcpt_tos:
            copies[(edgerelay_id(m.data), rcpt)] += 1
    expected = {(ids[i], f"r{i}-{n}@example.net") for i, size in enumerate(sizes)
                for n in range(size)}
    assert set(copies) == expected and set(copies.values()) == {1}, copies
    # The seven-recipient message went as four transactions of the same bytes.
    seven = [m for m in server.messages if edgerelay_id(m.data) == ids[0]]
    assert sorted(len(m.rcpt_tos) for m in seven) == [1, 2, 2, 2]
    assert len({m.data for m in seven}) == 1
    view = shaping_of(worker, server)
    assert view["limits"]["recipients_per_message"] == per_message, view
