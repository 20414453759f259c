"""A real SMTP upstream on loopback, built on aiosmtpd.

It requires STARTTLS and AUTH (unless told otherwise), records every
connection, command and message, and can be told to misbehave: answer chosen
recipients with a given reply, answer DATA with a 4xx for the first N messages,
hold the reply to the final dot, or inject random faults at the end of data
(4xx, 421, a dropped connection with or without the message kept, a stall).
It runs in a thread of the calling process; it must not decide what a test
expects, only record what arrived.
"""
import asyncio
import random
import ssl
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .net import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    data: bytes
    # time.time() when the server answered the end of data with 250
    accepted_at: float = 0.0
    # the client's (host, port): one per connection, so it names the session
    peer: tuple | None = None


@dataclass
class Behaviour:
    # recipient address -> reply for its RCPT, e.g. "550 5.1.1 No such user"
    rcpt_replies: dict = field(default_factory=dict)
    # answer DATA with this reply for the first `data_failures` messages
    data_failures: int = 0
    data_failure_reply: str = "451 4.3.0 Try again later"
    # answer every EHLO with this reply instead (e.g. "421 4.3.2 Shutting
    # down"): a server that listens but fails every session
    ehlo_reply: str | None = None
    # advertise PIPELINING (aiosmtpd reads commands one by one from its
    # buffer, so it serves pipelined clients; it just does not announce it)
    pipelining: bool = False
    # recipient address -> [n, reply]: answer its first n RCPTs with reply
    rcpt_failures_first: dict = field(default_factory=dict)
    # seconds to wait before answering the final dot (a slow content check)
    data_delay: float = 0.0
    # when set, every end of data is taken (recorded) and its reply waits
    # for this event: a transaction held between the final dot and its
    # reply, for as long as a test needs
    hold_data_end: threading.Event | None = None
    # a soak's faults: this share of ends of data meets one of FAULTS, drawn
    # by a random generator seeded with `fault_seed`
    fault_rate: float = 0.0
    fault_seed: int = 0
    # how long a `stall` fault waits before it hangs up (beyond the client's
    # timeout for the reply to the end of data)
    stall_seconds: float = 12.0


# What a faulty end of data does. Taken: the server keeps the message.
#   451, 421:        refused for now (not taken); the client retries
#   drop-taken:      taken, then the connection drops before the reply
#   drop-not-taken:  the connection drops before the reply, message not kept
#   stall:           no reply until the client gives up; not taken
FAULTS = ("451", "421", "drop-taken", "drop-not-taken", "stall")


class RecordingHandler:
    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.messages: list[Received] = []
        self.rcpt_commands: list[str] = []
        self.data_commands = 0
        # ends of data that arrived and wait for `hold_data_end`
        self.held = 0
        # faults injected, by kind (see FAULTS)
        self.faults: dict[str, int] = {}
        self._random = random.Random(behaviour.fault_seed)
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.behaviour.ehlo_reply:
            return [self.behaviour.ehlo_reply]
        # With this hook, aiosmtpd leaves recording the name to it.
        session.host_name = hostname
        if self.behaviour.pipelining:
            responses = responses[:-1] + ["250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_commands.append(address)
            first = self.behaviour.rcpt_failures_first.get(address)
            if first and first[0] > 0:
                first[0] -= 1
                return first[1]
        reply = self.behaviour.rcpt_replies.get(address)
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _fault(self) -> str | None:
        with self.lock:
            if self._random.random() >= self.behaviour.fault_rate:
                return None
            kind = self._random.choice(FAULTS)
            self.faults[kind] = self.faults.get(kind, 0) + 1
            return kind

    async def _faulty_end_of_data(self, kind: str, server, envelope):
        if kind in ("451", "421"):
            return f"{kind} 4.3.0 injected fault"
        if kind == "drop-taken":
            with self.lock:
                self.data_commands += 1
                self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                              envelope.original_content, time.time()))
        elif kind == "stall":
            await asyncio.sleep(self.behaviour.stall_seconds)
        server.transport.close()
        return "451 4.3.0 closed"

    async def handle_DATA(self, server, session, envelope):
        kind = self._fault() if self.behaviour.fault_rate else None
        if kind is not None:
            return await self._faulty_end_of_data(kind, server, envelope)
        if self.behaviour.data_delay:
            await asyncio.sleep(self.behaviour.data_delay)
        hold = self.behaviour.hold_data_end
        if hold is not None and not hold.is_set():
            # The server has the message once the dot is in; only the reply
            # waits (a client that dies meanwhile never learns it was taken).
            with self.lock:
                self.held += 1
                self.data_commands += 1
                self.messages.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos),
                             envelope.original_content, time.time())
                )
            while not hold.is_set():
                await asyncio.sleep(0.01)
            return "250 2.0.0 Queued"
        with self.lock:
            self.data_commands += 1
            if self.behaviour.data_failures > 0:
                self.behaviour.data_failures -= 1
                return self.behaviour.data_failure_reply
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                         time.time(), session.peer)
            )
        return "250 2.0.0 Queued"


