"""The benchmark's delaying proxy: bytes arrive intact and in order, every
client connection is counted, and no reply comes back sooner than the
round trip it stands in for (a lower bound, so it cannot flake on a slow
machine)."""
import socket
import threading
import time

from edgerelay_harness.delay_proxy import DelayProxy


def echo_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_proxy_keeps_order_counts_connections_and_adds_the_round_trip():
    listener = echo_server()
    proxy = DelayProxy(listener.getsockname()[1], one_way_ms=15).start()
    try:
        payload = b"".join(b"line %05d\r\n" % i for i in range(20000))  # ~220 KB, many chunks
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            started = time.monotonic()
            c.sendall(b"ping")
            assert c.recv(4) == b"ping"
            assert time.monotonic() - started >= 0.030
            c.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = c.recv(65536)
                assert chunk, "connection closed early"
                got += chunk
            assert got == payload
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            c.sendall(b"x")
            assert c.recv(1) == b"x"
        assert proxy.connections == 2
    finally:
        proxy.stop()
        listener.close()
