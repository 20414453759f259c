"""Never lost, never sent twice, across a real crash: the `wrangler dev`
process group (wrangler and workerd) is killed with SIGKILL while the
consumer is delivering, then started again on the same persisted state.
The local queue does not survive the restart, exactly like a job lost in
production, so only the messages' stored jobs and the reconciliation sweep
(fired through wrangler's scheduled route) can finish the work. Everything
is counted at the SMTP server: every accepted message arrives, none twice
except those recorded `unknown`, and every status ends final and true."""
import re
import statistics
import threading
from collections import Counter

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

FINAL = {"delivered", "partially_delivered", "failed", "unknown"}

# Short enough for a test to wait out a dead holder's lease, longer than any
# batch here can run; the grace makes every accepted message overdue at once.
RECOVERY_VARS = dict(SMTP_PIPELINING="off", DELIVERY_LEASE_SECONDS="15",
                     SWEEP_GRACE_SECONDS="1", SMTP_TIMEOUT_SECONDS="10")


def subject_of(received) -> str:
    return received.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()


def sweep_until_final(worker, ids, timeout=120):
    """Fires the sweep and polls until every message is final; the sweep
    skips messages whose dead holder's lease still runs, so it is fired
    again until none is left."""
    def all_final():
        worker.sweep()
        statuses = {i: worker.status(i) for i in ids}
        return all(s["status"] in FINAL for s in statuses.values()) and statuses
    return wait_for(all_final, timeout=timeout, interval=1.0, what="every message to be final")


def crash_and_restart(worker):
    worker.dev.kill()
    worker.dev.restart()
    worker.dev.wait_ready(timeout=90)


def test_sigkill_mid_batch_loses_nothing_and_sends_nothing_twice(start_worker, upstream):
    count = 60
    # A content check of 0.2 s per message keeps the batch in flight long
    # enough to kill it half-way.
    server = upstream(behaviour=Behaviour(data_delay=0.2)).start()
    worker = start_worker(server.url, **RECOVERY_VARS)

    ids = {}
    for i in range(count):
        status, body, _ = worker.send(basic_message(subject=f"crash {i}"))
        assert status == 202, body
        ids[body["id"]] = f"crash {i}"

    arrived_before = wait_for(lambda: len(server.messages) >= 10 and len(server.messages),
                              timeout=60, interval=0.01, what="some messages to arrive")
    crash_and_restart(worker)
    assert arrived_before < count, "the kill came after the batch: nothing to recover"

    statuses = sweep_until_final(worker, list(ids))
    # The restarted queue had nothing: the sweep brought the jobs back.
    requeued = [int(n) for n in re.findall(r'"event":"sweep_done","requeued":(\d+)', worker.log())]
    assert sum(requeued) > 0, worker.log()
    per_subject = Counter(subject_of(m) for m in server.messages)
    unknown = {i for i, s in statuses.items() if s["status"] == "unknown"}
    for message_id, subject in ids.items():
        s = statuses[message_id]
        sent = per_subject[subject]
        if message_id in unknown:
            # The upstream may have it: at most once, never again.
            assert sent <= 1, (subject, sent, s)
            [rcpt] = s["recipients"]
            assert rcpt["state"] == "unknown", s
        else:
            assert s["status"] == "delivered", s
            assert sent == 1, (subject, sent)
            [rcpt] = s["recipients"]
            assert (rcpt["state"], rcpt["reply_code"]) == ("delivered", 250), s
    # At most one transaction per open session can be between its dot and
    # its record when the process dies.
    assert len(unknown) <= 5, unknown
    assert sum(per_subject.values()) == len(server.messages)
    assert set(per_subject) <= set(ids.values())

    # The window a crash turns into `unknown`: from the upstream's 250 to the
    # D1 write of the result, measured per delivered message.
    windows = []
    by_subject = {subject_of(m): m for m in server.messages}
    for message_id, subject in ids.items():
        s = statuses[message_id]
        if s["status"] == "delivered" and subject in by_subject:
            windows.append(s["recipients"][0]["updated_at"] - by_subject[subject].accepted_at * 1000)
    print(f"\ncrash test: {count} accepted, {arrived_before} arrived before the kill, "
          f"{len(unknown)} unknown, 0 duplicated; 250-to-record window over "
          f"{len(windows)} messages: median {statistics.median(windows):.1f} ms, "
          f"max {max(windows):.1f} ms")


def test_sigkill_between_the_final_dot_and_the_record_ends_unknown_and_is_not_resent(
        start_worker, upstream):
    hold = threading.Event()
    server = upstream(behaviour=Behaviour(hold_data_end=hold)).start()
    worker = start_worker(server.url, **RECOVERY_VARS)
    try:
        status, body, _ = worker.send(basic_message(subject="held at the dot"))
        assert status == 202, body
        message_id = body["id"]
        # The final dot is at the server, its reply held back.
        wait_for(lambda: server.handler.held >= 1, timeout=60, what="the end of data to arrive")
        # The in-flight marker was written before the dot went out.
        [rcpt] = worker.status(message_id)["recipients"]
        assert rcpt["state"] == "sending", rcpt
        worker.dev.kill()
    finally:
        hold.set()
    # The upstream took the message; the relay never heard its reply.
    assert len(server.messages) == 1
    worker.dev.restart()
    worker.dev.wait_ready(timeout=90)

    final = sweep_until_final(worker, [message_id])[message_id]
    assert final["status"] == "unknown", final
    [rcpt] = final["recipients"]
    assert rcpt["state"] == "unknown" and "not sent again" in rcpt["reply_text"], rcpt
    # Looking again changes nothing: never sent a second time.
    worker.sweep()
    assert len(server.messages) == 1
    assert worker.status(message_id)["status"] == "unknown"
    assert server.handler.data_commands == 1
