//! Seals on the queue bodies edgerelay writes for itself: delivery jobs and
//! dead letters. Any Worker of the account can bind a queue and send to it,
//! so a body is edgerelay's own only if it carries a seal that only
//! edgerelay can make: an HMAC-SHA256 under the `QUEUE_SECRET` setting.
//!
//! The seal covers the exact bytes of the job's (or dead letter's) JSON
//! text, which travels as a JSON string beside its seal, never a
//! re-serialisation: a later build that adds a field to the job still
//! verifies, and nothing an intermediary does to the outer body can change
//! what was sealed. The MAC input starts with the body's purpose, so a
//! sealed dead letter can never pass for a sealed job.
//!
//! `QUEUE_SECRET` is a comma-separated list for rotation: the first secret
//! seals, every secret opens. Seals are compared in constant time.
//! Owns: the secrets, the seal's text form (`v1:` and 64 hex digits) and
//! the check. Must not: put a secret into an error or a debug string, or
//! read the environment (the setting comes through a `ConfigSource`).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{ConfigError, ConfigSource, err, secret_list};

/// The setting that holds the secrets.
pub const QUEUE_SECRET: &str = "QUEUE_SECRET";

/// The shortest secret accepted, in bytes: 256 bits of random text.
pub const MIN_SECRET_BYTES: usize = 32;

/// The seal's version prefix. A seal of another version is refused by name.
const VERSION: &str = "v1";

/// Length of a seal's text: `v1:` and the hex of 32 bytes.
pub const SEAL_LEN: usize = VERSION.len() + 1 + 64;

type HmacSha256 = Hmac<Sha256>;

/// What a sealed text is, bound into its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A delivery job on the jobs queue.
    Deliver,
    /// A dead letter on the dead-letter queue.
    DeadLetter,
    /// A webhook delivery on the webhooks queue (see `events::webhooks::task`).
    Webhook,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Deliver => b"edgerelay queue seal v1: deliver\n",
            Purpose::DeadLetter => b"edgerelay queue seal v1: dead_letter\n",
            Purpose::Webhook => b"edgerelay queue seal v1: webhook\n",
        }
    }
}

/// Why a seal does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// No seal at all.
    Missing,
    /// A seal of a version this build does not know (the version as written,
    /// cut short and stripped of anything but letters and digits).
    UnknownVersion(String),
    /// Not the form `v1:` and 64 hex digits.
    Malformed,
    /// Well formed, but made under none of the secrets, or over other text.
    Mismatch,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Missing => write!(f, "it carries no seal"),
            SealError::UnknownVersion(v) => {
                write!(f, "its seal has version `{v}`, this build reads {VERSION}")
            }
            SealError::Malformed => write!(f, "its seal is malformed"),
            SealError::Mismatch => write!(f, "its seal does not verify"),
        }
    }
}

/// The queue secrets: the first seals, all of them open.
#[derive(Clone)]
pub struct QueueSecrets {
    /// Never empty.
    secrets: Vec<Vec<u8>>,
}

impl fmt::Debug for QueueSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QueueSecrets({} secret(s), redacted)",
            self.secrets.len()
        )
    }
}

impl QueueSecrets {
    /// Parses the setting's text: comma-separated secrets, each at least
    /// [`MIN_SECRET_BYTES`] long. The error names an entry by its position.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let secrets = secret_list(
            raw,
            MIN_SECRET_BYTES,
            "is not set: edgerelay seals its queue jobs with it (see docs/configuration.md)",
        )?;
        Ok(QueueSecrets {
            secrets: secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
        })
    }

    /// Reads `QUEUE_SECRET`.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        Self::parse(&src.get(QUEUE_SECRET).unwrap_or_default()).map_err(|e| err(QUEUE_SECRET, e))
    }

    /// The seal of `text` for `purpose`, under the first secret.
    pub fn seal(&self, purpose: Purpose, text: &str) -> String {
        let first = self.secrets.first().map(Vec::as_slice).unwrap_or_default();
        let tag = mac(first, purpose, text);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{VERSION}:{hex}")
    }

    /// Checks that `seal` was made over exactly `text` for `purpose` under
    /// one of the secrets. Every secret is tried, whatever matched first.
    pub fn open(&self, purpose: Purpose, text: &str, seal: Option<&str>) -> Result<(), SealError> {
        let seal = seal.ok_or(SealError::Missing)?;
        let Some((version, hex)) = seal.split_once(':') else {
            return Err(SealError::Malformed);
        };
        if version != VERSION {
            let shown: String = version
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(8)
                .collect();
            return Err(SealError::UnknownVersion(shown));
        }
        let claimed = decode_hex32(hex).ok_or(SealError::Malformed)?;
        let mut matched = subtle::Choice::from(0);
        for secret in &self.secrets {
            matched |= mac(secret, purpose, text).ct_eq(&claimed);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SealError::Mismatch)
        }
    }

    /// One key per secret (the first is the one to issue with), derived for
    /// another use under `label`, so a token signed with it can never pass
    /// for a queue seal, nor one use's token for another's.
    pub fn derived_keys(&self, label: &[u8]) -> Vec<[u8; 32]> {
        self.secrets
            .iter()
            .map(|secret| {
                let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
                    return [0; 32];
                };
                m.update(b"edgerelay derived key: ");
                m.update(label);
                m.finalize().into_bytes().into()
            })
            .collect()
    }
}

