"""A scripted SMTP server on loopback that takes a message up to DATA's 354
and then stops reading: the client's writes fill its socket buffers and
block, as they would against a smarthost that hangs mid-transfer.

It speaks lock-step SMTP without extensions (greeting, EHLO, MAIL, RCPT,
DATA), keeps every connection open until `stop()`, and never completes a
message. Its receive buffer is small, so a few megabytes fill the way.
It runs in a thread of its own and records what it saw; it must not decide
what a test expects.
"""
import socket
import threading


class StallingUpstream:
    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        # Sessions that got as far as the 354 to DATA.
        self.stalled = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def start(self) -> "StallingUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()
        with self._lock:
            for conn in self._open:
                conn.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            reader = conn.makefile("rb")
            conn.sendall(b"220 stall.test ESMTP\r\n")
            for line in reader:
                command = line.strip().upper()
                if command.startswith(b"DATA"):
                    conn.sendall(b"354 go ahead\r\n")
                    with self._lock:
                        self.stalled += 1
                    # From here on nothing is read: the connection stays
                    # open until stop() and the client's writes pile up.
                    self._stopping.wait()
                    return
                if command.startswith(b"QUIT"):
                    conn.sendall(b"221 bye\r\n")
                    return
                conn.sendall(b"250 ok\r\n")
        except OSError:
            return
