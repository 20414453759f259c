"""Throwaway keys and the settings built from them: API keys and queue
producer tokens (the secret and the hashed entry the worker stores), DKIM
keys with the DNS record a verifier needs, the queue secret, the worker's
vars, and a basic message to send.

Must not: start anything; everything here is a value.
"""
import base64
import email
import email.message
import email.policy
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

SENDER_DOMAIN = "example.com"


def new_api_key(prefix: str = "er_test_") -> str:
    return prefix + secrets.token_urlsafe(24)


def new_queue_secret() -> str:
    """A QUEUE_SECRET: random text well over the 32 characters edgerelay requires."""
    return secrets.token_urlsafe(36)


def sealed_job_body(queue_secret: str, job: dict) -> str:
    """A `deliver` body sealed as edgerelay seals its own (docs/configuration.md,
    sealed jobs): what only a holder of QUEUE_SECRET can write."""
    text = json.dumps(job, separators=(",", ":"))
    tag = hmac.new(queue_secret.encode(), b"edgerelay queue seal v1: deliver\n" + text.encode(),
                   hashlib.sha256).hexdigest()
    return json.dumps({"v": 1, "type": "deliver", "job": text, "seal": f"v1:{tag}"})


def new_producer_token() -> str:
    """A queue producer's secret token (the producer Worker's secret)."""
    return "pt_" + secrets.token_urlsafe(24)


def producer_entry(producer_id: str, owner: str, token: str, domains: list[str] | None = None) -> dict:
    """One QUEUE_PRODUCERS entry: edgerelay stores only the token's SHA-256."""
    return {"id": producer_id, "domains": domains or [SENDER_DOMAIN], "owner": owner,
            "token_sha256": hashlib.sha256(token.encode()).hexdigest()}


def api_key_entry(secret: str, key_id: str, domains: list[str] | None = None,
                  tenant: str | None = None) -> dict:
    """One API_KEYS entry: the worker stores only the key's SHA-256. Without
    `tenant`, the key is its own tenant."""
    entry = {"id": key_id, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
             "domains": domains or [SENDER_DOMAIN]}
    if tenant is not None:
        entry["tenant"] = tenant
    return entry


@dataclass
class DkimKey:
    """A DKIM key pair: `config` is its DKIM_KEYS entry, `txt` its DNS record."""
    selector: str
    algorithm: str  # "ed25519" or "rsa"
    key: object = field(repr=False)
    domain: str = SENDER_DOMAIN

    @classmethod
    def ed25519(cls, selector: str, domain: str = SENDER_DOMAIN) -> "DkimKey":
        return cls(selector, "ed25519", ed25519.Ed25519PrivateKey.generate(), domain)

    @classmethod
    def rsa(cls, selector: str, domain: str = SENDER_DOMAIN, bits: int = 2048) -> "DkimKey":
        return cls(selector, "rsa", rsa.generate_private_key(public_exponent=65537, key_size=bits),
                   domain)

    @property
    def pkcs8(self) -> str:
        der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return base64.b64encode(der).decode()

    @property
    def config(self) -> dict:
        return {"domain": self.domain, "selector": self.selector, "algorithm": self.algorithm,
                "private_key": self.pkcs8}

    @property
    def txt(self) -> bytes:
        if self.algorithm == "ed25519":
            public = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}".encode()
        spki = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}".encode()


def dkim_dns(*keys: DkimKey):
    """A `dnsfunc` for dkimpy that answers these keys' records, and nothing else."""
    records = {f"{k.selector}._domainkey.{k.domain}.": k.txt for k in keys}

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return records.get(name)
    return dnsfunc


def verified_by_all(data: bytes, *keys: DkimKey) -> email.message.EmailMessage:
    """The message, parsed, once it is signed and every DKIM-Signature on it
    verifies (dkimpy) against these keys' records."""
    signatures = email.message_from_bytes(data).get_all("DKIM-Signature") or []
    assert signatures, "the message is not signed"
    for index in range(len(signatures)):
        assert dkim.DKIM(data).verify(idx=index, dnsfunc=dkim_dns(*keys)), index
    return email.message_from_bytes(data, policy=email.policy.default)


def relay_vars(api_keys: list[dict], dkim_keys: list[DkimKey], upstreams: str, **extra) -> dict:
    """edgerelay's vars for a test or benchmark run; `extra` adds or replaces any."""
    vars_ = {
        "API_KEYS": json.dumps(api_keys),
        "DKIM_KEYS": json.dumps([k.config for k in dkim_keys]),
        "SMTP_UPSTREAMS": upstreams,
        "QUEUE_SECRET": new_queue_secret(),
        "EHLO_NAME": "relay.e2e.test",
        "RETRY_BASE_DELAY_SECONDS": "1",
        "SMTP_TIMEOUT_SECONDS": "5",
        # Runs talk to loopback only: a dry run's DNS lookups go to a port
        # where nothing listens (the lint then says DNS was not asked), unless
        # a test starts its own resolver.
        "DNS_RESOLVER_URL": "http://127.0.0.1:9/dns-query",
    }
    vars_.update(extra)
    return vars_


def basic_message(**overrides) -> dict:
    """A valid message from SENDER_DOMAIN with text and HTML; `overrides`
    replace or add fields."""
    m = {
        "from": f"Edge Relay <hello@{SENDER_DOMAIN}>",
        "to": "rcpt@example.net",
        "subject": "Hello from the edge",
        "text": "Plain body\n.\nwith a lone dot line",
        "html": "<p>HTML body</p>",
    }
    m.update(overrides)
    return m
