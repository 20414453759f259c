"""A scripted SMTP server on loopback that misbehaves at random, for the soak:
plain SMTP with PIPELINING (no TLS, no AUTH), one asyncio loop in a thread.

Each connection and each end of data draws from a random generator seeded by
the caller; with probability `rate` a fault is injected instead of the normal
answer. Every fault is counted by kind, and every message the server kept is
recorded (its Subject, for counting copies per message):

- `greeting-421`: a 421 greeting, then the connection closes (nothing kept).
- `rcpt-hangup`: the connection closes without a reply to RCPT (nothing kept).
- `dot-451`: the end of data is refused with 451 (nothing kept).
- `dot-hangup-kept`: the message is kept, then the connection closes before
  the reply to the end of data (the client cannot know: `unknown`).
- `dot-hangup-lost`: the connection closes before the reply to the end of
  data, the message is not kept.
- `dot-stall`: no reply to the end of data for `stall_seconds` (past the
  client's timeout), then the connection closes; nothing kept.

Must not: decide what a caller expects; it only injects and records.
"""
import asyncio
import random
import re
import threading
from collections import Counter

from .net import free_port

CONNECTION_FAULTS = ("greeting-421",)
RCPT_FAULTS = ("rcpt-hangup",)
DOT_FAULTS = ("dot-451", "dot-hangup-kept", "dot-hangup-lost", "dot-stall")
SUBJECT = re.compile(rb"^Subject: ([^\r\n]*)", re.MULTILINE | re.IGNORECASE)


class FaultySmtp:
    """Listening once `start` returns; `stop` closes it."""

    def __init__(self, rate: float = 0.1, seed: int = 0, stall_seconds: float = 8.0,
                 hostname: str = "faulty.test"):
        self.rate = rate
        self.stall_seconds = stall_seconds
        self.hostname = hostname
        self.port = free_port()
        self.faults: Counter = Counter()
        self.subjects: Counter = Counter()  # Subject -> copies kept
        self.connections = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def _draw(self, kinds: tuple, rate: float) -> str | None:
        with self._lock:
            if self._random.random() >= rate:
                return None
            kind = self._random.choice(kinds)
            self.faults[kind] += 1
            return kind

    def _keep(self, data: bytes) -> None:
        head = data.split(b"\r\n\r\n", 1)[0]
        found = SUBJECT.search(head)
        with self._lock:
            self.subjects[found.group(1).decode(errors="replace") if found else ""] += 1

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        with self._lock:
            self.connections += 1
        try:
            if self._draw(CONNECTION_FAULTS, self.rate / 2):
                writer.write(b"421 4.3.2 injected: service not available\r\n")
                await writer.drain()
                return
            writer.write(f"220 {self.hostname} ESMTP\r\n".encode())
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"LHLO"):
                    writer.write(f"250-{self.hostname}\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                                 "250 SIZE 104857600\r\n".encode())
                elif verb == b"HELO":
                    writer.write(f"250 {self.hostname}\r\n".encode())
                elif verb in (b"MAIL", b"RSET", b"NOOP"):
                    writer.write(b"250 2.0.0 OK\r\n")
                elif verb == b"RCPT":
                    if self._draw(RCPT_FAULTS, self.rate / 4):
                        return
                    writer.write(b"250 2.1.5 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    await writer.drain()
                    data = await self._read_data(reader)
                    if data is None:
                        return
                    kind = self._draw(DOT_FAULTS, self.rate)
                    if kind == "dot-451":
                        writer.write(b"451 4.3.0 injected: try again later\r\n")
                    elif kind == "dot-hangup-kept":
                        self._keep(data)
                        return
                    elif kind == "dot-hangup-lost":
                        return
                    elif kind == "dot-stall":
                        await asyncio.sleep(self.stall_seconds)
                        return
                    else:
                        self._keep(data)
                        writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 5.5.2 command not recognised\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _read_data(reader: asyncio.StreamReader) -> bytes | None:
        lines = []
        while True:
            line = await reader.readline()
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)

    def start(self) -> "FaultySmtp":
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, "127.0.0.1", self.port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the scripted SMTP server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
