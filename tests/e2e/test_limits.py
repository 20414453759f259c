"""Per-key limits end to end, counted by the Meter Durable Object in workerd:
a concurrent burst over a key's per-second limit gets 429 with Retry-After and
the rate-limit headers, no more than the limit gets through in one second
(the documented margin is 0), and a key sending beside it is untouched; a
key's daily count is of messages accepted (a batch counts its messages, a
refused message is given back) and once it is spent, sends get 429 naming
`per_day` until the UTC day ends. A queue producer over its limit has its
messages wait on the queue, none lost or dead-lettered."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from edgerelay_harness.client import request
from edgerelay_harness.keys import (api_key_entry, basic_message, new_api_key, new_producer_token,
                                    producer_entry)
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for
from edgerelay_harness.wrangler import companion_config

PRODUCER = ROOT / "examples" / "producer-worker"

HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")


def limited(secret: str, key_id: str, **limits) -> dict:
    return {**api_key_entry(secret, key_id), "limits": limits}


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_a_burst_over_per_second_is_refused_beyond_the_limit_and_spares_other_keys(
        start_worker, upstream, api_key):
    server = upstream().start()
    burst_key, neighbour_key = new_api_key(), new_api_key()
    per_second = 5
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(api_key, "e2e"),
        limited(burst_key, "burst", per_second=per_second),
        limited(neighbour_key, "neighbour", per_second=per_second),
    ]))

    # A key without limits: no headers, no meter.
    s, body, headers = worker.send(basic_message(subject="unlimited"))
    assert s == 202, body
    assert all(headers.get(h) is None for h in HEADERS), dict(headers)

    callers = [burst_key] * 40 + [neighbour_key] * 3
    start = threading.Barrier(len(callers))

    def call(key):
        start.wait()
        sent = time.monotonic()
        reply = request(worker.url + "/v1/messages", "POST", basic_message(subject="burst"),
                        auth(key))
        return key, sent, time.monotonic(), reply

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        results = list(pool.map(call, callers))

    burst = [r for k, _, _, r in results if k == burst_key]
    neighbour = [r for k, _, _, r in results if k == neighbour_key]
    span = max(done for _, _, done, _ in results) - min(sent for _, sent, _, _ in results)

    accepted = [r for r in burst if r.status == 202]
    refused = [r for r in burst if r.status == 429]
    assert len(accepted) + len(refused) == len(burst), [r.status for r in burst]
    # No one-second window holds more than the limit (margin 0), so the
    # whole burst lets through at most the limit per started second.
    assert 1 <= len(accepted) <= per_second * (int(span) + 1), (len(accepted), span)
    if span < 1:
        assert len(accepted) == per_second, (len(accepted), span)
    assert refused, "a burst of 40 against 5 per second was never refused"
    for r in refused:
        error = r.body["error"]
        assert (error["rule"], error["field"]) == ("rate_limit_exceeded", "per_second"), error
        assert 1 <= int(r.headers["Retry-After"]) <= 2, r.headers["Retry-After"]
        assert r.headers["ratelimit-limit"] == str(per_second)
        assert r.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(r.headers["ratelimit-reset"]) <= 2
        assert r.headers["ratelimit-policy"] == "5;w=1"
    for r in accepted:
        assert r.headers["ratelimit-limit"] == str(per_second)
        assert 0 <= int(r.headers["ratelimit-remaining"]) < per_second

    # The neighbour has a meter of its own: all of its sends went through.
    assert [r.status for r in neighbour] == [202, 202, 202], [r.body for r in neighbour]
    assert all(r.headers["ratelimit-limit"] == "5" for r in neighbour)

    # Every authenticated route counts, and the key recovers once its second has passed.
    def allowed_again():
        r = request(worker.url + "/v1/messages", "GET", headers=auth(burst_key))
        return r if r.status == 200 else None
    again = wait_for(allowed_again, timeout=10, what="the burst key allowed again")
    assert int(again.headers["ratelimit-remaining"]) < per_second
    # The accepted messages are real: they reach the upstream.
    wait_for(lambda: len(server.messages) >= 1 + len(accepted) + 3, timeout=60,
             what="every accepted message at the upstream")


def test_a_daily_limit_counts_accepted_messages_and_a_batch_counts_each(
        start_worker, upstream, api_key):
    server = upstream().start()
    daily_key = new_api_key()
    worker = start_worker(server.url, API_KEYS=json.dumps([
        api_key_entry(api_key, "e2e"),
        limited(daily_key, "daily", per_day=4),
    ]))

    def send(message, path="/v1/messages"):
        return request(worker.url + path, "POST", message, auth(daily_key))

    s, body, h = send(basic_message(subject="one"))
    assert s == 202, body
    assert (h["ratelimit-limit"], h["ratelimit-remaining"]) == ("4", "3")
    assert h["ratelimit-policy"] == "4;w=86400"
    # Seconds to the end of the UTC day.
    midnight = 86400 - int(time.time()) % 86400
    assert abs(int(h["ratelimit-reset"]) - midnight) <= 5, (h["ratelimit-reset"], midnight)

    # A refused message is given back.
    s, body, h = send(basic_message(to="not an address"))
    assert s == 422, body
    assert h["ratelimit-remaining"] == "3"

    # A batch that does not fit is refused whole: nothing of it is accepted.
    batch = [basic_message(subject=f"batch {i}") for i in range(4)]
    s, body, h = send(batch, "/v1/messages/batch")
    assert s == 429, body
    assert (body["error"]["rule"], body["error"]["field"]) == ("rate_limit_exceeded", "per_day")
    assert abs(int(h["Retry-After"]) - midnight) <= 5, h["Retry-After"]
    assert h["ratelimit-remaining"] == "3"
    s, page, _ = worker.request("GET", "/v1/messages", headers=auth(daily_key))
    assert s == 200 and len(page["data"]) == 1, page

    # A batch counts what it accepted: one good item, one refused.
    s, body, h = send([basic_message(subject="good"), basic_message(to="bad")],
                      "/v1/messages/batch")
    assert s == 207, body
    assert h["ratelimit-remaining"] == "2", dict(h)
    s, body, h = send([basic_message(subject="last a"), basic_message(subject="last b")],
                      "/v1/messages/batch")
    assert s == 207, body
    assert h["ratelimit-remaining"] == "0"

    # Spent: a send is refused until the UTC day ends; four were accepted.
    s, body, h = send(basic_message(subject="one too many"))
    assert s == 429, body
    assert body["error"]["field"] == "per_day", body
    assert abs(int(h["Retry-After"]) - midnight) <= 5, h["Retry-After"]
    assert (h["ratelimit-limit"], h["ratelimit-remaining"]) == ("4", "0")
    s, page, _ = worker.request("GET", "/v1/messages", headers=auth(daily_key))
    assert s == 200, page
    assert sorted(m["subject"] for m in page["data"] if m["status"] != "failed") == \
        ["good", "last a", "last b", "one"], page

    # A dry run accepts nothing, so it still answers; another key still sends.
    s, body, _ = send(basic_message(subject="preview"), "/v1/messages?dry_run=true")
    assert s == 200, body
    s, body, _ = worker.send(basic_message(subject="other key"))
    assert s == 202, body
    wait_for(lambda: len(server.messages) >= 5, timeout=60, what="the accepted messages delivered")


def test_without_its_meter_a_limited_key_fails_closed(start_worker, upstream, api_key):
    """The Meter binding missing (as when the object cannot be reached): a
    limited key gets 503 with Retry-After and nothing is accepted; a key
    without limits never needs the meter and still sends."""
    server = upstream().start()
    limited_key = new_api_key()
    worker = start_worker(server.url, config_overrides={"durable_objects": {"bindings": []}},
                          API_KEYS=json.dumps([
                              api_key_entry(api_key, "e2e"),
                              limited(limited_key, "limited", per_second=100, per_day=100),
                          ]))
    s, body, h = worker.send(basic_message(subject="unmetered"), key=limited_key)
    assert s == 503, body
    assert body["error"]["rule"] == "temporarily_unavailable", body
    assert h["Retry-After"] == "1"
    s, body, _ = worker.send(basic_message(subject="no limits"))
    assert s == 202, body
    # Only the unlimited key's message was accepted and reaches the upstream.
    [received] = wait_for(lambda: server.messages, what="the unlimited key's message")
    assert b"Subject: no limits" in received.data, received.data[:200]
    assert len(server.messages) == 1


def test_a_producer_over_its_limit_has_its_messages_wait_not_dropped(
        start_worker, upstream, api_key, tmp_path):
    server = upstream().start()
    token = new_producer_token()
    producer = companion_config(tmp_path, PRODUCER / "wrangler.toml", PRODUCER / "src" / "index.js",
                                {"PRODUCER_TOKEN": token}, name="producer.json")
    worker = start_worker(
        server.url,
        primary_configs=[producer],
        QUEUE_PRODUCERS=json.dumps([{**producer_entry("billing", "e2e", token),
                                     "limits": {"per_second": 1}}]),
    )
    subjects = [f"queued {i}" for i in range(4)]
    for subject in subjects:
        s, body, _ = worker.request("POST", "/enqueue", basic_message(subject=subject))
        assert s == 202, body

    # One per second gets in; the others wait on the queue and follow.
    received = wait_for(lambda: len(server.messages) >= 4 and server.messages, timeout=60,
                        what="every producer message delivered")
    got = sorted(next(line for line in m.data.decode().splitlines() if line.startswith("Subject:"))
                 for m in received)
    assert got == [f"Subject: {s}" for s in subjects], got
    assert "over its per_second limit" in worker.log()
    s, page, _ = worker.request("GET", "/v1/messages?status=failed", headers=auth(api_key))
    assert s == 200 and page["data"] == [], page
