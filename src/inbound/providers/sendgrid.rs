//! SendGrid's Event Webhook: a JSON list of events, signed with ECDSA P-256
//! over the timestamp and the raw body (`X-Twilio-Email-Event-Webhook-
//! Signature`, base64 DER; `X-Twilio-Email-Event-Webhook-Timestamp`),
//! verified with the account's public verification key (base64 DER). edgerelay's
//! message id travels as a unique argument (set through `X-SMTPAPI`), which
//! SendGrid repeats as a top-level field of each event.
//!
//! Owns: verifying and reading one request. Must not: trust an unverified
//! body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use crate::events::BounceClass;

use super::{
    MESSAGE_ID_FIELD, Provider, ProviderEvent, ProviderEventKind, QuotedReply, Refused, fresh,
    quoted,
};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// A verification key as SendGrid shows it (base64 of the DER public key).
pub fn parse_key(base64_der: &str) -> Result<VerifyingKey, String> {
    let der = STANDARD
        .decode(base64_der.trim())
        .map_err(|_| "the verification key is not base64".to_string())?;
    VerifyingKey::from_public_key_der(&der)
        .map_err(|_| "the verification key is not a P-256 public key".to_string())
}

/// Verifies the request under any of `keys` and reads its events.
pub fn verify_and_read(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    keys: &[VerifyingKey],
    now_seconds: u64,
) -> Result<Vec<ProviderEvent>, Refused> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refused::Unsigned);
    };
    let der = STANDARD
        .decode(signature.trim())
        .map_err(|_| Refused::BadSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| Refused::BadSignature)?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    if !keys.iter().any(|k| k.verify(&signed, &signature).is_ok()) {
        return Err(Refused::BadSignature);
    }
    let signed_at: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refused::Malformed("the timestamp is not a number".into()))?;
    fresh(signed_at, now_seconds)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
    let events = value
        .as_array()
        .ok_or_else(|| Refused::Malformed("not a list of events".into()))?;
    events.iter().map(read).collect()
}

/// The reply a `reason` or `response` quotes: `550 5.1.1 no such user`.
fn reply_of(text: &str, status: Option<&str>) -> Option<QuotedReply> {
    let (code, rest) = text.trim().split_once(' ').unwrap_or((text, ""));
    let code: u16 = code.parse().ok().filter(|c| (200..600).contains(c))?;
    Some(quoted(code, status, rest))
}

