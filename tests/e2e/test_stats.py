"""Statistics from rollups, in workerd: messages with tags go to a real SMTP
server that refuses some recipients; `GET /v1/stats` must equal the counts
this test works out on its own from each message's event stream, per hour
bucket and per tag, and must still say the same once every message, event
and timeline row is gone from D1 (it reads the rollups only)."""
import sqlite3
from collections import Counter
from datetime import datetime, timezone

from edgerelay_harness.keys import basic_message
from edgerelay_harness.local_d1 import database
from edgerelay_harness.openapi import schema
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

FINAL = ("delivered", "partially_delivered", "failed")
GONE = "gone@example.net"
FULL = "full@example.net"

# The metrics this run moves, from each event's type (and bounce type).
METRIC_OF = {"email.sent": "sent", "email.delivered": "delivered",
             "email.delivery_delayed": "deferred", "email.complained": "spam_reports",
             "email.unsubscribed": "unsubscribes", "email.suppressed": "suppressed",
             "email.failed": "failed"}


def hour_of(seconds: float) -> str:
    start = int(seconds) - int(seconds) % 3600
    return datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:00:00.000Z")


def stats(worker, **query):
    path = "/v1/stats?" + "&".join(f"{k}={v}" for k, v in query.items())
    s, body, _ = worker.request("GET", path, headers=worker.auth)
    assert s == 200, body
    return body


def expected(details, tag=None):
    """Counts per hour bucket, from the messages' own event streams."""
    want: dict[str, Counter] = {}
    for d in details:
        if tag and d["tags"].get(tag[0]) != tag[1]:
            continue
        want.setdefault(hour_of(d["created_at"]), Counter())["requests"] += 1
        for e in d["email_events"]:
            at = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).timestamp()
            bucket = want.setdefault(hour_of(at), Counter())
            if e["type"] == "email.bounced":
                bucket[f"{e['data']['bounce']['type']}_bounces"] += 1
                bucket["bounces"] += 1
            else:
                bucket[METRIC_OF[e["type"]]] += 1
    return want


def observed(report):
    return {b["start"]: Counter({k: v for k, v in b["metrics"].items() if v})
            for b in report["buckets"] if any(b["metrics"].values())}


def test_stats_equal_the_event_streams_per_hour_and_tag_and_read_rollups_only(
        start_worker, upstream):
    server = upstream(behaviour=Behaviour(rcpt_replies={
        GONE: "550 5.1.1 No such user", FULL: "552 5.2.2 Mailbox full"})).start()
    worker = start_worker(server.url)
    sends = [
        ({"campaign": "spring"}, ["a@example.net"]),
        ({"campaign": "spring"}, ["b@example.net", GONE]),
        ({"campaign": "spring", "kind": "promo"}, [FULL]),
        ({"campaign": "autumn"}, ["c@example.net", "d@example.net"]),
        ({}, ["e@example.net"]),
    ]
    ids = []
    for tags, to in sends:
        s, body, _ = worker.send(basic_message(to=to, tags=tags))
        assert s == 202, body
        ids.append(body["id"])
    # A replayed request (same Idempotency-Key) is not a second request.
    replay = basic_message(to="f@example.net", tags={"campaign": "autumn"})
    headers = {**worker.auth, "Idempotency-Key": "stats-replay-1"}
    first = worker.request("POST", "/v1/messages", replay, headers)
    again = worker.request("POST", "/v1/messages", replay, headers)
    assert first[0] == again[0] == 202 and first[1]["id"] == again[1]["id"]
    ids.append(first[1]["id"])

    def settled(message_id):
        def done():
            s, body, _ = worker.request("GET", f"/v1/messages/{message_id}", headers=worker.auth)
            assert s == 200, body
            return body["status"] in FINAL and body
        return wait_for(done, timeout=60, what=f"{message_id} to settle")

    details = [settled(i) for i in ids]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")

    hourly = stats(worker, bucket="hour", **{"from": today, "to": today})
    assert hourly["object"] == "stats" and hourly["bucket"] == "hour"
    assert len(hourly["buckets"]) == 24
    schema("Stats").validate(hourly)
    assert observed(hourly) == expected(details)
    # The run's own numbers, to be sure the comparison compares something.
    totals = hourly["totals"]["metrics"]
    assert (totals["requests"], totals["sent"]) == (6, 6), totals
    assert (totals["hard_bounces"], totals["soft_bounces"]) == (1, 1), totals
    assert hourly["totals"]["rates"]["bounced"] == 2 / 6

    spring = stats(worker, bucket="hour", tag="campaign:spring", **{"from": today, "to": today})
    assert observed(spring) == expected(details, tag=("campaign", "spring"))
    assert spring["totals"]["metrics"]["requests"] == 3
    promo = stats(worker, tag="kind:promo", **{"from": today, "to": today})
    assert promo["totals"]["metrics"]["soft_bounces"] == 1
    assert promo["totals"]["metrics"]["requests"] == 1
    daily = stats(worker, stream="transactional", **{"from": today, "to": today})
    assert [b["metrics"]["sent"] for b in daily["buckets"]] == [6]
    assert stats(worker, stream="marketing")["totals"]["metrics"]["sent"] == 0

    by_tag = worker.request("GET", f"/v1/stats/tags?from={today}&to={today}",
                            headers=worker.auth)[1]
    schema("TagStats").validate(by_tag)
    assert [(t["tag"], t["metrics"]["requests"], t["metrics"]["sent"]) for t in by_tag["data"]] == [
        ("campaign:spring", 3, 2), ("campaign:autumn", 2, 3), ("kind:promo", 1, 0)]

    # With every message, event and timeline row gone, the report is the same:
    # it is read from the rollups alone.
    with sqlite3.connect(database(worker), timeout=10) as db:
        for table in ("email_events", "events", "recipients", "messages"):
            db.execute(f"DELETE FROM {table}")
    assert stats(worker, bucket="hour", **{"from": today, "to": today}) == hourly
    assert worker.request("GET", f"/v1/stats/tags?from={today}&to={today}",
                          headers=worker.auth)[1] == by_tag

    # Errors name the field and the rule.
    for query, field, rule in ((("bucket", "week"),), "bucket", "invalid_bucket"), \
            ((("from", "2026-02-30"),), "from", "invalid_time"), \
            ((("tag", "spring"),), "tag", "invalid_tag"):
        path = "/v1/stats?" + "&".join(f"{k}={v}" for k, v in query)
        s, body, _ = worker.request("GET", path, headers=worker.auth)
        assert s == 422, body
        assert (body["error"]["details"][0]["field"],
                body["error"]["details"][0]["rule"]) == (field, rule), body
