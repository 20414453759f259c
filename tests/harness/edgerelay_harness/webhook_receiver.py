"""A webhook receiver on loopback: an HTTP server that records every request
(path, headers, raw body) and answers each path as a test scripts it, e.g.
500 twice then 200, or 410 Gone.

Must not: verify signatures or judge payloads; tests do, with the official
`standardwebhooks` library.
"""
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    path: str
    headers: dict
    body: bytes


class WebhookReceiver:
    """`script`: path -> list of statuses answered in turn; the last one
    repeats. Paths not listed answer 200."""

    def __init__(self, script: dict[str, list[int]] | None = None):
        self.script = {path: list(codes) for path, codes in (script or {}).items()}
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    codes = receiver.script.get(self.path, [200])
                    code = codes.pop(0) if len(codes) > 1 else codes[0]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
