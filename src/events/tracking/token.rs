//! The tracking token: what a tracked link carries after `/t/c/` and the
//! open pixel after `/t/o/`.
//!
//! The token is stateless and signed, not encrypted: it names the message
//! (the copy's id), the recipient's index in that copy (only when the
//! recipient consented to per-recipient tracking; none in aggregate mode),
//! the link's index and, for a click, the exact target URL. Nothing is
//! stored when it is issued, and links live for years, so the MAC keys
//! rotate: the first secret of the list issues, every listed one verifies.
//! The target is under the MAC, so a token can only ever redirect to the URL
//! edgerelay signed (no open redirect). No address is in the token.
//!
//! Wire form: base64url without padding of
//! `version (1) || kind (1) || recipient (2) || link (2) || id length (1) ||
//! id || target (clicks: the rest) || tag (16)`, integers big-endian,
//! recipient `0xFFFF` for none; the tag is HMAC-SHA256, cut to 128 bits,
//! under a key derived from each secret for tracking alone.
//!
//! Owns: the claim, the secrets and the token's form. Must not: read the
//! environment, or put a secret into an error or a debug string.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::config::secret_list;
use crate::events::mac::{derive, tag};

/// The token format this build issues and verifies.
const VERSION: u8 = 1;
/// The HMAC-SHA256 tag, cut to 128 bits.
const TAG_LEN: usize = 16;
/// version, kind, recipient, link, id length.
const HEADER_LEN: usize = 1 + 1 + 2 + 2 + 1;
/// The recipient field of a token that names nobody.
const NO_RECIPIENT: u16 = u16::MAX;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest target URL a link is tracked with; longer links are left as
/// they are (browsers and filters mishandle URLs much longer than this).
pub const MAX_TARGET_BYTES: usize = 2048;
/// The longest token text read; anything longer is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 4 * (HEADER_LEN + 255 + MAX_TARGET_BYTES + TAG_LEN) / 3 + 4;

/// Derives each secret's MAC key, so the token key is never the same bytes
/// as the queue seal's or the unsubscribe token's, even when the settings
/// share a secret.
const MAC_LABEL: &[u8] = b"edgerelay tracking token v1: mac key";

/// An open (the pixel) or a click (a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitKind {
    Open,
    Click,
}

impl HitKind {
    fn byte(self) -> u8 {
        match self {
            HitKind::Open => b'o',
            HitKind::Click => b'c',
        }
    }

    fn from_byte(b: u8) -> Option<HitKind> {
        match b {
            b'o' => Some(HitKind::Open),
            b'c' => Some(HitKind::Click),
            _ => None,
        }
    }

    /// The path segment of the route (`/t/o/...`, `/t/c/...`).
    pub fn path_segment(self) -> &'static str {
        match self {
            HitKind::Open => "o",
            HitKind::Click => "c",
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingClaim {
    pub kind: HitKind,
    /// The id of the copy that carried the token.
    pub message_id: String,
    /// The recipient's index in the copy's recipients, when the recipient
    /// consented to per-recipient tracking; `None` counts without a person.
    pub recipient: Option<u16>,
    /// The link's index in the HTML part (0 for an open).
    pub link: u16,
    /// The URL a click goes to (clicks only).
    pub target: Option<String>,
}

/// Why a token was not issued or does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The id is over 255 bytes, the target over [`MAX_TARGET_BYTES`], an
    /// index out of range, or a click without a target (issuing only).
    Unencodable,
    /// Not base64url, too short or too long, or of an unknown version.
    Malformed,
    /// Not made by edgerelay under any listed secret, or altered since.
    Forged,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Unencodable => "the tracking claim does not fit a token",
            TokenError::Malformed => "the tracking link is malformed",
            TokenError::Forged => "the tracking link is not valid",
        })
    }
}

/// The token secrets: the first issues, all of them verify.
#[derive(Clone)]
pub struct TrackingSecrets {
    /// Never empty.
    keys: Vec<[u8; 32]>,
}

impl fmt::Debug for TrackingSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrackingSecrets({} secret(s), redacted)",
            self.keys.len()
        )
    }
}

