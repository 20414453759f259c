"""A queue batch goes to its upstream over one connection, pipelined when the
server offers PIPELINING (each message's end of data followed by the next
transaction's commands in the same write), and in lock-step with
SMTP_PIPELINING=off. The server records what arrived in each TCP read (after
TLS): commands that share a read were pipelined."""
import concurrent.futures

from edgerelay_harness.keys import basic_message
from edgerelay_harness.poll import wait_for
from edgerelay_harness.upstream import Behaviour

BATCH = 5
VERBS = (b"MAIL FROM:", b"RCPT TO:", b"DATA\r\n", b"QUIT\r\n", b"RSET\r\n")


def commands_in(read: bytes) -> int:
    return sum(1 for line in read.split(b"\r\n") if line and (line + b"\r\n").startswith(VERBS))


def send_batch(worker):
    """Sends BATCH messages at once, so they land in one queue batch."""
    with concurrent.futures.ThreadPoolExecutor(BATCH) as pool:
        results = list(pool.map(lambda i: worker.send(basic_message(subject=f"batch {i}")), range(BATCH)))
    for status, body, _ in results:
        assert status == 202, body
    return [body["id"] for _, body, _ in results]


def envelope_reads(server):
    return [data for _, data in server.reads if b"MAIL FROM:" in data]


def test_batch_goes_over_one_pipelined_connection(start_worker, upstream):
    server = upstream(behaviour=Behaviour(pipelining=True)).start()
    worker = start_worker(server.url)

    ids = send_batch(worker)
    wait_for(lambda: len(server.messages) == BATCH, what="every message at the server")
    assert len(server.connections) == 1, server.connections
    subjects = sorted(m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in server.messages)
    assert subjects == sorted(f"batch {i}".encode() for i in range(BATCH))
    # Pipelined: each transaction's MAIL, RCPT and DATA arrive in one read,
    # and from the second message on that read also ends the previous
    # message's data (RFC 2920 3.1): one round trip per message. (The
    # content goes before its final dot in a write of its own, so the
    # server may read it apart from the dot.)
    reads = envelope_reads(server)
    assert len(reads) == BATCH, reads
    assert all(b"RCPT TO:" in r and b"DATA\r\n" in r for r in reads), reads
    behind_dot = [r for r in reads if b".\r\nMAIL FROM:" in r]
    assert len(behind_dot) == BATCH - 1, reads
    assert any(r.endswith(b".\r\nQUIT\r\n") for _, r in server.reads), server.reads[-3:]
    for message_id in ids:
        wait_for(lambda: worker.status(message_id)["status"] == "delivered", what="delivered")


def test_pipelining_off_is_lock_step(start_worker, upstream):
    server = upstream(behaviour=Behaviour(pipelining=True)).start()
    worker = start_worker(server.url, SMTP_PIPELINING="off")

    send_batch(worker)
    wait_for(lambda: len(server.messages) == BATCH, what="every message at the server")
    assert len(server.connections) == 1, server.connections
    commands = [commands_in(data) for _, data in server.reads]
    assert max(commands) == 1, server.reads
    assert all(b"RCPT TO:" not in r for r in envelope_reads(server))
