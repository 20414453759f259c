//! Standard Webhooks signing: the endpoint secret (`whsec_` + base64), the
//! signature (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`) and the
//! headers a delivery carries, under both the `webhook-*` names of the
//! Standard Webhooks spec and the `svix-*` names Resend's consumers read.
//!
//! During a rotation every secret still in force signs, so the signature
//! header lists several `v1,` signatures separated by spaces, and a receiver
//! holding either secret verifies the delivery.
//! Must not: read the clock or draw randomness (the timestamp and the secret's
//! random bytes are inputs), or ever put a secret into an error or a log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every endpoint secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// How many random bytes a new secret carries (the spec asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret: the bytes behind `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// A stored secret that is not `whsec_` followed by base64 of 24 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedSecret;

impl SigningSecret {
    /// A new secret from random bytes the caller drew.
    pub fn from_random(bytes: [u8; SECRET_BYTES]) -> Self {
        SigningSecret(bytes.to_vec())
    }

    /// Reads a `whsec_...` secret as stored (and as shown to the user once).
    pub fn parse(text: &str) -> Result<Self, MalformedSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(MalformedSecret)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| MalformedSecret)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(MalformedSecret);
        }
        Ok(SigningSecret(bytes))
    }

    /// The secret as the user sees it: `whsec_` + base64.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `v1,<base64>` signature of one delivery.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The signature header's value: one `v1,` signature per secret in force,
/// the current one first, separated by spaces.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every header of a signed delivery, in the order they are sent. `id` is
/// the event's id: the same on every attempt, so receivers can deduplicate;
/// `timestamp` is the attempt's time (Unix seconds), signed afresh each time.
pub fn headers(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let signature = signature_header(secrets, id, timestamp, body);
    let timestamp = timestamp.to_string();
    vec![
        ("content-type", "application/json".to_string()),
        ("user-agent", "edgerelay-webhooks/1".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.clone()),
        ("webhook-signature", signature.clone()),
        ("svix-id", id.to_string()),
        ("svix-timestamp", timestamp),
        ("svix-signature", signature),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of Svix's docs).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: u64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_example() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        let base = secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes());
        let other = SigningSecret::from_random([7; SECRET_BYTES]);
        let variants = [
            (
                "id",
                secret.sign("msg_other", SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            ),
            (
                "timestamp",
                secret.sign(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY.as_bytes()),
            ),
            (
                "body",
                secret.sign(SPEC_ID, SPEC_TIMESTAMP, br#"{"test": 2432232315}"#),
            ),
            (
                "secret",
                other.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            ),
        ];
        for (what, signature) in variants {
            assert_ne!(signature, base, "{what}");
            assert!(signature.starts_with("v1,"), "{what}");
        }
    }

    #[test]
    fn secrets_round_trip_and_malformed_ones_are_refused() {
        let secret = SigningSecret::from_random([42; SECRET_BYTES]);
        let shown = secret.reveal();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&shown), Ok(secret.clone()));
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
            "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert_eq!(SigningSecret::parse(bad), Err(MalformedSecret), "{bad:?}");
        }
        // The secret never shows in debug output.
        assert_eq!(format!("{secret:?}"), "SigningSecret(..)");
    }

    #[test]
    fn a_rotation_signs_with_every_secret_in_force() {
        let new = SigningSecret::from_random([1; SECRET_BYTES]);
        let old = SigningSecret::from_random([2; SECRET_BYTES]);
        let header = signature_header(&[new.clone(), old.clone()], "evt_1", 5, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [new.sign("evt_1", 5, b"{}"), old.sign("evt_1", 5, b"{}")]
        );
    }

    #[test]
    fn headers_carry_both_names() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        let headers = headers(&[secret], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes());
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        for prefix in ["webhook", "svix"] {
            assert_eq!(get(&format!("{prefix}-id")), SPEC_ID);
            assert_eq!(get(&format!("{prefix}-timestamp")), "1614265330");
            assert_eq!(get(&format!("{prefix}-signature")), SPEC_SIGNATURE);
        }
        assert_eq!(get("content-type"), "application/json");
    }
}
