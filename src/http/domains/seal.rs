//! How a domain's private keys are sealed at rest: AES-256-GCM under a key
//! derived for that one purpose from the master secret
//! (`DOMAIN_KEYS_SECRET`), with the key's domain, selector and algorithm as
//! associated data, so a sealed key moved to another row does not open.
//!
//! The derivation is HMAC-SHA256 keyed with the master secret over a label
//! naming the purpose: each use of the master secret gets its own key, and
//! none of them reveals the secret or another purpose's key. Stored form:
//! `v1:` then the base64 of the 12-byte nonce and the ciphertext with its
//! tag. The setting may list several secrets: the first seals, each is
//! tried in turn to open, so a new secret can be put first while keys
//! sealed under the old one still open.
//! Must not: encrypt (the edge does, with WebCrypto), or put a secret or a
//! private key into an error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::message::DkimAlgorithm;

/// The purpose label of the keys that seal DKIM private keys.
pub const DKIM_PRIVATE_KEYS: &str = "dkim private keys";
/// The nonce length of AES-GCM.
pub const NONCE_LEN: usize = 12;
/// The tag length of AES-GCM.
pub const TAG_LEN: usize = 16;

/// The 32-byte AES key for `purpose` derived from one master secret.
pub fn purpose_key(master: &str, purpose: &str) -> [u8; 32] {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(master.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(b"edgerelay master secret v1\0");
    mac.update(purpose.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The associated data of one key: what it belongs to.
pub fn associated_data(domain: &str, selector: &str, algorithm: DkimAlgorithm) -> Vec<u8> {
    format!(
        "edgerelay dkim key v1\0{domain}\0{selector}\0{}",
        algorithm.tag()
    )
    .into_bytes()
}

/// The stored text of a nonce and its ciphertext (tag included).
pub fn stored(nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    bytes.extend_from_slice(nonce);
    bytes.extend_from_slice(ciphertext);
    format!("v1:{}", STANDARD.encode(bytes))
}

/// The nonce and ciphertext of a stored text; `None` when it is not one.
pub fn parse_stored(text: &str) -> Option<([u8; NONCE_LEN], Vec<u8>)> {
    let bytes = STANDARD.decode(text.strip_prefix("v1:")?).ok()?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    Some((nonce.try_into().ok()?, ciphertext.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_and_secret_gets_its_own_key() {
        let a = purpose_key("master-secret-one-0123456789abcdef", DKIM_PRIVATE_KEYS);
        let b = purpose_key("master-secret-two-0123456789abcdef", DKIM_PRIVATE_KEYS);
        let c = purpose_key("master-secret-one-0123456789abcdef", "another purpose");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            purpose_key("master-secret-one-0123456789abcdef", DKIM_PRIVATE_KEYS)
        );
        // Not the secret itself, nor a prefix of it.
        assert!(!a.starts_with(b"master-secret"));
    }

    #[test]
    fn stored_texts_round_trip_and_anything_else_is_refused() {
        let text = stored(&[7; NONCE_LEN], &[9; 40]);
        assert!(text.starts_with("v1:"));
        assert_eq!(parse_stored(&text), Some(([7; NONCE_LEN], vec![9; 40])));
        for bad in [
            "",
            "v1:",
            "v2:AAAA",
            "v1:!!!",
            &stored(&[7; NONCE_LEN], &[1; 3]),
        ] {
            assert_eq!(parse_stored(bad), None, "{bad}");
        }
    }

    #[test]
    fn associated_data_names_the_key() {
        let a = associated_data("example.com", "er1-rsa", DkimAlgorithm::RsaSha256);
        let b = associated_data("example.org", "er1-rsa", DkimAlgorithm::RsaSha256);
        assert_ne!(a, b);
    }
}
