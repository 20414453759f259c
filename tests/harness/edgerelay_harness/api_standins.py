"""Loopback stand-ins for the HTTP upstreams edgerelay can send through:
Amazon SES v2 (`POST /v2/email/outbound-emails`) and Mailgun
(`POST /v3/{domain}/messages.mime`).

Each checks the documented request shape and refuses what does not match,
answering the provider's documented error bodies. The SES stand-in
recomputes the SigV4 signature with botocore's own implementation (not
edgerelay's) and answers `SignatureDoesNotMatch` to a wrong one. Canned
answers (`answer_next`) are served first, one per request, then success.
Everything received is kept in `received` (accepted or not)."""
import base64
import re
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass
class Sent:
    """One request the stand-in took: recipients, the raw MIME, the tag or
    user variable naming edgerelay's message, and the provider's id."""
    recipients: list
    mime: bytes
    edgerelay_id: str | None
    provider_id: str
    mail_from: str | None = None
    # time.time() when it was taken
    at: float = field(default_factory=time.time)


@dataclass
class Canned:
    status: int
    body: dict | str
    headers: dict = field(default_factory=dict)


class _StandIn:
    def __init__(self):
        self.received: list[dict] = []
        self.sent: list[Sent] = []
        self._canned: list[Canned] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with standin._lock:
                    standin.received.append({"path": self.path, "headers": dict(self.headers),
                                             "body": body})
                status, payload, headers = standin.handle(self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer_next(self, *answers: Canned):
        with self._lock:
            self._canned.extend(answers)

    def _take_canned(self):
        with self._lock:
            return self._canned.pop(0) if self._canned else None


class SesStandIn(_StandIn):
    """SES v2 `SendEmail` with `Content.Raw`, signed with SigV4 (service
    `ses`) by `key_id`/`secret` for `region`."""

    def __init__(self, key_id="AKIDEDGERELAYTEST", secret="edgerelay/test+secret", region="us-east-1"):
        self.key_id, self.secret, self.region = key_id, secret, region
        super().__init__()

    def url(self, secret: str | None = None) -> str:
        from urllib.parse import quote
        return (f"ses://{self.key_id}:{quote(secret or self.secret, safe='')}@{self.region}"
                f"?endpoint={self.base}")

    def _error(self, status, code, message):
        return status, {"message": message}, {"x-amzn-ErrorType": code,
                                              "Content-Type": "application/json"}

    def _expected_authorization(self, headers, body) -> str:
        amz_date = headers.get("X-Amz-Date", "")
        request = AWSRequest(method="POST", url=f"http://{headers.get('Host')}/v2/email/outbound-emails",
                             data=body, headers={"Content-Type": headers.get("Content-Type", ""),
                                                 "X-Amz-Date": amz_date})
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(self.key_id, self.secret), "ses", self.region)
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        signed = auth.signed_headers(auth.headers_to_sign(request))
        return (f"AWS4-HMAC-SHA256 Credential={self.key_id}/{auth.credential_scope(request)}, "
                f"SignedHeaders={signed}, Signature={signature}")

    def handle(self, path, headers, body):
        if path != "/v2/email/outbound-emails":
            return self._error(404, "NotFoundException", f"no route {path}")
        if headers.get("Authorization") != self._expected_authorization(headers, body):
            return self._error(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature "
                               "you provided.")
        if not headers.get("Content-Type", "").startswith("application/json"):
            return self._error(400, "BadRequestException", "Content-Type must be JSON")
        try:
            request = json.loads(body)
            raw = base64.b64decode(request["Content"]["Raw"]["Data"], validate=True)
            recipients = request["Destination"]["ToAddresses"]
            assert isinstance(recipients, list) and recipients
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._error(400, "BadRequestException", "Invalid request shape")
        canned = self._take_canned()
        if canned:
            return canned.status, canned.body, {"Content-Type": "application/json", **canned.headers}
        tags = {t["Name"]: t["Value"] for t in request.get("EmailTags", [])}
        message_id = f"0100{uuid.uuid4().hex}-000000"
        self.sent.append(Sent(recipients, raw, tags.get("edgerelay_id"), message_id,
                              request.get("FromEmailAddress")))
        return 200, {"MessageId": message_id}, {"Content-Type": "application/json"}


class MailgunStandIn(_StandIn):
    """Mailgun `messages.mime` for `domain`, basic auth `api:<key>`."""

    def __init__(self, key="key-edgerelay-test", domain="mg.example.test"):
        self.key, self.domain = key, domain
        super().__init__()

    def url(self, key: str | None = None) -> str:
        return f"mailgun://api:{key or self.key}@{self.domain}?endpoint={self.base}"

    def handle(self, path, headers, body):
        if path != f"/v3/{self.domain}/messages.mime":
            return 404, {"message": f"Domain not found: {self.domain}"}, {}
        expected = "Basic " + base64.b64encode(f"api:{self.key}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, "Forbidden", {}
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return 400, {"message": "Content-Type must be multipart/form-data"}, {}
        fields = _form_fields(content_type, body)
        if fields is None:
            return 400, {"message": "the multipart form does not parse"}, {}
        if "to" not in fields:
            return 400, {"message": "'to' parameter is missing"}, {}
        if len(fields.get("message", [])) != 1 or fields["message"][0][0] is None:
            return 400, {"message": "'message' parameter is missing"}, {}
        canned = self._take_canned()
        if canned:
            return canned.status, canned.body, canned.headers
        recipients = [value.decode() for _, value in fields["to"]]
        mime = fields["message"][0][1]
        variables = {name[2:]: parts[0][1].decode()
                     for name, parts in fields.items() if name.startswith("v:")}
        message_id = f"<{uuid.uuid4().hex}@{self.domain}>"
        self.sent.append(Sent(recipients, mime, variables.get("edgerelay_id"), message_id))
        return 200, {"id": message_id, "message": "Queued. Thank you."}, {}


def _form_fields(content_type: str, body: bytes):
    """multipart/form-data as {name: [(filename or None, raw bytes)]}, the
    bytes exactly as sent (a DKIM check needs them untouched)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return None
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        return None
    fields: dict[str, list] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            return None
        head, sep, value = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            return None
        disposition = next((line for line in head.decode().split("\r\n")
                            if line.lower().startswith("content-disposition:")), "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if not name:
            return None
        fields.setdefault(name.group(1), []).append(
            (filename.group(1) if filename else None, value))
    return fields