impl TrackingSecrets {
    /// Parses a comma-separated list of secrets, each at least
    /// [`MIN_SECRET_BYTES`] long. The error names an entry by position only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let secrets = secret_list(raw, MIN_SECRET_BYTES, "lists no secret")?;
        Ok(TrackingSecrets {
            keys: secrets
                .iter()
                .map(|s| derive(s.as_bytes(), MAC_LABEL))
                .collect(),
        })
    }

    /// The token for `claim` under the first secret.
    pub fn issue(&self, claim: &TrackingClaim) -> Result<String, TokenError> {
        let id_len = u8::try_from(claim.message_id.len()).map_err(|_| TokenError::Unencodable)?;
        let target = match (claim.kind, &claim.target) {
            (HitKind::Click, Some(t)) if !t.is_empty() && t.len() <= MAX_TARGET_BYTES => t,
            (HitKind::Open, None) => "",
            _ => return Err(TokenError::Unencodable),
        };
        let recipient = match claim.recipient {
            Some(NO_RECIPIENT) => return Err(TokenError::Unencodable),
            Some(i) => i,
            None => NO_RECIPIENT,
        };
        let mut token =
            Vec::with_capacity(HEADER_LEN + claim.message_id.len() + target.len() + TAG_LEN);
        token.push(VERSION);
        token.push(claim.kind.byte());
        token.extend_from_slice(&recipient.to_be_bytes());
        token.extend_from_slice(&claim.link.to_be_bytes());
        token.push(id_len);
        token.extend_from_slice(claim.message_id.as_bytes());
        token.extend_from_slice(target.as_bytes());
        let key = self.keys.first().ok_or(TokenError::Forged)?;
        let tag = tag::<TAG_LEN>(key, &token);
        token.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The claim of a token made by edgerelay under one of the secrets and
    /// unaltered since, if it is one of `kind` (a pixel token does not
    /// redirect, a link token is no pixel).
    pub fn verify(&self, token: &str, kind: HitKind) -> Result<TrackingClaim, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (signed, claimed_tag) = bytes.split_at(bytes.len() - TAG_LEN);
        // Every secret is tried whatever matched, so the time taken does not
        // say which one (or whether any) did.
        let mut matched = false;
        for key in &self.keys {
            let ok: bool = tag::<TAG_LEN>(key, signed).ct_eq(claimed_tag).into();
            matched |= ok;
        }
        if !matched {
            return Err(TokenError::Forged);
        }
        // Authentic but unreadable can only be a bug of an earlier build;
        // it is refused the same way as a forgery.
        let claim = parse(signed).ok_or(TokenError::Forged)?;
        if claim.kind != kind {
            return Err(TokenError::Forged);
        }
        Ok(claim)
    }
}

