"""An HTTP client for edgerelay's API, as a caller sees it: status, parsed
body and headers, errors included (a 4xx is an answer, not an exception).

Must not: assert anything about the answers; callers do.
"""
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

from .wrangler import WranglerDev


class Reply(NamedTuple):
    status: int
    # Parsed JSON, or the text when the body is not JSON.
    body: Any
    headers: Any


def request(url: str, method: str = "GET", body=None, headers: dict | None = None,
            raw: bytes | None = None, timeout: float = 30.0) -> Reply:
    """One request; `body` is sent as JSON, `raw` as given."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload, response_headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        status, payload, response_headers = e.code, e.read(), e.headers
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = payload.decode(errors="replace")
    return Reply(status, parsed, response_headers)


class Worker:
    """A running edgerelay (a `WranglerDev`) and the API key tests send with."""

    def __init__(self, dev: WranglerDev, api_key: str):
        self.dev = dev
        self.api_key = api_key

    @property
    def url(self) -> str:
        return self.dev.url

    @property
    def state_dir(self) -> Path | None:
        return self.dev.state_dir

    def log(self) -> str:
        return self.dev.log()

    def sweep(self) -> None:
        """Runs the reconciliation sweep now (the cron trigger's handler)."""
        status = self.dev.scheduled()
        if status != 200:
            raise AssertionError(f"the scheduled handler answered {status}")

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                raw: bytes | None = None, timeout: float = 30.0) -> Reply:
        return request(self.url + path, method, body, headers, raw, timeout)

    def send(self, message: dict, key: str | None = None) -> Reply:
        return self.request("POST", "/v1/messages", message,
                            {"Authorization": f"Bearer {key or self.api_key}"})

    def email(self, raw: bytes, mail_from: str, rcpt_to: str) -> Reply:
        """Delivers `raw` to the worker's email handler as Email Routing
        would (wrangler dev's local trigger): the answer says whether the
        handler accepted, rejected (`rejectReason`) or forwarded it."""
        query = urllib.parse.urlencode({"from": mail_from, "to": rcpt_to, "format": "json"})
        return self.request("POST", f"/cdn-cgi/local/email?{query}", raw=raw,
                            headers={"Content-Type": "message/rfc822"})

    def status(self, message_id: str) -> dict:
        """The message's record; fails unless the API answers 200."""
        s, body, _ = self.request("GET", f"/v1/messages/{message_id}", headers=self.auth)
        if s != 200:
            raise AssertionError(f"GET /v1/messages/{message_id} answered {s}: {body}")
        return body

    def stored_bodies(self) -> list[Path]:
        """Message bodies in the worker's local R2 (one file per blob)."""
        if self.state_dir is None:
            raise RuntimeError("the worker runs without a state directory of its own")
        r2 = self.state_dir / "v3" / "r2"
        return [p for p in r2.rglob("*") if p.is_file() and p.parent.name == "blobs"]
