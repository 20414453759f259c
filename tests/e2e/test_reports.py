"""Mail that comes back, through the worker's email handler in workerd
(wrangler dev's local trigger, as Email Routing delivers it): what cannot be
trusted changes nothing and is kept, visible in /v1/inbound-reports, and mail
that is not a report is refused, all with bounded reads."""
import json

import pytest

from edgerelay_harness.keys import SENDER_DOMAIN, api_key_entry, basic_message, new_api_key
from edgerelay_harness.paths import ROOT
from edgerelay_harness.poll import wait_for

FIXTURES = ROOT / "tests" / "fixtures" / "reports"
RETURN_PATH_DOMAIN = f"rp.{SENDER_DOMAIN}"
RETURN_PATHS = json.dumps({SENDER_DOMAIN: RETURN_PATH_DOMAIN})
MAILER_DAEMON = "MAILER-DAEMON@mx.example.net"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def reports(worker, key=None, **query) -> list[dict]:
    path = "/v1/inbound-reports"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    headers = {"Authorization": f"Bearer {key or worker.api_key}"}
    s, body, _ = worker.request("GET", path, headers=headers)
    assert s == 200, body
    return body["data"]


@pytest.fixture
def worker(start_worker, upstream):
    up = upstream()
    return start_worker(up.url, RETURN_PATH_DOMAINS=RETURN_PATHS)


def test_a_forged_bounce_changes_nothing_and_is_kept(worker):
    # The report names the message by a return path nobody signed (and by
    # its bare id), so it is kept as unmatched, raw bytes and all.
    raw = fixture("postfix-unknown-user.eml")
    s, answer, _ = worker.email(raw, MAILER_DAEMON, f"b+tok@{RETURN_PATH_DOMAIN}")
    assert s == 200 and answer["outcome"] == "ok", answer
    assert answer.get("rejectReason") is None, answer
    [record] = reports(worker)
    assert record["verdict"] == "unmatched", record
    assert record["kind"] == "dsn" and record["source"] == "email"
    assert "not trusted" in record["reason"], record
    assert record["domain"] == SENDER_DOMAIN
    assert record["events"] == [] and record["raw_kept"] is True
    s, kept, headers = worker.request(
        "GET", f"/v1/inbound-reports/{record['id']}/raw", headers=worker.auth)
    assert s == 200 and headers["Content-Type"] == "message/rfc822"
    assert kept.encode() == raw
    # A key of another tenant, sending as another domain, does not see it.
    other = new_api_key()
    s, body, _ = worker.request("GET", f"/v1/inbound-reports/{record['id']}",
                                headers={"Authorization": f"Bearer {other}"})
    assert s == 401, body  # not a key of this worker at all


def test_mail_that_is_not_a_report_is_refused_and_recorded(worker):
    # Email Routing hands over only mail with a Message-ID.
    raw = b"Message-ID: <away@example.net>\r\n" + fixture("auto-reply.eml")
    s, answer, _ = worker.email(raw, "someone@example.net", f"b+tok@{RETURN_PATH_DOMAIN}")
    assert isinstance(answer, dict), (s, answer)
    assert "reports only" in answer["rejectReason"], answer
    [record] = reports(worker)
    assert (record["kind"], record["verdict"]) == ("other", "rejected"), record
    assert record["raw_kept"] is False


def test_an_oversized_report_is_refused_unread(worker):
    raw = fixture("postfix-unknown-user.eml")
    huge = raw.replace(b"\r\n\r\n", b"\r\nX-Padding: " + b"x" * 998 + b"\r\n\r\n", 1)
    padding = b"\r\n".join([b"y" * 998] * 1100)
    huge = huge + padding + b"\r\n"
    assert len(huge) > 1024 * 1024
    s, answer, _ = worker.email(huge, MAILER_DAEMON, f"b+tok@{RETURN_PATH_DOMAIN}")
    assert "not read" in (answer.get("rejectReason") or ""), answer
    [record] = reports(worker)
    assert (record["kind"], record["verdict"]) == ("unreadable", "rejected"), record
    assert record["size"] == len(huge) and record["raw_kept"] is False


def test_a_malformed_report_is_kept_unread(worker):
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\n"
        b"To: b+tok@rp.example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <malformed@mx.example.net>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"\x00\x01 not fields at all\r\n--b--\r\n"
    )
    s, answer, _ = worker.email(raw, MAILER_DAEMON, f"b+tok@{RETURN_PATH_DOMAIN}")
    [record] = reports(worker)
    assert record["verdict"] == "unreadable", (record, answer)
    assert record["raw_kept"] is True
    assert "malformed report" in answer["rejectReason"], answer
