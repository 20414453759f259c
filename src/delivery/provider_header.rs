//! The header a smarthost provider carries from a message into its own
//! events, so that each event names edgerelay's message: SendGrid's
//! `X-SMTPAPI` unique argument, Mailgun's `X-Mailgun-Variables`, Postmark's
//! `X-PM-Metadata-edgerelay_id`, SES's `X-SES-MESSAGE-TAGS`.
//!
//! The header goes in front of the signed message, for the one upstream
//! that is that provider, at the time of delivery: it is not in the DKIM
//! signature's `h=`, so the signature still verifies, and another upstream
//! never sees it. The provider strips it (it is an instruction to the
//! provider, not part of the mail). Only a message id of edgerelay's form
//! (letters, digits, `_`, `-`) is written, so nothing can be injected into
//! the header.
//! Owns: which header, its exact bytes, and the stamped message. Must not:
//! perform I/O, or change the message's own bytes.

use crate::inbound::providers::{MESSAGE_ID_FIELD, Provider};

/// The longest message id written into a header.
const MAX_ID_LEN: usize = 64;

fn safe_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The header line (with its CRLF) that names `message_id` to `provider`;
/// `None` when the id is not of edgerelay's form.
pub fn header(provider: Provider, message_id: &str) -> Option<String> {
    if !safe_id(message_id) {
        return None;
    }
    let field = MESSAGE_ID_FIELD;
    Some(match provider {
        Provider::SendGrid => {
            format!("X-SMTPAPI: {{\"unique_args\": {{\"{field}\": \"{message_id}\"}}}}\r\n")
        }
        Provider::Mailgun => format!("X-Mailgun-Variables: {{\"{field}\": \"{message_id}\"}}\r\n"),
        Provider::Postmark => format!("X-PM-Metadata-{field}: {message_id}\r\n"),
        Provider::Ses => format!("X-SES-MESSAGE-TAGS: {field}={message_id}\r\n"),
    })
}

/// The message as it goes to `provider`: its header, then the message as
/// signed. `None` when nothing is added (no provider, or an id that cannot
/// be written), and the message goes as it is.
pub fn stamped(provider: Option<Provider>, message_id: &str, message: &[u8]) -> Option<Vec<u8>> {
    let line = header(provider?, message_id)?;
    let mut out = Vec::with_capacity(line.len() + message.len());
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(message);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8";

    #[test]
    fn each_provider_gets_its_header() {
        let table = [
            (
                Provider::SendGrid,
                "X-SMTPAPI: {\"unique_args\": {\"edgerelay_id\": \"4f3c9a0b1d2e3f405162738495a6b7c8\"}}\r\n",
            ),
            (
                Provider::Mailgun,
                "X-Mailgun-Variables: {\"edgerelay_id\": \"4f3c9a0b1d2e3f405162738495a6b7c8\"}\r\n",
            ),
            (
                Provider::Postmark,
                "X-PM-Metadata-edgerelay_id: 4f3c9a0b1d2e3f405162738495a6b7c8\r\n",
            ),
            (
                Provider::Ses,
                "X-SES-MESSAGE-TAGS: edgerelay_id=4f3c9a0b1d2e3f405162738495a6b7c8\r\n",
            ),
        ];
        for (provider, want) in table {
            assert_eq!(header(provider, ID).as_deref(), Some(want), "{provider:?}");
            // The JSON ones are JSON whose field is the id.
            let value = want.split_once(": ").unwrap().1.trim_end();
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(value) {
                let id = json
                    .get("unique_args")
                    .unwrap_or(&json)
                    .get(MESSAGE_ID_FIELD)
                    .and_then(|v| v.as_str());
                assert_eq!(id, Some(ID), "{provider:?}");
            }
        }
    }

    #[test]
    fn nothing_but_an_id_of_our_form_is_written() {
        for id in [
            "",
            "a\r\nBcc: victim@example.net",
            "a\"}, \"x\": \"y",
            "a b",
            "a=b,c=d",
            &"a".repeat(65),
            "é",
        ] {
            for p in [
                Provider::SendGrid,
                Provider::Mailgun,
                Provider::Postmark,
                Provider::Ses,
            ] {
                assert_eq!(header(p, id), None, "{p:?} {id:?}");
            }
        }
    }

    #[test]
    fn the_header_goes_before_the_message_as_signed() {
        let message = b"DKIM-Signature: v=1; h=from:to\r\nFrom: a@example.com\r\n\r\nbody\r\n";
        let out = stamped(Some(Provider::Postmark), ID, message).unwrap();
        assert!(out.starts_with(b"X-PM-Metadata-edgerelay_id: "));
        assert!(out.ends_with(message));
        assert_eq!(stamped(None, ID, message), None);
        assert_eq!(stamped(Some(Provider::Ses), "bad id", message), None);
    }
}
