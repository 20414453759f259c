"""A TCP proxy on loopback that adds a fixed delay to every chunk, each way.

It stands in for a network round trip: with 10 ms each way, every
request/reply exchange costs 20 ms more, as it would to a smarthost 20 ms away.
Each direction is a FIFO with its own writer, so bytes keep their order and a
burst of pipelined commands is delayed once, not once per command. Runs in a
thread of its own; `connections` counts the sockets clients opened. With
`record=True`, `client_reads` keeps what each client sent, per connection, as
the chunks the proxy read (a chunk holds what had arrived by then: commands
that share one were pipelined). It must not change the bytes: only when they
arrive.
"""
import asyncio
import threading
import time


class DelayProxy:
    def __init__(self, target_port: int, one_way_ms: float, host: str = "127.0.0.1",
                 record: bool = False):
        self.target = (host, target_port)
        self.delay = one_way_ms / 1000.0
        self.host = host
        self.port = 0
        self.connections = 0
        self.record = record
        self.client_reads: list[list[bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "DelayProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            # The loop stops itself at the end of _shutdown; joining the
            # thread is the wait.
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, client_r, client_w):
        self.connections += 1
        reads = None
        if self.record:
            reads = []
            self.client_reads.append(reads)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(self._pipe(client_r, server_w, reads),
                                 self._pipe(server_r, client_w), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy is stopping

    async def _pipe(self, reader, writer, reads: list | None = None):
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, chunk = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if chunk is None:
                    writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                if reads is not None and chunk:
                    reads.append(chunk)
                queue.put_nowait((time.monotonic() + self.delay, chunk or None))
                if not chunk:
                    break
            await sender
        except (ConnectionError, OSError, asyncio.CancelledError):
            sender.cancel()
            writer.close()
            await asyncio.gather(sender, return_exceptions=True)
