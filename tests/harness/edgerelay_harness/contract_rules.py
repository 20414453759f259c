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
- a stream other than transactional and marketing must be one of the key's
  named streams (the test key has none); a topic needs a one-click
  unsubscribe, and the transactional stream needs a topic for one; a
  marketing stream cannot turn it off; `{{unsubscribe_url}}` needs one, and
  List-Unsubscribe(-Post) cannot be set beside one; immediate delivery takes
  one copy, so not a one-click message to several recipients.
- `tracking.consent` lists recipients of the message only, and is not given
  (other than false) with mode `aggregate`; immediate delivery takes one
  copy, so not consent for one recipient among several.

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


def _keeps_stream_rules(body, immediate: bool) -> bool:
    stream = body.get("stream")
    if stream not in (None, "transactional", "marketing"):
        return False
    asked = body.get("unsubscribe")
    if stream == "marketing" and asked is False:
        return False
    one_click = stream == "marketing" or asked is True
    topic = body.get("topic")
    if topic is not None and not one_click:
        return False
    if one_click and stream in (None, "transactional") and topic is None:
        return False
    bodies = [body.get(field) for field in ("text", "html")]
    if not one_click and any(isinstance(b, str) and "{{unsubscribe_url}}" in b for b in bodies):
        return False
    headers = body.get("headers") or {}
    if one_click and any(str(name).lower() in ("list-unsubscribe", "list-unsubscribe-post")
                         for name in headers):
        return False
    recipients = sum(_count(body.get(field)) for field in ("to", "cc", "bcc"))
    return not (one_click and immediate and recipients > 1)


def _addresses(recipients) -> list[str]:
    items = recipients if isinstance(recipients, list) else [recipients]
    found = []
    for item in items:
        text = item.get("email") if isinstance(item, dict) else item
        if isinstance(text, str):
            found.append(text.rsplit("<", 1)[-1].strip(" \t>").lower())
    return found


def _keeps_tracking_rules(body, immediate: bool) -> bool:
    tracking = body.get("tracking")
    if not isinstance(tracking, dict):
        return True
    consent = tracking.get("consent")
    if tracking.get("mode") == "aggregate" and consent not in (None, False):
        return False
    recipients = [a for field in ("to", "cc", "bcc") if body.get(field) is not None
                  for a in _addresses(body.get(field))]
    if isinstance(consent, list):
        if any(not isinstance(a, str) or a.strip().lower() not in recipients for a in consent):
            return False
    tracked = tracking.get("opens") is True or tracking.get("clicks") is True
    consenting = consent is True or (isinstance(consent, list) and consent)
    return not (immediate and tracked and consenting and len(set(recipients)) > 1)


def send_request_keeps_unstated_rules(body, immediate: bool = False) -> bool:
    """Whether a send request that fits the schema also keeps the rules above."""
    if not isinstance(body, dict):
        return True
    if not _keeps_stream_rules(body, immediate):
        return False
    if not _keeps_tracking_rules(body, immediate):
        return False
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
    if case.operation.label == "POST /v1/messages":
        immediate = (case.query or {}).get("delivery") == "immediate"
        return rule(case.body, immediate)
    return rule(case.body)
