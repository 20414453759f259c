//! The signed envelope id (RFC 3461 `ENVID`): the message id with a tag
//! only edgerelay can write, so a delivery report that quotes it names the
//! message even where a smarthost rewrote the return path.
//!
//! The bare message id is no proof (every recipient sees it in the
//! `Message-ID` header); `<message id>.<tag>` is: the tag is 8 bytes of
//! HMAC-SHA256 over the id, in lower-case hex, under a key derived from
//! `QUEUE_SECRET` (every listed secret opens, the first issues). 49 to 55
//! characters, all of them xtext as they are, within ENVID's 100.
//! Owns: the ENVID's form, issuing and opening it. Must not: read settings
//! or decide which recipient a report is about (the report's own recipient
//! blocks say, checked against the message's recipients).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::queue::QueueSecrets;

type HmacSha256 = Hmac<Sha256>;

const LABEL: &[u8] = b"envelope id v1";
const TAG_LEN: usize = 8;

fn tag(key: &[u8; 32], id: &str) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    if let Ok(mut m) = HmacSha256::new_from_slice(key) {
        m.update(id.as_bytes());
        let full = m.finalize().into_bytes();
        out.copy_from_slice(full.get(..TAG_LEN).unwrap_or(&[0; TAG_LEN]));
    }
    out
}

/// Whether `id` is one of edgerelay's message ids: 32 lower-case hex
/// digits, and `-<n>` (n from 1) for a per-recipient copy.
fn is_message_id(id: &str) -> bool {
    let (hex, copy) = match id.split_once('-') {
        Some((hex, n)) => (hex, Some(n)),
        None => (id, None),
    };
    hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && copy.is_none_or(|n| {
            n.len() <= 5 && !n.starts_with('0') && n.parse::<u16>().is_ok_and(|n| n > 0)
        })
}

/// The ENVID for message `id`, under the first secret; `None` for an id
/// that is not one of edgerelay's.
pub fn issue(id: &str, secrets: &QueueSecrets) -> Option<String> {
    if !is_message_id(id) {
        return None;
    }
    let key = secrets.derived_keys(LABEL).into_iter().next()?;
    let t: String = tag(&key, id).iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{id}.{t}"))
}

/// The message id an ENVID names, when its tag verifies under any secret.
pub fn open(envid: &str, secrets: &QueueSecrets) -> Option<String> {
    let envid = envid.trim();
    let (id, claimed) = envid.rsplit_once('.')?;
    if !is_message_id(id) || claimed.len() != 2 * TAG_LEN {
        return None;
    }
    let mut bytes = [0u8; TAG_LEN];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(claimed.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut matched = subtle::Choice::from(0);
    for key in secrets.derived_keys(LABEL) {
        matched |= tag(&key, id).ct_eq(&bytes);
    }
    bool::from(matched).then(|| id.to_string())
}

/// The message id an ENVID claims, whether or not its tag verifies: the
/// part before the tag when it has the form of an id, else all of it.
pub fn claimed_id(envid: &str) -> &str {
    let envid = envid.trim();
    match envid.rsplit_once('.') {
        Some((id, _)) if is_message_id(id) => id,
        _ => envid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{MAX_ENVID_LEN, xtext};

    const ID: &str = "4f3c9a0b1d2e3f405162738495a6b7c8";
    const NOW: &str = "envelope-id-secret-now-0123456789abcdef";
    const OLD: &str = "envelope-id-secret-old-0123456789abcdef";

    fn secrets(raw: &str) -> QueueSecrets {
        QueueSecrets::parse(raw).unwrap()
    }

    #[test]
    fn round_trips_and_needs_no_encoding() {
        let s = secrets(NOW);
        for id in [ID.to_string(), format!("{ID}-1"), format!("{ID}-65535")] {
            let envid = issue(&id, &s).unwrap();
            assert!(envid.len() <= MAX_ENVID_LEN, "{envid}");
            assert_eq!(xtext(&envid), envid);
            assert_eq!(open(&envid, &s), Some(id.clone()));
            assert_eq!(open(&format!(" {envid}\r\n"), &s), Some(id));
        }
    }

    #[test]
    fn only_edgerelays_ids_get_one() {
        let s = secrets(NOW);
        for id in [
            "",
            "m1",
            &format!("{ID}-0"),
            &format!("{ID}-01"),
            &format!("{ID}-70000"),
            &ID.to_uppercase(),
            &format!("{ID}0"),
        ] {
            assert_eq!(issue(id, &s), None, "{id}");
        }
    }

    #[test]
    fn a_bare_altered_or_foreign_envid_names_nothing() {
        let s = secrets(NOW);
        let envid = issue(ID, &s).unwrap();
        let other_message = format!(
            "{}{}",
            "0".repeat(32),
            &envid[32..] // the tag of another message
        );
        let mut flipped = envid.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        for forged in [
            ID.to_string(),
            other_message,
            String::from_utf8(flipped).unwrap(),
            issue(ID, &secrets(OLD)).unwrap(),
            format!("{envid}0"),
            format!("{ID}.zzzzzzzzzzzzzzzz"),
            "..".into(),
        ] {
            assert_eq!(open(&forged, &s), None, "{forged}");
        }
    }

    #[test]
    fn the_claimed_id_is_read_whatever_the_tag() {
        assert_eq!(claimed_id(&format!("{ID}.zz")), ID);
        assert_eq!(claimed_id(ID), ID);
        assert_eq!(claimed_id("some.other.envid"), "some.other.envid");
    }

    #[test]
    fn rotation_opens_old_ids_and_issues_new_ones() {
        let old = issue(ID, &secrets(OLD)).unwrap();
        let rotated = secrets(&format!("{NOW},{OLD}"));
        assert_eq!(open(&old, &rotated), Some(ID.into()));
        assert_eq!(issue(ID, &rotated), issue(ID, &secrets(NOW)));
    }

    #[test]
    fn an_envelope_id_key_is_no_other_uses_key() {
        let s = secrets(NOW);
        assert_ne!(s.derived_keys(LABEL), s.derived_keys(b"return path v1"));
    }
}
