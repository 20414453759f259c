"""A DNS-over-HTTPS resolver on loopback that answers TXT questions in the
JSON form (`?name=&type=TXT`, `application/dns-json`) from a zone a test
edits while it runs: publish a record, break it, take it away.

Must not: answer anything but TXT from its zone (other names are NXDOMAIN).
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class TxtZone:
    def __init__(self):
        self.records: dict[str, list[str]] = {}
        self.asked: list[str] = []
        self._lock = threading.Lock()
        zone = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                query = parse_qs(urlparse(self.path).query)
                name = query.get("name", [""])[0].rstrip(".").lower()
                with zone._lock:
                    zone.asked.append(name)
                    texts = list(zone.records.get(name, []))
                answer = {"Status": 0 if texts else 3, "Answer": [
                    {"name": name + ".", "type": 16, "TTL": 60, "data": _quoted(t)} for t in texts]}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/dns-json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dns-query"

    def publish(self, name: str, *texts: str) -> None:
        """Sets the TXT records of `name` (none: removes them)."""
        with self._lock:
            if texts:
                self.records[name.rstrip(".").lower()] = list(texts)
            else:
                self.records.pop(name.rstrip(".").lower(), None)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _quoted(text: str) -> str:
    """A TXT value as DoH JSON gives it: quoted strings of at most 255
    characters each (a DKIM key is longer than one)."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join(json.dumps(c) for c in chunks)
