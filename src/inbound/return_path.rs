//! The VERP return path: a MAIL FROM that names the message and the
//! recipient, so a bounce that comes back to it says exactly whose it is,
//! and cannot be forged.
//!
//! `b+<token>@<return-path domain>`, where the token is RFC 4648 base32 in
//! lower case (local parts survive case folding) of: the message id's 16
//! bytes, its copy number (0 for none; see per-recipient copies), the
//! recipient's position in the message's recipients, and 8 bytes of
//! HMAC-SHA256 over those under a key derived from `QUEUE_SECRET` (every
//! listed secret opens, the first issues). 45 characters: the local part
//! stays under 64.
//! Owns: the token's form, issuing and opening it. Must not: read settings
//! or decide which messages get one.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::queue::QueueSecrets;

type HmacSha256 = Hmac<Sha256>;

const LABEL: &[u8] = b"return path v1";
const PREFIX: &str = "b+";
const TAG_LEN: usize = 8;
const PAYLOAD_LEN: usize = 16 + 2 + 2;
const TOKEN_LEN: usize = PAYLOAD_LEN + TAG_LEN;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The recipient index of a return path shared by all of a message's
/// recipients (one transaction for many): the report's own recipient
/// blocks then say whose it is.
pub const WHOLE_MESSAGE: u16 = u16::MAX;

/// Which message and recipient a return path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPathClaim {
    /// edgerelay's id of the message (32 hex digits, and `-<n>` for a
    /// per-recipient copy).
    pub message_id: String,
    /// The recipient's position in the message's recipients, or
    /// [`WHOLE_MESSAGE`].
    pub recipient_index: u16,
}

/// Why a return path did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forged {
    /// Not `b+<token>` at all.
    NotOurs,
    /// The right shape, but the tag does not verify under any secret.
    BadTag,
}

fn split_id(id: &str) -> Option<([u8; 16], u16)> {
    let (hex, copy) = match id.split_once('-') {
        Some((hex, n)) => (hex, n.parse::<u16>().ok().filter(|n| *n > 0)?),
        None => (id, 0),
    };
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((bytes, copy))
}

fn tag(key: &[u8; 32], payload: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    if let Ok(mut m) = HmacSha256::new_from_slice(key) {
        m.update(payload);
        let full = m.finalize().into_bytes();
        out.copy_from_slice(full.get(..TAG_LEN).unwrap_or(&[0; TAG_LEN]));
    }
    out
}

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let c = c.to_ascii_lowercase();
        let v = BASE32.iter().position(|&x| x == c)? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

impl ReturnPathClaim {
    /// The local part naming this claim, issued under the first secret;
    /// `None` when the id is not one of edgerelay's.
    pub fn local_part(&self, secrets: &QueueSecrets) -> Option<String> {
        let (id, copy) = split_id(&self.message_id)?;
        let key = secrets.derived_keys(LABEL).into_iter().next()?;
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.extend_from_slice(&id);
        token.extend_from_slice(&copy.to_be_bytes());
        token.extend_from_slice(&self.recipient_index.to_be_bytes());
        let t = tag(&key, &token);
        token.extend_from_slice(&t);
        Some(format!("{PREFIX}{}", encode(&token)))
    }

    /// The whole return path at `domain`.
    pub fn address(&self, domain: &str, secrets: &QueueSecrets) -> Option<String> {
        Some(format!("{}@{domain}", self.local_part(secrets)?))
    }

