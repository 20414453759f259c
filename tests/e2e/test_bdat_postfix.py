"""A queue batch relayed through a real Postfix smtpd, which offers CHUNKING
and PIPELINING: edgerelay sends every message with pipelined BDAT (MAIL,
RCPT and `BDAT n LAST` with the message in one write, no DATA), and each
message arrives at Postfix's next hop exactly as it was sent, byte for byte
after the Received header Postfix adds, with a DKIM signature that dkimpy
verifies. A pass-through proxy records what edgerelay wrote; Postfix's own
count of the commands it was given (its disconnect log line) must agree.

The late refusals of a pipelined stream (a 5xx to the RCPT or the BDAT of a
message while later ones are already written) are the transcript tests'
business: src/smtp/tests/blind_bdat.rs."""
import re
from concurrent.futures import ThreadPoolExecutor

import dkim

from edgerelay_harness.delay_proxy import DelayProxy
from edgerelay_harness.keys import basic_message, dkim_dns
from edgerelay_harness.poll import wait_for

BATCH = 8


def bdat_chunks(stream: bytes) -> list[bytes]:
    """The chunk of every `BDAT n LAST` in what a client wrote, in order."""
    chunks, rest = [], stream
    while True:
        line, found, after = rest.partition(b"\r\n")
        if not found:
            return chunks
        if line.startswith(b"BDAT "):
            size = int(line.split()[1])
            chunks.append(after[:size])
            rest = after[size:]
        else:
            rest = after


def without_received(raw: bytes) -> bytes:
    """`raw` without the Received header fields at its top (folded lines
    included): what the relaying Postfix added."""
    while raw.startswith(b"Received:"):
        end = raw.find(b"\r\n")
        while raw[end + 2:end + 3] in (b" ", b"\t"):
            end = raw.find(b"\r\n", end + 2)
        raw = raw[end + 2:]
    return raw


def test_a_batch_through_postfix_goes_with_pipelined_bdat_and_arrives_intact(
        start_worker, postfix, dkim_ed25519):
    smarthost = postfix()
    recorder = DelayProxy(smarthost.port, 0, record=True).start()
    try:
        worker = start_worker(f"smtp+insecure://127.0.0.1:{recorder.port}")
        texts = [f"Message {i}\n.\nwith a lone dot line, and é" + " and more" * (40 * i)
                 for i in range(BATCH)]
        with ThreadPoolExecutor(BATCH) as pool:
            replies = list(pool.map(
                lambda i: worker.send(basic_message(to="someone@relay.test",
                                                    subject=f"chunk {i}", text=texts[i])),
                range(BATCH)))
        for status, body, _ in replies:
            assert status == 202, body
        hop = smarthost.hops["relay"]
        arrived = wait_for(lambda: len(hop.messages) >= BATCH and hop.messages, timeout=60,
                           what="every message at Postfix's next hop")
        for _, body, _ in replies:
            wait_for(lambda: worker.status(body["id"])["status"] == "delivered",
                     what=f"{body['id']} recorded delivered")
    finally:
        recorder.stop()

    streams = [b"".join(reads) for reads in recorder.client_reads]
    sent = [chunk for stream in streams for chunk in bdat_chunks(stream)]
    assert len(sent) == BATCH, [s[:300] for s in streams]
    for stream in streams:
        assert not re.search(rb"(^|\r\n)DATA\r\n", stream), stream[:500]
    # Blind: MAIL, RCPT and BDAT of a transaction reach the server in one
    # read, written before any reply to them.
    reads = [read for conn in recorder.client_reads for read in conn]
    assert any(re.search(rb"MAIL FROM:<[^>]*>[^\r]*\r\nRCPT TO:<someone@relay.test>[^\r]*\r\n"
                         rb"BDAT \d+ LAST\r\n", read) for read in reads), reads[:3]
    # Byte for byte: each message at the next hop is a chunk edgerelay sent,
    # behind the Received field Postfix added; and its signature verifies.
    received = sorted(without_received(m.data) for m in arrived)
    assert received == sorted(sent)
    for message in arrived:
        assert dkim.verify(message.data, dnsfunc=dkim_dns(dkim_ed25519)), message.data[:500]
    # Postfix counted the same: BDAT for every message, DATA never.
    counts = wait_for(lambda: re.findall(r"disconnect from \S+ (.*)", smarthost.log()),
                      what="Postfix's disconnect line")
    bdat = sum(int(n) for line in counts for n in re.findall(r"\bbdat=(\d+)", line))
    assert bdat == BATCH, counts
    assert not any(re.search(r"\bdata=", line) for line in counts), counts
