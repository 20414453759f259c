"""edgerelay as the benchmarks configure it: a fresh API key, an Ed25519
DKIM key for example.com, a plaintext upstream on loopback and the bench
routes on. The same message is sent by every SMTP benchmark."""
import base64
import hashlib
import json
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

API_KEY = "er_bench_" + secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {API_KEY}"}

# About 2 KB of text and HTML: a typical transactional message.
_TEXT = ("Your order has shipped and is on its way to you. " * 20).strip()
MESSAGE = {
    "from": "Bench <bench@example.com>",
    "to": "rcpt@example.net",
    "subject": "Your order has shipped",
    "text": _TEXT,
    "html": f"<p>{_TEXT}</p>",
}
# The same message in worker-mailer's shape.
WORKER_MAILER_MESSAGE = {
    "from": {"name": "Bench", "email": "bench@example.com"},
    "to": "rcpt@example.net",
    "subject": MESSAGE["subject"],
    "text": MESSAGE["text"],
    "html": MESSAGE["html"],
}


def _dkim_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    return base64.b64encode(pkcs8).decode()


def vars_for(upstream_port: int) -> dict:
    return {
        "API_KEYS": json.dumps([{
            "id": "bench",
            "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
            "domains": ["example.com"],
        }]),
        "DKIM_KEYS": json.dumps([{
            "domain": "example.com", "selector": "bench", "algorithm": "ed25519",
            "private_key": _dkim_key(),
        }]),
        "SMTP_UPSTREAMS": f"smtp+insecure://127.0.0.1:{upstream_port}",
        "EHLO_NAME": "relay.bench.test",
        "RETRY_BASE_DELAY_SECONDS": "1",
        "SMTP_TIMEOUT_SECONDS": "30",
        "BENCH_ROUTES": "on",
    }
