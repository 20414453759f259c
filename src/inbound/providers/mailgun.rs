//! Mailgun's event webhooks: a JSON body with `signature` (`timestamp`,
//! `token`, `signature`: hex HMAC-SHA256 of timestamp and token under the
//! webhook signing key) and `event-data`. edgerelay's message id travels in
//! `user-variables` (set through `X-Mailgun-Variables`).
//!
//! Mailgun signs the timestamp and token, not the event: a captured
//! signature could carry other event data until it goes stale, so the edge
//! also refuses a token it has seen (kept for the freshness window), and an
//! event only counts for the message its id names, checked against the
//! stored message.
//! Owns: verifying and reading one request. Must not: trust an unverified
//! body.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::events::BounceClass;
use crate::queue::seal::decode_hex32;

use super::{MESSAGE_ID_FIELD, Provider, ProviderEvent, ProviderEventKind, Refused, fresh, quoted};

type HmacSha256 = Hmac<Sha256>;

/// Verifies `body` under any of `signing_keys` and reads its event.
pub fn verify_and_read(
    body: &[u8],
    signing_keys: &[String],
    now_seconds: u64,
) -> Result<ProviderEvent, Refused> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
    let signature = value.get("signature").ok_or(Refused::Unsigned)?;
    let field = |name: &str| signature.get(name).and_then(Value::as_str);
    let (Some(timestamp), Some(token), Some(claimed)) =
        (field("timestamp"), field("token"), field("signature"))
    else {
        return Err(Refused::Unsigned);
    };
    let claimed = decode_hex32(claimed).ok_or(Refused::BadSignature)?;
    let mut matched = subtle::Choice::from(0);
    for key in signing_keys {
        let Ok(mut mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
            continue;
        };
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        matched |= expected.ct_eq(&claimed);
    }
    if !bool::from(matched) {
        return Err(Refused::BadSignature);
    }
    let signed_at: u64 = timestamp
        .parse()
        .map_err(|_| Refused::Malformed("signature.timestamp is not a number".into()))?;
    fresh(signed_at, now_seconds)?;
    read(
        value
            .get("event-data")
            .ok_or_else(|| Refused::Malformed("no event-data".into()))?,
    )
}

/// The one-time token a request was signed with, as sent (the edge
/// refuses one it has seen: see the module doc). Read only after
/// [`verify_and_read`] accepted the request; `None` past 256 characters.
pub fn signed_token(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("signature")?
        .get("token")?
        .as_str()
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .map(str::to_string)
}

