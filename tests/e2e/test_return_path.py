"""The return path, as a real SMTP server receives it from the worker in
workerd: mail from a sender domain with a return-path domain
(RETURN_PATH_DOMAINS) goes out with a signed VERP MAIL FROM there, naming
the message and the recipient (or the whole transaction); the From header
and its DKIM signature are untouched, and the signature also covers the
complaint feedback loop fields (RFC 9477) that name the return-path domain
and the signed envelope id; mail from another domain keeps its own MAIL
FROM and has no such fields. The token is opened here from QUEUE_SECRET
alone."""
import email
import email.utils
import json

import dkim

from edgerelay_harness.keys import (SENDER_DOMAIN, api_key_entry, basic_message, dkim_dns,
                                    new_queue_secret)
from edgerelay_harness.poll import wait_for
from edgerelay_harness.return_path import WHOLE_MESSAGE, envelope_id, open_return_path

RETURN_PATH_DOMAIN = f"rp.{SENDER_DOMAIN}"
OTHER_DOMAIN = "example.org"


def received_for(server, message_id: str):
    """The message the server received whose Message-ID is the message's."""
    def find():
        for m in server.messages:
            header = email.message_from_bytes(m.data)["Message-ID"] or ""
            if header.strip("<>").split("@")[0] == message_id:
                return m
        return None
    return wait_for(find, what=f"message {message_id} at the upstream")


def test_mail_from_is_a_signed_return_path_only_for_a_domain_that_has_one(
        start_worker, upstream, api_key, dkim_ed25519):
    server = upstream().start()
    secret = new_queue_secret()
    worker = start_worker(
        server.url,
        API_KEYS=json.dumps([api_key_entry(api_key, "e2e", [SENDER_DOMAIN, OTHER_DOMAIN])]),
        UNSIGNED_DOMAINS=OTHER_DOMAIN,
        RETURN_PATH_DOMAINS=json.dumps({SENDER_DOMAIN: RETURN_PATH_DOMAIN}),
        QUEUE_SECRET=secret,
    )
    # (message, the recipient index its return path names, or None for a plain MAIL FROM)
    cases = [
        (basic_message(to="one@example.net"), 0),
        (basic_message(to=["one@example.net", "two@example.net"], cc="three@example.net"),
         WHOLE_MESSAGE),
        (basic_message(**{"from": f"Other <hello@{OTHER_DOMAIN}>"}, to="one@example.net"), None),
    ]
    for message, index in cases:
        s, accepted, _ = worker.send(message)
        assert s == 202, accepted
        message_id = accepted["id"]
        got = received_for(server, message_id)
        parsed = email.message_from_bytes(got.data)
        sender = email.utils.parseaddr(message["from"])[1]
        # The From header is the sender's, whatever the envelope says.
        assert email.utils.parseaddr(parsed["From"])[1] == sender
        assert parsed["Return-Path"] is None
        if index is None:
            assert got.mail_from == sender, got.mail_from
            assert parsed["CFBL-Address"] is None and parsed["CFBL-Feedback-ID"] is None
        else:
            local, _, domain = got.mail_from.rpartition("@")
            assert domain == RETURN_PATH_DOMAIN, got.mail_from
            assert local.startswith("b+") and len(local) <= 64, got.mail_from
            assert open_return_path(got.mail_from, secret) == (message_id, index)
            # Nobody without the secret could have written it.
            assert open_return_path(got.mail_from, new_queue_secret()) is None
            assert local.encode() not in got.data
            # Complaints go to the return-path domain and quote the signed
            # envelope id back.
            assert parsed.get_all("CFBL-Address") == [f"fbl@{RETURN_PATH_DOMAIN}; report=arf"]
            assert parsed.get_all("CFBL-Feedback-ID") == [envelope_id(message_id, secret)]
            # The signature over the From domain still verifies, and covers
            # both fields.
            assert dkim.verify(got.data, dnsfunc=dkim_dns(dkim_ed25519))
            signed = "".join(parsed["DKIM-Signature"].split()).split("h=")[1].split(";")[0]
            assert "cfbl-address:cfbl-address:cfbl-feedback-id:cfbl-feedback-id" in signed
            tampered = got.data.replace(envelope_id(message_id, secret).encode(),
                                        envelope_id(message_id, new_queue_secret()).encode())
            assert not dkim.verify(tampered, dnsfunc=dkim_dns(dkim_ed25519))
        # The stored row agrees with the job (delivery compares them), and
        # the message is delivered.
        record = wait_for(lambda: (r := worker.status(message_id))["status"] == "delivered" and r,
                          what=f"message {message_id} delivered")
        assert record["mail_from"] == got.mail_from, record
