"""Pipelined BDAT (CHUNKING) against a real Postfix smtpd, one connection,
20 ms of round-trip time: edgerelay with BDAT, edgerelay with DATA (CHUNKING
switched off, PIPELINING on), worker-mailer, and a plain-socket client that
writes every transaction before reading any reply (the limit), for ~2 KB
and ~1 MB messages. All of them send to the same private Postfix (the test
harness's, which offers PIPELINING and CHUNKING; the recipient's domain is
discarded once queued) through the same delaying proxy, interleaved run by
run."""
import socket
import threading
import time
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.delay_proxy import DelayProxy
from edgerelay_harness.paths import ROOT
from edgerelay_harness.postfix import PostfixInstance
from edgerelay_harness.wrangler import companion_config

from . import relay
from .report import Row, median

ONE_WAY_MS = 10
WORKER_MAILER = ROOT / "benches" / "worker-mailer"
RECIPIENT = "rcpt@sink.test"
# (label, messages per run, text of the message)
SMALL = ("2 KB", 100, relay.MESSAGE["text"])
LARGE = ("1 MB", 10, ("All the news that fits, and then some more of it. " * 21_000)[:1_000_000])
TARGET_SMALL = 300.0
# One consumer session's share of a full queue batch (100 over 5 sessions).
SHARE = 20


def _message(text: str) -> dict:
    return {**relay.MESSAGE, "to": RECIPIENT, "text": text, "html": f"<p>{text[:2000]}</p>"}


def _edgerelay(url: str, text: str, count: int, chunking: bool) -> dict:
    switch = "on" if chunking else "off"
    status, body, _ = request(
        f"{url}/bench/smtp?count={count}&pipelining=on&chunking={switch}",
        "POST", _message(text), relay.AUTH, timeout=300)
    if status != 200:
        raise RuntimeError(f"/bench/smtp answered {status}: {body}")
    return body


def _worker_mailer(url: str, text: str, count: int) -> dict:
    message = {**relay.WORKER_MAILER_MESSAGE, "to": RECIPIENT, "text": text,
               "html": f"<p>{text[:2000]}</p>"}
    status, body, _ = request(f"{url}/worker-mailer/smtp?count={count}", "POST", message,
                              timeout=300)
    if status != 200:
        raise RuntimeError(f"/worker-mailer/smtp answered {status}: {body}")
    return body


def _rate(body: dict, count: int) -> float:
    if body["delivered"] != count:
        raise RuntimeError(f"only {body['delivered']} of {count} delivered: {body}")
    return count / (max(body["elapsed_ms"], 1) / 1000.0)


def raw_message(text: str) -> bytes:
    """A message of about the size edgerelay sends for `text` (its MIME has
    a text and an HTML part, headers and a DKIM signature)."""
    body = text.replace("\n", "\r\n")
    html = f"<p>{text[:2000]}</p>"
    return ("From: Bench <bench@example.com>\r\nTo: rcpt@sink.test\r\n"
            "Subject: Your order has shipped\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
            f"--b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n").encode()


def _read_replies(sock: socket.socket, buffer: bytearray, count: int) -> list[bytes]:
    """`count` complete replies (multi-line ones as one), read in order."""
    replies = []
    while len(replies) < count:
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(buffer[:end])
            del buffer[:end + 2]
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            replies.append(line)
        if len(replies) < count:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection closed after {len(replies)} replies")
            buffer.extend(chunk)
    return replies


