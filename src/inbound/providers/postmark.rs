//! Postmark's webhooks: one JSON event per request (`RecordType` Delivery,
//! Bounce, SpamComplaint, ...), authenticated with HTTP basic auth in the
//! webhook URL (over https). edgerelay's message id travels in `Metadata`
//! (set through `X-PM-Metadata-edgerelay_id`).
//!
//! Owns: checking the credentials (constant time, against their SHA-256)
//! and reading the event. Must not: trust an unauthenticated body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::events::BounceClass;

use super::{MESSAGE_ID_FIELD, Provider, ProviderEvent, ProviderEventKind, Refused, quoted};

/// Checks `Authorization: Basic ...` against the SHA-256 digests of the
/// configured `user:password` pairs (every one compared), then reads the
/// event.
pub fn verify_and_read(
    authorization: Option<&str>,
    body: &[u8],
    credential_digests: &[[u8; 32]],
) -> Result<ProviderEvent, Refused> {
    let header = authorization.ok_or(Refused::Unsigned)?;
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(Refused::Unsigned)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refused::Unsigned);
    }
    let presented = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Refused::BadSignature)?;
    let digest: [u8; 32] = Sha256::digest(&presented).into();
    let mut matched = subtle::Choice::from(0);
    for expected in credential_digests {
        matched |= expected.ct_eq(&digest);
    }
    if !bool::from(matched) {
        return Err(Refused::BadSignature);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
    read(&value)
}

/// SHA-256 of `user:password`, the form the setting keeps.
pub fn credential_digest(user: &str, password: &str) -> [u8; 32] {
    Sha256::digest(format!("{user}:{password}").as_bytes()).into()
}

fn read(v: &Value) -> Result<ProviderEvent, Refused> {
    let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let record = text("RecordType").ok_or_else(|| Refused::Malformed("no RecordType".into()))?;
    let recipient = text("Recipient")
        .or_else(|| text("Email"))
        .ok_or_else(|| Refused::Malformed("no Recipient or Email".into()))?;
    let details = text("Details").unwrap_or_default();
    let kind = match record.as_str() {
        "Delivery" => ProviderEventKind::Delivered,
        "SpamComplaint" => ProviderEventKind::Complained,
        "Bounce" => match text("Type").as_deref() {
            Some("HardBounce" | "BadEmailAddress") => ProviderEventKind::Bounced {
                class: BounceClass::Hard,
            },
            Some("Transient") => ProviderEventKind::Delayed,
            Some("SpamComplaint") => ProviderEventKind::Complained,
            Some(
                "SoftBounce" | "DnsError" | "Blocked" | "DMARCPolicy" | "SpamNotification"
                | "VirusNotification" | "SMTPApiError" | "Unknown",
            ) => ProviderEventKind::Bounced {
                class: BounceClass::Soft,
            },
            Some(other) => ProviderEventKind::Other(format!("bounce:{other}")),
            None => return Err(Refused::Malformed("a Bounce without Type".into())),
        },
        other => ProviderEventKind::Other(other.to_string()),
    };
    let reply = match &kind {
        ProviderEventKind::Bounced { class } => Some(quoted(
            if *class == BounceClass::Hard {
                550
            } else {
                554
            },
            None,
            &details,
        )),
        _ => None,
    };
    Ok(ProviderEvent {
        provider: Provider::Postmark,
        kind,
        message_id: v
            .get("Metadata")
            .and_then(|m| m.get(MESSAGE_ID_FIELD))
            .and_then(Value::as_str)
            .map(str::to_string),
        recipient,
        provider_id: text("MessageID"),
        at_ms: None,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn auth(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    fn creds() -> Vec<[u8; 32]> {
        vec![credential_digest("postmark", "s3cret-webhook-password")]
    }

    /// Postmark's documented example payloads, with our metadata.
    fn bounce(kind: &str) -> Value {
        json!({"RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807u64,
               "Type": kind, "TypeCode": 1, "Name": "Hard bounce", "Tag": "Test",
               "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
               "Metadata": {"edgerelay_id": "4f3c9a0b1d2e3f405162738495a6b7c8"},
               "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
               "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
               "Email": "john@example.com", "From": "sender@example.com",
               "BouncedAt": "2019-11-05T16:33:54.9070259Z", "Inactive": true})
    }

    #[test]
    fn events_table() {
        let table: &[(Value, ProviderEventKind)] = &[
            (
                bounce("HardBounce"),
                ProviderEventKind::Bounced {
                    class: BounceClass::Hard,
                },
            ),
            (
                bounce("SoftBounce"),
                ProviderEventKind::Bounced {
                    class: BounceClass::Soft,
                },
            ),
            (bounce("Transient"), ProviderEventKind::Delayed),
            (
                bounce("AutoResponder"),
                ProviderEventKind::Other("bounce:AutoResponder".into()),
            ),
            (
                json!({"RecordType": "Delivery", "MessageID": "883953f4", "Recipient": "john@example.com",
                       "DeliveredAt": "2019-11-05T16:33:54.9070259Z", "Details": "Test delivery webhook details",
                       "Metadata": {"edgerelay_id": "4f3c9a0b1d2e3f405162738495a6b7c8"}}),
                ProviderEventKind::Delivered,
            ),
            (
                json!({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 100001,
                       "MessageID": "883953f4", "Email": "john@example.com"}),
                ProviderEventKind::Complained,
            ),
        ];
        for (body, kind) in table {
            let got = verify_and_read(
                Some(&auth("postmark", "s3cret-webhook-password")),
                body.to_string().as_bytes(),
                &creds(),
            )
            .unwrap();
            assert_eq!(&got.kind, kind, "{body}");
            assert_eq!(got.recipient, "john@example.com");
        }
        let got = verify_and_read(
            Some(&auth("postmark", "s3cret-webhook-password")),
            bounce("HardBounce").to_string().as_bytes(),
            &creds(),
        )
        .unwrap();
        assert_eq!(
            got.message_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8")
        );
        assert_eq!(
            got.provider_id.as_deref(),
            Some("883953f4-6105-42a2-a16a-77a8eac79483")
        );
    }

    #[test]
    fn refusals() {
        let body = bounce("HardBounce").to_string();
        for (header, want) in [
            (None, Refused::Unsigned),
            (Some("Bearer x".to_string()), Refused::Unsigned),
            (Some(auth("postmark", "wrong")), Refused::BadSignature),
            (Some("Basic !!!".to_string()), Refused::BadSignature),
        ] {
            assert_eq!(
                verify_and_read(header.as_deref(), body.as_bytes(), &creds()),
                Err(want),
                "{header:?}"
            );
        }
    }
}