fn mac(secret: &[u8], purpose: Purpose, text: &str) -> [u8; 32] {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return [0; 32];
    };
    m.update(purpose.label());
    m.update(text.as_bytes());
    m.finalize().into_bytes().into()
}

/// 64 hex digits as 32 bytes.
pub fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SECRET: &str = "test-queue-secret-0123456789abcdef";
    const OLD: &str = "retired-queue-secret-0123456789abcdef";

    /// Secrets for tests elsewhere in the crate.
    pub(crate) fn secrets() -> QueueSecrets {
        QueueSecrets::parse(SECRET).unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?", without a purpose
        // label: the primitive under the seal is standard HMAC-SHA256.
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// (secrets, purpose, text, seal, expected)
    type Row<'a> = (
        &'a QueueSecrets,
        Purpose,
        &'a str,
        Option<&'a str>,
        Result<(), SealError>,
    );

    #[test]
    fn seal_and_open_table() {
        let text = r#"{"id":"m1","mail_from":"a@example.com"}"#;
        let current = secrets();
        let sealed = current.seal(Purpose::Deliver, text);
        assert_eq!(sealed.len(), SEAL_LEN);
        assert!(sealed.starts_with("v1:"));

        let mut tampered_text = text.as_bytes().to_vec();
        tampered_text[10] ^= 0x01;
        let tampered_text = String::from_utf8(tampered_text).unwrap();
        let mut tampered_seal = sealed.clone().into_bytes();
        let last = tampered_seal.len() - 1;
        tampered_seal[last] = if tampered_seal[last] == b'0' {
            b'1'
        } else {
            b'0'
        };
        let tampered_seal = String::from_utf8(tampered_seal).unwrap();
        let wrong = QueueSecrets::parse(&"w".repeat(MIN_SECRET_BYTES)).unwrap();
        let wrong_seal = wrong.seal(Purpose::Deliver, text);
        // Rotation: a job sealed under the old secret still opens while the
        // old secret is listed second; once removed, it no longer does.
        let old_seal = QueueSecrets::parse(OLD)
            .unwrap()
            .seal(Purpose::Deliver, text);
        let rotated = QueueSecrets::parse(&format!("{SECRET}, {OLD}")).unwrap();
        let letter_seal = current.seal(Purpose::DeadLetter, text);
        let v2 = sealed.replacen("v1:", "v2:", 1);
        let scripted = sealed.replacen("v1:", "<script>v9!:", 1);
        let no_colon = sealed.replace(':', "");
        let not_hex = format!("v1:{}", "zz".repeat(32));

        let table: Vec<Row> = vec![
            (&current, Purpose::Deliver, text, Some(&sealed), Ok(())),
            (&rotated, Purpose::Deliver, text, Some(&sealed), Ok(())),
            (&rotated, Purpose::Deliver, text, Some(&old_seal), Ok(())),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&old_seal),
                Err(SealError::Mismatch),
            ),
            (
                &current,
                Purpose::Deliver,
                &tampered_text,
                Some(&sealed),
                Err(SealError::Mismatch),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&tampered_seal),
                Err(SealError::Mismatch),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&wrong_seal),
                Err(SealError::Mismatch),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&letter_seal),
                Err(SealError::Mismatch),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                None,
                Err(SealError::Missing),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&v2),
                Err(SealError::UnknownVersion("v2".into())),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&scripted),
                Err(SealError::UnknownVersion("scriptv9".into())),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some("v1:abc"),
                Err(SealError::Malformed),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&no_colon),
                Err(SealError::Malformed),
            ),
            (
                &current,
                Purpose::Deliver,
                text,
                Some(&not_hex),
                Err(SealError::Malformed),
            ),
        ];
        for (i, (keys, purpose, text, seal, want)) in table.into_iter().enumerate() {
            assert_eq!(keys.open(purpose, text, seal), want, "row {i}: {seal:?}");
        }
    }

    #[test]
    fn a_change_of_one_byte_anywhere_breaks_the_seal() {
        let text = r#"{"id":"m1","rcpt_to":["b@example.org"],"mime":"Subject: hi\r\n"}"#;
        let keys = secrets();
        let seal = keys.seal(Purpose::Deliver, text);
        for i in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] ^= 0x20;
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            assert_eq!(
                keys.open(Purpose::Deliver, &changed, Some(&seal)),
                Err(SealError::Mismatch),
                "byte {i}"
            );
        }
    }

    #[test]
    fn the_setting_is_named_and_never_quoted() {
        let short = "too-short-secret";
        let table: [(Option<&str>, &str); 4] = [
            (None, "is not set"),
            (Some("  , "), "is not set"),
            (Some(short), "secret 1 of 1 is shorter than 32"),
            (
                Some(&format!("{SECRET},{short}")),
                "secret 2 of 2 is shorter than 32",
            ),
        ];
        for (value, needle) in table {
            let src = |name: &str| (name == QUEUE_SECRET).then(|| value.map(str::to_string))?;
            let e = QueueSecrets::from_source(&src).unwrap_err();
            assert_eq!(e.setting, QUEUE_SECRET);
            let text = e.to_string();
            assert!(text.contains(needle), "{value:?}: {text}");
            assert!(!text.contains(short) && !text.contains(SECRET), "{text}");
        }
        let debug = format!(
            "{:?}",
            QueueSecrets::parse(&format!("{SECRET},{OLD}")).unwrap()
        );
        assert!(!debug.contains(SECRET) && !debug.contains(OLD), "{debug}");
        assert!(debug.contains("2 secret"), "{debug}");
    }
}