    /// Opens the local part of an address a report came back to.
    pub fn open(local_part: &str, secrets: &QueueSecrets) -> Result<ReturnPathClaim, Forged> {
        let token = local_part
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| local_part.get(PREFIX.len()..))
            .ok_or(Forged::NotOurs)?;
        if token.len() > 64 {
            return Err(Forged::NotOurs);
        }
        let bytes = decode(token)
            .filter(|b| b.len() == TOKEN_LEN)
            .ok_or(Forged::NotOurs)?;
        let (payload, claimed) = bytes.split_at(PAYLOAD_LEN);
        let mut matched = subtle::Choice::from(0);
        for key in secrets.derived_keys(LABEL) {
            matched |= tag(&key, payload).ct_eq(claimed);
        }
        if !bool::from(matched) {
            return Err(Forged::BadTag);
        }
        let hex: String = payload[..16].iter().map(|b| format!("{b:02x}")).collect();
        let copy = u16::from_be_bytes([payload[16], payload[17]]);
        let recipient_index = u16::from_be_bytes([payload[18], payload[19]]);
        let message_id = if copy == 0 {
            hex
        } else {
            format!("{hex}-{copy}")
        };
        Ok(ReturnPathClaim {
            message_id,
            recipient_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8";

    fn secrets(raw: &str) -> QueueSecrets {
        QueueSecrets::parse(raw).unwrap()
    }

    fn claim(id: &str, index: u16) -> ReturnPathClaim {
        ReturnPathClaim {
            message_id: id.into(),
            recipient_index: index,
        }
    }

    const NOW: &str = "return-path-secret-now-0123456789abcdef";
    const OLD: &str = "return-path-secret-old-0123456789abcdef";

    #[test]
    fn round_trips_and_fits_a_local_part() {
        let s = secrets(NOW);
        for c in [
            claim(ID, 0),
            claim(ID, 7),
            claim(&format!("{ID}-3"), 0),
            claim(ID, u16::MAX),
        ] {
            let local = c.local_part(&s).unwrap();
            assert!(local.len() <= 64, "{local}");
            assert!(
                local
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+')
            );
            assert_eq!(ReturnPathClaim::open(&local, &s), Ok(c.clone()));
            // Case folding on the way back does not break it.
            assert_eq!(ReturnPathClaim::open(&local.to_uppercase(), &s), Ok(c));
        }
        assert_eq!(
            claim(ID, 1).address("rp.example.com", &s).unwrap(),
            format!("{}@rp.example.com", claim(ID, 1).local_part(&s).unwrap())
        );
    }

    #[test]
    fn only_edgerelays_ids_get_one() {
        let s = secrets(NOW);
        for id in [
            "",
            "short",
            &format!("{ID}-0"),
            &format!("{ID}-x"),
            &format!("{ID}00"),
        ] {
            assert_eq!(claim(id, 0).local_part(&s), None, "{id}");
        }
    }

    #[test]
    fn forged_or_altered_tokens_do_not_open() {
        let s = secrets(NOW);
        let local = claim(ID, 1).local_part(&s).unwrap();
        // Another secret's token, and one for another recipient spliced in.
        let other = claim(ID, 1).local_part(&secrets(OLD)).unwrap();
        assert_eq!(ReturnPathClaim::open(&other, &s), Err(Forged::BadTag));
        let mut altered: Vec<u8> = local.clone().into_bytes();
        let i = 2 + 30;
        altered[i] = if altered[i] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(ReturnPathClaim::open(&altered, &s), Err(Forged::BadTag));
        for junk in [
            "bounce",
            "b+",
            "b+!!!",
            &format!("b+{}", "a".repeat(80)),
            &local[..20],
        ] {
            assert_eq!(
                ReturnPathClaim::open(junk, &s),
                Err(Forged::NotOurs),
                "{junk}"
            );
        }
    }

    #[test]
    fn rotation_opens_old_tokens_and_issues_new_ones() {
        let old = claim(ID, 2).local_part(&secrets(OLD)).unwrap();
        let rotated = secrets(&format!("{NOW},{OLD}"));
        assert_eq!(ReturnPathClaim::open(&old, &rotated), Ok(claim(ID, 2)));
        assert_eq!(
            claim(ID, 2).local_part(&rotated),
            claim(ID, 2).local_part(&secrets(NOW))
        );
    }

    #[test]
    fn a_return_path_key_is_not_a_queue_seal_key() {
        let s = secrets(NOW);
        assert_ne!(s.derived_keys(LABEL), s.derived_keys(b"another use"));
        assert_ne!(s.derived_keys(LABEL)[0].as_slice(), NOW.as_bytes());
    }
}