def raw_bdat(port: int, message: bytes, count: int) -> float:
    """The limit: a plain socket that connects, reads the greeting, says
    EHLO, then writes MAIL, RCPT and `BDAT n LAST` with the message for
    every message and QUIT, all without waiting, while it reads the replies
    in order. Returns messages per second, timed like edgerelay's (connect
    to the reply to QUIT)."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        buffer = bytearray()
        _read_replies(sock, buffer, 1)
        sock.sendall(b"EHLO raw.bench.test\r\n")
        ehlo = _read_replies(sock, buffer, 1)
        if not ehlo[0].startswith(b"250"):
            raise RuntimeError(f"EHLO answered {ehlo}")
        transaction = (b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<" + RECIPIENT.encode() + b">\r\n"
                       + f"BDAT {len(message)} LAST\r\n".encode() + message)
        failure: list[BaseException] = []

        def write():
            try:
                for _ in range(count):
                    sock.sendall(transaction)
                sock.sendall(b"QUIT\r\n")
            except OSError as e:
                failure.append(e)

        writer = threading.Thread(target=write)
        writer.start()
        replies = _read_replies(sock, buffer, 3 * count + 1)
        writer.join()
        if failure:
            raise RuntimeError(f"raw client write failed: {failure[0]}")
        refused = [r for r in replies if not r.startswith(b"2")]
        if refused:
            raise RuntimeError(f"raw client refused: {refused[:3]}")
    finally:
        sock.close()
    return count / (time.monotonic() - started)


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    directory = relay.workdir(base, "bdat")
    postfix = PostfixInstance().start()
    proxy = DelayProxy(postfix.port, ONE_WAY_MS).start()
    worker = None
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        wm_config = companion_config(directory, WORKER_MAILER / "wrangler.toml",
                                     WORKER_MAILER / "index.js", {"SMTP_PORT": str(proxy.port)})
        worker = relay.start(directory, relay.vars_for(proxy.port), before=(wm_config,))
        worker.wait_ready("/worker-mailer/health")
        worker.wait_ready("/health")
        for label, count, text in (SMALL, LARGE):
            # Warm-up, untimed: each sender once, with a few messages.
            _edgerelay(worker.url, text, 2, True)
            _edgerelay(worker.url, text, 2, False)
            _worker_mailer(worker.url, text, 2)
            raw = raw_message(text)
            for _ in range(rounds):
                for sender, measure in (
                    ("bdat", lambda: _rate(_edgerelay(worker.url, text, count, True), count)),
                    ("data", lambda: _rate(_edgerelay(worker.url, text, count, False), count)),
                    ("wm", lambda: _rate(_worker_mailer(worker.url, text, count), count)),
                    ("raw", lambda: raw_bdat(proxy.port, raw, count)),
                ):
                    samples.setdefault((label, sender), []).append(measure())
                if label == SMALL[0]:
                    samples.setdefault(("share", "bdat"), []).append(
                        _rate(_edgerelay(worker.url, text, SHARE, True), SHARE))
                    samples.setdefault(("share", "raw"), []).append(
                        raw_bdat(proxy.port, raw, SHARE))
    finally:
        if worker is not None:
            worker.stop()
        proxy.stop()
        postfix.stop()

    def m(label, sender):
        return median(samples[(label, sender)])

    rows = []
    for label, count, _ in (SMALL, LARGE):
        bdat, data, wm, raw = (m(label, s) for s in ("bdat", "data", "wm", "raw"))
        big = label == LARGE[0]
        rows += [
            Row(figure=f"Postfix, 20 ms RTT, {label} × {count} / 1 connection: edgerelay BDAT "
                       "(pipelined)",
                value=bdat, unit="msg/s", baseline=wm, baseline_label="worker-mailer",
                target="faster than edgerelay DATA" if big else f"≥ {TARGET_SMALL:.0f} msg/s",
                met=(bdat > data) if big else bdat >= TARGET_SMALL, runs=rounds,
                samples=samples[(label, "bdat")], baseline_samples=samples[(label, "wm")],
                note=(f"{bdat / data:.2f}× edgerelay DATA ({data:.1f} msg/s)" if big else
                      f"{bdat / raw:.0%} of the raw client's {raw:.0f} msg/s")),
            Row(figure=f"Postfix, 20 ms RTT, {label} × {count} / 1 connection: edgerelay DATA "
                       "(pipelined)",
                value=data, unit="msg/s", baseline=wm, baseline_label="worker-mailer",
                runs=rounds, samples=samples[(label, "data")],
                baseline_samples=samples[(label, "wm")],
                note="CHUNKING switched off: one round trip per message for its 354"),
            Row(figure=f"Postfix, 20 ms RTT, {label} × {count} / 1 connection: raw pipelined "
                       "BDAT client (the limit)",
                value=raw, unit="msg/s", baseline=bdat, baseline_label="edgerelay BDAT",
                runs=rounds, samples=samples[(label, "raw")],
                baseline_samples=samples[(label, "bdat")],
                note="plain Python socket, every transaction written before any reply is read"),
        ]
    share, share_raw = m("share", "bdat"), m("share", "raw")
    rows.append(Row(
        figure=f"Postfix, 20 ms RTT, 2 KB × {SHARE} / 1 connection (a consumer session's share "
               "of a batch of 100): edgerelay BDAT",
        value=share, unit="msg/s", baseline=share_raw, baseline_label="raw client",
        runs=rounds, samples=samples[("share", "bdat")],
        baseline_samples=samples[("share", "raw")],
        note="connect, greeting and EHLO (3 round trips) weigh on so few messages"))
    text = (
        "Each run sends copies of one message over one connection (connect, greeting, EHLO, "
        "the transactions, QUIT), timed inside the sender, to the test harness's private "
        "Postfix (smtpd on loopback, PIPELINING and CHUNKING offered, the recipient's domain "
        "discarded once queued) behind an asyncio proxy adding "
        f"{ONE_WAY_MS} ms to each chunk in each direction. {SMALL[1]} messages of about 2 KB, "
        f"then {LARGE[1]} of about 1 MB. edgerelay (`POST /bench/smtp`, the consumer's "
        "driver, messages composed and Ed25519-signed before the clock starts) sends "
        "with BDAT: whole transactions (MAIL, RCPT, `BDAT n LAST` and the message) "
        "pipelined, up to 32 on the wire, every reply attributed to its message; and with "
        "`chunking=off`, DATA, pipelined, which waits a round trip for each 354. "
        "worker-mailer (benches/worker-mailer) uses DATA. The raw client is a plain "
        "Python socket writing every transaction, then QUIT, from one thread while another "
        "reads the replies: what one connection can carry here. A queue batch holds at most "
        "100 messages and the consumer spreads it over up to 5 connections, so one "
        "connection carries about 20 messages there, and connect, greeting and EHLO (3 "
        f"round trips) weigh more than here. {rounds} rounds after an untimed warm-up; "
        "within a round the four senders run one after another.")
    return rows, text
