"""Schemathesis hooks: the rules of a send request that JSON Schema cannot
state, so the API contract fuzzer (tests/e2e/test_api_contract.py) does not
call a request valid that the API rightly refuses.

openapi.json states each of these in words; here they are code:
- to, cc and bcc name at most 50 recipients together;
- content_id values are unique within a message, and custom header names
  too, whatever their case;
- metadata is at most 4096 bytes as compact JSON;
- subject and header values are at most 998 octets of UTF-8, a filename
  255 and a tag value 256 (a schema's maxLength counts characters);
- a suppression add names each address and scope once (addresses compared
  without case), and an `expires_at` is after now.

Only requests generated as valid are filtered; invalid ones are left alone.
Must not: loosen the contract: a rule here must be one the document states.
"""
import json
import time

import schemathesis

MAX_RECIPIENTS = 50
MAX_METADATA_BYTES = 4096


def _octets(value) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def _count(recipients) -> int:
    if recipients is None:
        return 0
    return len(recipients) if isinstance(recipients, list) else 1


def _unique(names) -> bool:
    folded = [n.lower() for n in names if isinstance(n, str)]
    return len(folded) == len(set(folded))


def send_request_keeps_unstated_rules(body) -> bool:
    """Whether a send request that fits the schema also keeps the rules above."""
    if not isinstance(body, dict):
        return True
    if sum(_count(body.get(field)) for field in ("to", "cc", "bcc")) > MAX_RECIPIENTS:
        return False
    attachments = body.get("attachments") or []
    if not _unique(a.get("content_id") for a in attachments if isinstance(a, dict)):
        return False
    if any(_octets(a.get("filename")) > 255 for a in attachments if isinstance(a, dict)):
        return False
    headers = body.get("headers") or {}
    if not _unique(headers) or any(_octets(v) > 998 for v in headers.values()):
        return False
    if _octets(body.get("subject")) > 998:
        return False
    tags = body.get("tags") or []
    values = tags.values() if isinstance(tags, dict) else [t.get("value") for t in tags
                                                             if isinstance(t, dict)]
    if any(_octets(v) > 256 for v in values):
        return False
    metadata = body.get("metadata")
    if metadata is not None:
        compact = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
        if len(compact.encode()) > MAX_METADATA_BYTES:
            return False
    return True


def suppression_add_keeps_unstated_rules(body) -> bool:
    """Whether a suppression add that fits the schema also keeps the rules above."""
    entries = body.get("suppressions") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return True
    seen = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        address = entry.get("address")
        key = (address.strip().lower() if isinstance(address, str) else address,
               entry.get("scope", "all"))
        if key in seen:
            return False
        seen.add(key)
        expires_at = entry.get("expires_at")
        # A minute's margin for the time the request takes to arrive.
        if isinstance(expires_at, (int, float)) and expires_at <= time.time() + 60:
            return False
    return True


RULES = {
    "POST /v1/messages": send_request_keeps_unstated_rules,
    "POST /v1/suppressions": suppression_add_keeps_unstated_rules,
}


@schemathesis.hook
def filter_case(context, case) -> bool:
    meta = case.meta
    rule = RULES.get(case.operation.label)
    if rule is None or meta is None:
        return True
    if not meta.generation.mode.is_positive:
        return True
    return rule(case.body)