class CountingSMTP(SMTP):
    connections = None  # set per controller
    reads = None  # set per controller: (peer, bytes) per TCP read, TLS-decrypted
    sessions = None  # set per controller: the open-session gauge

    def data_received(self, data):
        # One entry per read from the socket (after TLS, per decrypted
        # record): commands that share an entry arrived together, which is
        # how a pipelining client shows itself.
        if self.reads is not None:
            peer = self.transport.get_extra_info("peername") if self.transport else None
            self.reads.append((peer, bytes(data)))
        super().data_received(data)

    def connection_made(self, transport):
        # aiosmtpd calls this again on the TLS transport after STARTTLS:
        # count each client connection once.
        peer = transport.get_extra_info("peername")
        # Kept for connection_lost: a TLS transport cannot say it by then.
        self._gauge_peer = peer
        if self.connections is not None and peer not in self.connections:
            self.connections.append(peer)
        if self.sessions is not None:
            self.sessions.opened(peer)
        super().connection_made(transport)

    def connection_lost(self, exc):
        if self.sessions is not None:
            self.sessions.closed(getattr(self, "_gauge_peer", None))
        super().connection_lost(exc)


class SessionGauge:
    """Client sessions open at once: now, and the most seen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.open: set = set()
        self.most = 0

    def opened(self, peer):
        with self.lock:
            self.open.add(peer)
            self.most = max(self.most, len(self.open))

    def closed(self, peer):
        with self.lock:
            self.open.discard(peer)


class Upstream:
    """An aiosmtpd server on 127.0.0.1. Start, stop and restart it on the same port."""

    USER = "relay"
    PASSWORD = "s3cret-pass"

    def __init__(self, tls_paths: dict, port: int | None = None, behaviour: Behaviour | None = None,
                 require_tls: bool = True, implicit_tls: bool = False,
                 data_size_limit: int = 33554432):
        self.port = port or free_port()
        self.behaviour = behaviour or Behaviour()
        self.handler = RecordingHandler(self.behaviour)
        self.connections: list = []
        self.reads: list = []
        self.sessions = SessionGauge()
        self.auth_attempts = 0
        self.tls_paths = tls_paths
        # implicit_tls: TLS from the first byte (smtps, port 465 style);
        # otherwise require_tls: STARTTLS before AUTH and mail.
        self.implicit_tls = implicit_tls
        self.require_tls = require_tls and not implicit_tls
        # The largest message accepted (aiosmtpd's SIZE), 32 MiB by default.
        self.data_size_limit = data_size_limit
        self.controller = None

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        self.auth_attempts += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.USER.encode()
            and auth_data.password == self.PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)

    def start(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_paths["cert"], self.tls_paths["key"])
        upstream = self

        class Ctl(Controller):
            def factory(self):
                smtp = CountingSMTP(
                    self.handler,
                    tls_context=context if upstream.require_tls else None,
                    require_starttls=upstream.require_tls,
                    auth_required=True,
                    auth_require_tls=upstream.require_tls,
                    authenticator=upstream._authenticator,
                    hostname="upstream.test",
                    data_size_limit=upstream.data_size_limit,
                )
                smtp.connections = upstream.connections
                smtp.reads = upstream.reads
                smtp.sessions = upstream.sessions
                return smtp

        self.controller = Ctl(self.handler, hostname="127.0.0.1", port=self.port,
                              ready_timeout=10,
                              ssl_context=context if self.implicit_tls else None)
        self.controller.start()
        # The controller's own readiness probe is not a client.
        self.connections.clear()
        self.reads.clear()
        with self.sessions.lock:
            self.sessions.open.clear()
            self.sessions.most = 0
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp" if self.require_tls else "smtp+insecure"
        return f"{scheme}://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def deliveries_to(self, address: str) -> int:
        """How many accepted messages named this recipient."""
        return sum(m.rcpt_tos.count(address) for m in self.messages)