fn parse(signed: &[u8]) -> Option<TrackingClaim> {
    let kind = HitKind::from_byte(*signed.get(1)?)?;
    let recipient = u16::from_be_bytes([*signed.get(2)?, *signed.get(3)?]);
    let link = u16::from_be_bytes([*signed.get(4)?, *signed.get(5)?]);
    let id_len = usize::from(*signed.get(6)?);
    let rest = signed.get(HEADER_LEN..)?;
    if rest.len() < id_len || id_len == 0 {
        return None;
    }
    let (id, target) = rest.split_at(id_len);
    let message_id = String::from_utf8(id.to_vec()).ok()?;
    let target = match kind {
        HitKind::Open if target.is_empty() => None,
        HitKind::Click if !target.is_empty() => Some(String::from_utf8(target.to_vec()).ok()?),
        _ => return None,
    };
    Some(TrackingClaim {
        kind,
        message_id,
        recipient: (recipient != NO_RECIPIENT).then_some(recipient),
        link,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old-tracking-secret-0123456789abcdef";
    const NEW: &str = "new-tracking-secret-0123456789abcdef";

    fn click(target: &str) -> TrackingClaim {
        TrackingClaim {
            kind: HitKind::Click,
            message_id: "0123456789abcdef0123456789abcdef-2".into(),
            recipient: Some(0),
            link: 3,
            target: Some(target.into()),
        }
    }

    fn open(recipient: Option<u16>) -> TrackingClaim {
        TrackingClaim {
            kind: HitKind::Open,
            message_id: "0123456789abcdef0123456789abcdef".into(),
            recipient,
            link: 0,
            target: None,
        }
    }

    fn secrets(list: &str) -> TrackingSecrets {
        TrackingSecrets::parse(list).unwrap()
    }

    /// Flips one bit of the decoded token at `at` (from the end when
    /// negative) and encodes it again.
    fn flip(token: &str, at: isize) -> String {
        let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
        let i = if at < 0 {
            bytes.len() - at.unsigned_abs()
        } else {
            at.unsigned_abs()
        };
        bytes[i] ^= 0x01;
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let s = secrets(NEW);
        for claim in [
            click("https://shop.example.com/sale?a=1&b=2#top"),
            click("https://bücher.example/straße?q=été"),
            click(&format!("https://example.com/{}", "x".repeat(2000))),
            open(None),
            open(Some(7)),
        ] {
            let token = s.issue(&claim).unwrap();
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token}"
            );
            assert_eq!(s.verify(&token, claim.kind), Ok(claim.clone()));
        }
        // An open of a single copy is compact.
        assert!(s.issue(&open(Some(0))).unwrap().len() < 80);
    }

    #[test]
    fn refusals_by_table() {
        let s = secrets(NEW);
        let token = s.issue(&click("https://shop.example.com/a")).unwrap();
        let other = s.issue(&click("https://evil.example.net/")).unwrap();
        let pixel = s.issue(&open(Some(0))).unwrap();
        // Re-targeting: the first token's header and MAC with another URL.
        let retargeted = {
            let a = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let mut b = a[..a.len() - TAG_LEN].to_vec();
            let tail = b.len() - "https://shop.example.com/a".len();
            b.truncate(tail);
            b.extend_from_slice(b"https://evil.example.net/");
            b.extend_from_slice(&a[a.len() - TAG_LEN..]);
            URL_SAFE_NO_PAD.encode(b)
        };
        // Another token's MAC spliced onto this one's content.
        let spliced = {
            let a = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let b = URL_SAFE_NO_PAD.decode(&other).unwrap();
            let mut c = a[..a.len() - TAG_LEN].to_vec();
            c.extend_from_slice(&b[b.len() - TAG_LEN..]);
            URL_SAFE_NO_PAD.encode(c)
        };
        let truncated = {
            let a = URL_SAFE_NO_PAD.decode(&token).unwrap();
            URL_SAFE_NO_PAD.encode(&a[..a.len() - 1])
        };
        let wrong_key = secrets(OLD)
            .issue(&click("https://shop.example.com/a"))
            .unwrap();
        let table: Vec<(&str, String, HitKind, TokenError)> = vec![
            (
                "empty",
                String::new(),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "not base64url",
                "abc+/=".into(),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "padding",
                format!("{token}="),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "too long",
                "A".repeat(MAX_TOKEN_CHARS + 1),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "truncated to a stub",
                token[..10].to_string(),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "truncated by one byte",
                truncated,
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "truncated tag",
                token[..token.len() - 4].to_string(),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "tampered version",
                flip(&token, 0),
                HitKind::Click,
                TokenError::Malformed,
            ),
            (
                "tampered recipient",
                flip(&token, 3),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "tampered link index",
                flip(&token, 5),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "tampered id",
                flip(&token, 8),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "tampered target",
                flip(&token, -20),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "tampered tag",
                flip(&token, -1),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "re-targeted",
                retargeted,
                HitKind::Click,
                TokenError::Forged,
            ),
            ("spliced MAC", spliced, HitKind::Click, TokenError::Forged),
            ("wrong key", wrong_key, HitKind::Click, TokenError::Forged),
            (
                "a pixel is no link",
                pixel.clone(),
                HitKind::Click,
                TokenError::Forged,
            ),
            (
                "a link is no pixel",
                token.clone(),
                HitKind::Open,
                TokenError::Forged,
            ),
        ];
        for (name, bad, kind, want) in table {
            assert_eq!(s.verify(&bad, kind), Err(want), "{name}");
        }
    }

    #[test]
    fn the_first_secret_issues_and_every_one_verifies() {
        let before = secrets(OLD);
        let rotated = secrets(&format!("{NEW},{OLD}"));
        let old_token = before.issue(&click("https://a.example/")).unwrap();
        assert_eq!(
            rotated.verify(&old_token, HitKind::Click),
            Ok(click("https://a.example/"))
        );
        let new_token = rotated.issue(&click("https://a.example/")).unwrap();
        assert_eq!(
            secrets(NEW).verify(&new_token, HitKind::Click),
            Ok(click("https://a.example/"))
        );
        assert_eq!(
            before.verify(&new_token, HitKind::Click),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn what_does_not_fit_is_not_issued() {
        let s = secrets(NEW);
        let mut long_id = open(None);
        long_id.message_id = "m".repeat(256);
        let mut no_target = click("x");
        no_target.target = None;
        let mut open_with_target = open(None);
        open_with_target.target = Some("https://a.example/".into());
        for claim in [
            long_id,
            click(&format!(
                "https://example.com/{}",
                "x".repeat(MAX_TARGET_BYTES)
            )),
            click(""),
            no_target,
            open_with_target,
            open(Some(NO_RECIPIENT)),
        ] {
            assert_eq!(s.issue(&claim), Err(TokenError::Unencodable), "{claim:?}");
        }
    }

    #[test]
    fn secrets_by_table() {
        assert!(TrackingSecrets::parse("").is_err());
        let e = TrackingSecrets::parse(&format!("{NEW}, short-one")).unwrap_err();
        assert!(e.contains("secret 2 of 2"), "{e}");
        assert!(!e.contains("short-one"), "{e}");
        let debug = format!("{:?}", secrets(NEW));
        assert!(!debug.contains("tracking-secret"), "{debug}");
    }
}
