"""edgerelay's signed return path (VERP) and envelope id, written again from
their documented form (docs/reports.md) so a test can open what the worker
wrote, and mint a correctly signed one, with nothing but QUEUE_SECRET.

Must not: import the worker's code or guess: a token that does not verify
opens to None.
"""
import base64
import hashlib
import hmac

WHOLE_MESSAGE = 0xFFFF
TAG_LEN = 8


def derived_key(queue_secret: str, label: bytes) -> bytes:
    """The key QUEUE_SECRET gives one use (`label`), as the worker derives it."""
    return hmac.new(queue_secret.encode(), b"edgerelay derived key: " + label,
                    hashlib.sha256).digest()


def _split_id(message_id: str) -> tuple[bytes, int]:
    hex_id, _, copy = message_id.partition("-")
    return bytes.fromhex(hex_id), int(copy) if copy else 0


def return_path(message_id: str, recipient_index: int, domain: str, queue_secret: str) -> str:
    """`b+<token>@domain` naming copy `message_id` and the recipient index."""
    raw_id, copy = _split_id(message_id)
    payload = raw_id + copy.to_bytes(2, "big") + recipient_index.to_bytes(2, "big")
    tag = hmac.new(derived_key(queue_secret, b"return path v1"), payload,
                   hashlib.sha256).digest()[:TAG_LEN]
    token = base64.b32encode(payload + tag).decode().rstrip("=").lower()
    return f"b+{token}@{domain}"


def open_return_path(address: str, queue_secret: str) -> tuple[str, int] | None:
    """(message id, recipient index) of a VERP address, or None when it is
    not one or its tag does not verify."""
    local, _, _ = address.rpartition("@")
    if not local.lower().startswith("b+"):
        return None
    token = local[2:].upper()
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8))
    except ValueError:
        return None
    if len(raw) != 16 + 2 + 2 + TAG_LEN:
        return None
    payload, tag = raw[:20], raw[20:]
    want = hmac.new(derived_key(queue_secret, b"return path v1"), payload,
                    hashlib.sha256).digest()[:TAG_LEN]
    if not hmac.compare_digest(tag, want):
        return None
    copy = int.from_bytes(payload[16:18], "big")
    message_id = payload[:16].hex() + (f"-{copy}" if copy else "")
    return message_id, int.from_bytes(payload[18:20], "big")


def envelope_id(message_id: str, queue_secret: str) -> str:
    """The signed ENVID for `message_id`: `<id>.<16 hex digits>`."""
    tag = hmac.new(derived_key(queue_secret, b"envelope id v1"), message_id.encode(),
                   hashlib.sha256).digest()[:TAG_LEN]
    return f"{message_id}.{tag.hex()}"
