//! The keyed hashes behind edgerelay's own tokens (unsubscribe and tracking
//! links): a key derived from a configured secret under a label, so one
//! secret serves each purpose with a key of its own, and a tag cut to the
//! length a token carries.
//!
//! Owns: those two HMAC-SHA256 steps. Must not: compare tags (callers
//! compare in constant time) or know any token's layout.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `label` under `secret`: a key for one purpose.
pub fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return [0; 32];
    };
    m.update(label);
    m.finalize().into_bytes().into()
}

/// The first `N` bytes (at most 32) of HMAC-SHA256 of `signed` under `key`.
pub fn tag<const N: usize>(key: &[u8; 32], signed: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return out;
    };
    m.update(signed);
    let full: [u8; 32] = m.finalize().into_bytes().into();
    let n = N.min(32);
    out[..n].copy_from_slice(&full[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2_and_truncation() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let full = derive(b"Jefe", b"what do ya want for nothing?");
        let hex: String = full.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let key = [7u8; 32];
        let long: [u8; 32] = tag(&key, b"signed");
        let short: [u8; 16] = tag(&key, b"signed");
        assert_eq!(&long[..16], &short);
        assert_ne!(tag::<16>(&key, b"signed!"), short);
    }
}