fn read(v: &Value) -> Result<ProviderEvent, Refused> {
    let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let event = text("event").ok_or_else(|| Refused::Malformed("an event without event".into()))?;
    let recipient =
        text("email").ok_or_else(|| Refused::Malformed("an event without email".into()))?;
    let status = text("status");
    let reply = text("reason")
        .or_else(|| text("response"))
        .and_then(|r| reply_of(&r, status.as_deref()));
    let kind = match event.as_str() {
        "delivered" => ProviderEventKind::Delivered,
        "deferred" => ProviderEventKind::Delayed,
        "spamreport" => ProviderEventKind::Complained,
        "bounce" => {
            let class = if text("type").as_deref() == Some("blocked") {
                BounceClass::Soft
            } else if text("bounce_classification").as_deref() == Some("Invalid Address") {
                BounceClass::Hard
            } else {
                match &reply {
                    Some(r) => BounceClass::of(r.code.max(500), r.enhanced.as_deref(), &r.text),
                    None => BounceClass::Soft,
                }
            };
            ProviderEventKind::Bounced { class }
        }
        other => ProviderEventKind::Other(other.to_string()),
    };
    Ok(ProviderEvent {
        provider: Provider::SendGrid,
        kind,
        message_id: text(MESSAGE_ID_FIELD),
        recipient,
        provider_id: text("sg_message_id").or_else(|| text("sg_event_id")),
        at_ms: v.get("timestamp").and_then(Value::as_u64).map(|t| t * 1000),
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use serde_json::json;

    const NOW: u64 = 1_796_850_000;

    /// A key pair; the public half as SendGrid shows it: base64 of the
    /// DER SubjectPublicKeyInfo (the fixed P-256 prefix, then the point).
    fn keypair(seed: u8) -> (SigningKey, String) {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let point = signing.verifying_key().to_encoded_point(false);
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(point.as_bytes());
        (signing, STANDARD.encode(der))
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature: Signature = key.sign(&signed);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// SendGrid's documented sample events, with our unique argument.
    fn events() -> Value {
        let id = "4f3c9a0b1d2e3f405162738495a6b7c8";
        json!([
            {"email": "a@example.net", "timestamp": 1_796_849_990u64, "event": "bounce", "type": "bounce",
             "reason": "550 5.1.1 The email account that you tried to reach does not exist", "status": "5.1.1",
             "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001",
             "edgerelay_id": id},
            {"email": "b@example.net", "timestamp": 1_796_849_990u64, "event": "bounce", "type": "blocked",
             "reason": "550 5.7.1 blocked by policy", "status": "5.7.1", "edgerelay_id": id},
            {"email": "c@example.net", "timestamp": 1_796_849_990u64, "event": "deferred",
             "response": "400 try again later", "attempt": "5", "edgerelay_id": id},
            {"email": "d@example.net", "timestamp": 1_796_849_990u64, "event": "delivered",
             "response": "250 OK", "edgerelay_id": id},
            {"email": "e@example.net", "timestamp": 1_796_849_990u64, "event": "spamreport", "edgerelay_id": id},
            {"email": "f@example.net", "timestamp": 1_796_849_990u64, "event": "open", "edgerelay_id": id},
        ])
    }

    #[test]
    fn a_signed_batch_reads_whole() {
        let (signing, public) = keypair(7);
        let keys = vec![parse_key(&public).unwrap()];
        let body = events().to_string().into_bytes();
        let ts = NOW.to_string();
        let got = verify_and_read(
            Some(&sign(&signing, &ts, &body)),
            Some(&ts),
            &body,
            &keys,
            NOW,
        )
        .unwrap();
        let kinds: Vec<ProviderEventKind> = got.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ProviderEventKind::Bounced {
                    class: BounceClass::Hard
                },
                ProviderEventKind::Bounced {
                    class: BounceClass::Soft
                },
                ProviderEventKind::Delayed,
                ProviderEventKind::Delivered,
                ProviderEventKind::Complained,
                ProviderEventKind::Other("open".into()),
            ]
        );
        assert!(
            got.iter()
                .all(|e| e.message_id.as_deref() == Some("4f3c9a0b1d2e3f405162738495a6b7c8"))
        );
        assert_eq!(
            got[0].reply.as_ref().unwrap().enhanced.as_deref(),
            Some("5.1.1")
        );
        assert_eq!(got[0].at_ms, Some(1_796_849_990_000));
    }

    #[test]
    fn refusals() {
        let (signing, public) = keypair(7);
        let (other, _) = keypair(9);
        let keys = vec![parse_key(&public).unwrap()];
        let body = events().to_string().into_bytes();
        let ts = NOW.to_string();
        let good = sign(&signing, &ts, &body);
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        // (signature, timestamp, body, now, refusal)
        type Row = (Option<String>, Option<String>, Vec<u8>, u64, Refused);
        let table: Vec<Row> = vec![
            (None, Some(ts.clone()), body.clone(), NOW, Refused::Unsigned),
            (
                Some(good.clone()),
                None,
                body.clone(),
                NOW,
                Refused::Unsigned,
            ),
            (
                Some(good.clone()),
                Some(ts.clone()),
                tampered,
                NOW,
                Refused::BadSignature,
            ),
            (
                Some(sign(&other, &ts, &body)),
                Some(ts.clone()),
                body.clone(),
                NOW,
                Refused::BadSignature,
            ),
            (
                Some("not base64!".into()),
                Some(ts.clone()),
                body.clone(),
                NOW,
                Refused::BadSignature,
            ),
            (
                Some(good.clone()),
                Some((NOW + 1).to_string()),
                body.clone(),
                NOW,
                Refused::BadSignature,
            ),
            (Some(good), Some(ts), body, NOW + 3600, Refused::Stale),
        ];
        for (signature, timestamp, body, now, want) in table {
            assert_eq!(
                verify_and_read(
                    signature.as_deref(),
                    timestamp.as_deref(),
                    &body,
                    &keys,
                    now
                ),
                Err(want.clone()),
                "{want:?}"
            );
        }
        assert!(parse_key("AAAA").is_err());
    }
}