fn read(data: &Value) -> Result<ProviderEvent, Refused> {
    let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let event = text(data, "event").ok_or_else(|| Refused::Malformed("no event".into()))?;
    let recipient =
        text(data, "recipient").ok_or_else(|| Refused::Malformed("no recipient".into()))?;
    let status = data.get("delivery-status");
    let reply = status.and_then(|s| {
        let code = s.get("code").and_then(Value::as_u64)?;
        let message = s
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .or_else(|| s.get("description").and_then(Value::as_str))
            .unwrap_or_default();
        Some(quoted(
            u16::try_from(code).ok()?,
            s.get("enhanced-code").and_then(Value::as_str),
            message,
        ))
    });
    let kind = match event.as_str() {
        "delivered" => ProviderEventKind::Delivered,
        "failed" => match data.get("severity").and_then(Value::as_str) {
            Some("temporary") => ProviderEventKind::Delayed,
            _ => {
                let class = match &reply {
                    Some(r) => BounceClass::of(r.code.max(500), r.enhanced.as_deref(), &r.text),
                    None => BounceClass::Soft,
                };
                ProviderEventKind::Bounced { class }
            }
        },
        "complained" => ProviderEventKind::Complained,
        other => ProviderEventKind::Other(other.to_string()),
    };
    Ok(ProviderEvent {
        provider: Provider::Mailgun,
        kind,
        message_id: data
            .get("user-variables")
            .and_then(|v| v.get(MESSAGE_ID_FIELD))
            .and_then(Value::as_str)
            .map(str::to_string),
        recipient,
        provider_id: text(data, "id"),
        at_ms: data
            .get("timestamp")
            .and_then(Value::as_f64)
            .filter(|t| *t > 0.0)
            .map(|t| (t * 1000.0) as u64),
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "key-test-signing-0123456789";
    const NOW: u64 = 1_796_850_000;

    /// A body in Mailgun's documented webhook format, signed with `key`.
    fn signed(event_data: Value, key: &str, timestamp: u64) -> Vec<u8> {
        let token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
        let mut mac = HmacSha256::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        json!({
            "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
            "event-data": event_data,
        })
        .to_string()
        .into_bytes()
    }

    fn failed(severity: &str, code: u64, message: &str) -> Value {
        json!({
            "event": "failed", "severity": severity, "reason": "bounce",
            "id": "G9Bn5sl1TC6nu79C8C0bwg", "timestamp": 1_796_849_990.5,
            "recipient": "alice@example.net",
            "user-variables": {"edgerelay_id": "4f3c9a0b1d2e3f405162738495a6b7c8"},
            "delivery-status": {"code": code, "message": message, "description": ""},
        })
    }

    #[test]
    fn events_table() {
        let table: &[(Value, ProviderEventKind)] = &[
            (
                failed(
                    "permanent",
                    550,
                    "5.1.1 The email account that you tried to reach does not exist.",
                ),
                ProviderEventKind::Bounced {
                    class: BounceClass::Hard,
                },
            ),
            (
                failed("permanent", 550, "5.7.1 Message rejected due to content"),
                ProviderEventKind::Bounced {
                    class: BounceClass::Soft,
                },
            ),
            (
                failed("temporary", 452, "4.2.2 Mailbox full"),
                ProviderEventKind::Delayed,
            ),
            (
                json!({"event": "delivered", "recipient": "alice@example.net", "id": "x",
                       "user-variables": {"edgerelay_id": "4f3c9a0b1d2e3f405162738495a6b7c8"},
                       "delivery-status": {"code": 250, "message": "OK"}}),
                ProviderEventKind::Delivered,
            ),
            (
                json!({"event": "complained", "recipient": "alice@example.net"}),
                ProviderEventKind::Complained,
            ),
            (
                json!({"event": "opened", "recipient": "alice@example.net"}),
                ProviderEventKind::Other("opened".into()),
            ),
        ];
        for (data, kind) in table {
            let got = verify_and_read(&signed(data.clone(), KEY, NOW), &[KEY.into()], NOW).unwrap();
            assert_eq!(&got.kind, kind, "{data}");
            assert_eq!(got.recipient, "alice@example.net");
            assert_eq!(got.provider, Provider::Mailgun);
        }
        let got = verify_and_read(
            &signed(failed("permanent", 550, "5.1.1 gone"), KEY, NOW),
            &["old-key".into(), KEY.into()],
            NOW,
        )
        .unwrap();
        assert_eq!(
            got.message_id.as_deref(),
            Some("4f3c9a0b1d2e3f405162738495a6b7c8")
        );
        assert_eq!(got.at_ms, Some(1_796_849_990_500));
        assert_eq!(got.reply.unwrap().enhanced.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn refusals() {
        let good = signed(failed("permanent", 550, "5.1.1"), KEY, NOW);
        assert_eq!(
            verify_and_read(&good, &["another-key".into()], NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify_and_read(&good, &[KEY.into()], NOW + 3600),
            Err(Refused::Stale)
        );
        // A token that is not the one signed.
        let mut tampered: Value = serde_json::from_slice(&good).unwrap();
        tampered["signature"]["token"] = json!("another-token");
        assert_eq!(
            verify_and_read(tampered.to_string().as_bytes(), &[KEY.into()], NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify_and_read(br#"{"event-data": {}}"#, &[KEY.into()], NOW),
            Err(Refused::Unsigned)
        );
        assert!(matches!(
            verify_and_read(b"not json", &[KEY.into()], NOW),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn the_signed_token_is_read_back() {
        let good = signed(failed("permanent", 550, "5.1.1"), KEY, NOW);
        assert_eq!(
            signed_token(&good).as_deref(),
            Some("a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0")
        );
        let long = json!({"signature": {"token": "t".repeat(257)}}).to_string();
        assert_eq!(signed_token(long.as_bytes()), None);
        assert_eq!(signed_token(b"[]"), None);
    }
}
