//! DKIM signing (RFC 6376, relaxed/relaxed, SHA-256; Ed25519 per RFC 8463).
//!
//! Owns the signing side of DKIM: canonicalisation ([`canonical`]), the
//! two-phase signing protocol that lets an asynchronous signer such as
//! WebCrypto supply the signature ([`signature`]) and key handling with native
//! signers ([`key`]). Must not: verify signatures, look up DNS or read the
//! clock: the signing time is passed in.
//!
//! Flow on the edge:
//!
//! ```text
//! let unsigned = UnsignedMessage::new(&mime);
//! for key in keys_for_domain(&keys, from_domain) {
//!     let pending = unsigned.prepare(key.identity(), now)?;
//!     let signature = if key.is_rsa() { webcrypto_sign(key.pkcs8_der()?, pending.signing_input()).await }
//!                     else { key.sign(&pending)? };
//!     headers.push(pending.finish(&signature)?);
//! }
//! let signed = unsigned.with_signatures(&headers);
//! ```

pub mod canonical;
pub mod key;
pub mod signature;

pub use key::DkimKey;
pub use signature::{
    Coverage, DkimAlgorithm, DkimIdentity, PendingSignature, Selector, SignatureHeader,
    UnsignedMessage,
};

use super::address::Domain;
use super::error::DkimError;

/// Every configured key whose signing domain is exactly `from_domain`, so a
/// domain with both RSA and Ed25519 keys gets both signatures (RFC 8463 dual
/// signing: Ed25519 for verifiers that know it, RSA for the rest).
pub fn keys_for_domain<'a>(keys: &'a [DkimKey], from_domain: &Domain) -> Vec<&'a DkimKey> {
    keys.iter()
        .filter(|key| &key.identity().domain == from_domain)
        .collect()
}

/// The smallest RSA key a sending domain must sign with. The largest mailbox
/// providers verify only RSA signatures, so a domain signed only with
/// Ed25519 fails DMARC there; keys under 2048 bits are treated as weak.
pub const MIN_RSA_BITS: usize = 2048;

/// Whether the keys include an RSA key of at least [`MIN_RSA_BITS`], the
/// signature every verifier checks (Ed25519 may sign beside it).
pub fn has_required_rsa(keys: &[&DkimKey]) -> bool {
    keys.iter()
        .any(|key| key.rsa_bits().is_some_and(|bits| bits >= MIN_RSA_BITS))
}

/// Signs with every given key natively and returns the signed message
/// (CRLF-normalised, signature headers first in key order).
pub fn sign_message(raw: &[u8], keys: &[&DkimKey], timestamp: u64) -> Result<Vec<u8>, DkimError> {
    let unsigned = UnsignedMessage::new(raw);
    let mut headers = Vec::with_capacity(keys.len());
    for key in keys {
        let pending = unsigned.prepare(key.identity(), timestamp)?;
        let signature = key.sign(&pending)?;
        headers.push(pending.finish(&signature)?);
    }
    Ok(unsigned.with_signatures(&headers))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod verifiers;
