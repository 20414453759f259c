//! The one-click unsubscribe token: what the link in `List-Unsubscribe`
//! carries after `/unsubscribe/`.
//!
//! The token is stateless: it names the tenant, the sending key, the stream
//! (and topic) the recipient leaves, the recipient and the message, and
//! nothing is stored when it is issued. It must reveal none of that to whoever
//! sees the link (the recipient's address, the tenant and the message stay
//! hidden), and nobody but edgerelay may make one, or change the one they
//! hold into one for another address.
//!
//! So it is encrypt-then-MAC under keys derived from each secret of the
//! `UNSUBSCRIBE_SECRET` list: the claim is encrypted with ChaCha20 (a
//! pure-Rust stream cipher that builds for wasm32) under a fresh 96-bit
//! nonce, and the version, nonce and ciphertext are authenticated with
//! HMAC-SHA256 (cut to 128 bits) under a second key. Opening checks the MAC
//! first, in constant time, under every listed secret (rotation: the first
//! issues, all open), and only then decrypts.
//!
//! Wire form: base64url without padding of
//! `version (1) || nonce (12) || ciphertext || tag (16)`; the plaintext is
//! each field as a one-byte length and its UTF-8 bytes.
//!
//! Owns: the claim, the secrets and the token's form. Must not: read the
//! environment or draw randomness (the nonce is passed in), or put a secret
//! or a claim's content into an error or a debug string.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use subtle::ConstantTimeEq;

use crate::config::secret_list;
use crate::events::mac::{derive, tag};

/// The token format this build issues and opens.
const VERSION: u8 = 1;
/// ChaCha20's nonce (RFC 8439).
pub const NONCE_LEN: usize = 12;
/// The HMAC-SHA256 tag, cut to 128 bits.
const TAG_LEN: usize = 16;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest token text read; anything longer is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 1400;

/// Labels that derive each secret's two keys, so the cipher key and the MAC
/// key are never the same bytes, and neither is the queue seal's key even
/// when both settings hold the same secret.
const ENCRYPTION_LABEL: &[u8] = b"edgerelay unsubscribe token v1: encryption key";
const MAC_LABEL: &[u8] = b"edgerelay unsubscribe token v1: mac key";

/// Who leaves what: everything the unsubscribe needs, carried in the link.
#[derive(Clone, PartialEq, Eq)]
pub struct Claim {
    pub tenant: String,
    /// The API key (or producer) that sent the message.
    pub key_id: String,
    /// The stream the message was sent in (`marketing` or a named stream).
    pub stream: String,
    /// The topic, when the message named one: the unsubscribe then leaves
    /// only that topic.
    pub topic: Option<String>,
    /// The recipient's address, as it was sent to.
    pub recipient: String,
    /// edgerelay's id of the message that carried the link.
    pub message_id: String,
}

/// The claim's content is personal data: debug output names no field value.
impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Claim(redacted)")
    }
}

/// Why a token was not issued or does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// A field of the claim is longer than 255 bytes (issuing only).
    FieldTooLong,
    /// Not base64url, too short or too long.
    Malformed,
    /// A version this build does not know.
    UnknownVersion,
    /// Not made by edgerelay under any listed secret, or altered since.
    Forged,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::FieldTooLong => "a field of the unsubscribe claim is over 255 bytes",
            TokenError::Malformed => "the unsubscribe link is malformed",
            TokenError::UnknownVersion => "the unsubscribe link is of an unknown version",
            TokenError::Forged => "the unsubscribe link is not valid",
        })
    }
}

/// One secret's derived keys.
#[derive(Clone)]
struct KeyPair {
    encryption: [u8; 32],
    mac: [u8; 32],
}

/// The token secrets: the first issues, all of them open.
#[derive(Clone)]
pub struct TokenSecrets {
    /// Never empty.
    keys: Vec<KeyPair>,
}

impl fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecrets({} secret(s), redacted)", self.keys.len())
    }
}

impl TokenSecrets {
    /// Parses a comma-separated list of secrets, each at least
    /// [`MIN_SECRET_BYTES`] long. The error names an entry by position only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let secrets = secret_list(raw, MIN_SECRET_BYTES, "lists no secret")?;
        Ok(TokenSecrets {
            keys: secrets
                .iter()
                .map(|s| KeyPair {
                    encryption: derive(s.as_bytes(), ENCRYPTION_LABEL),
                    mac: derive(s.as_bytes(), MAC_LABEL),
                })
                .collect(),
        })
    }

    /// The token for `claim` under the first secret. `nonce` must be fresh
    /// random bytes for every token (the cipher's security rests on never
    /// reusing one under a key).
    pub fn issue(&self, claim: &Claim, nonce: &[u8; NONCE_LEN]) -> Result<String, TokenError> {
        let mut plain = Vec::with_capacity(128);
        for field in [
            claim.tenant.as_str(),
            claim.key_id.as_str(),
            claim.stream.as_str(),
            claim.topic.as_deref().unwrap_or(""),
            claim.recipient.as_str(),
            claim.message_id.as_str(),
        ] {
            let len = u8::try_from(field.len()).map_err(|_| TokenError::FieldTooLong)?;
            plain.push(len);
            plain.extend_from_slice(field.as_bytes());
        }
        let Some(keys) = self.keys.first() else {
            return Err(TokenError::Forged);
        };
        let mut cipher = ChaCha20::new(&keys.encryption.into(), &(*nonce).into());
        cipher.apply_keystream(&mut plain);
        let mut token = Vec::with_capacity(1 + NONCE_LEN + plain.len() + TAG_LEN);
        token.push(VERSION);
        token.extend_from_slice(nonce);
        token.extend_from_slice(&plain);
        let tag = tag::<TAG_LEN>(&keys.mac, &token);
        token.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The claim a token carries, if edgerelay made it under one of the
    /// secrets and it is unaltered.
    pub fn open(&self, token: &str) -> Result<Claim, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        if bytes[0] != VERSION {
            return Err(TokenError::UnknownVersion);
        }
        let (signed, claimed_tag) = bytes.split_at(bytes.len() - TAG_LEN);
        // Every secret is tried whatever matched, so the time taken does not
        // say which one (or whether any) did.
        let mut found: Option<&KeyPair> = None;
        for keys in &self.keys {
            let matched: bool = tag::<TAG_LEN>(&keys.mac, signed).ct_eq(claimed_tag).into();
            if matched && found.is_none() {
                found = Some(keys);
            }
        }
        let keys = found.ok_or(TokenError::Forged)?;
        let nonce: [u8; NONCE_LEN] = signed[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| TokenError::Malformed)?;
        let mut plain = signed[1 + NONCE_LEN..].to_vec();
        let mut cipher = ChaCha20::new(&keys.encryption.into(), &nonce.into());
        cipher.apply_keystream(&mut plain);
        // Authentic but unreadable can only be a bug of an earlier build;
        // it is refused the same way as a forgery.
        parse_claim(&plain).ok_or(TokenError::Forged)
    }
}

fn parse_claim(plain: &[u8]) -> Option<Claim> {
    let mut fields = Vec::with_capacity(6);
    let mut rest = plain;
    for _ in 0..6 {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len);
        if tail.len() < len {
            return None;
        }
        let (field, tail) = tail.split_at(len);
        fields.push(String::from_utf8(field.to_vec()).ok()?);
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    let mut fields = fields.into_iter();
    let mut next = || fields.next().unwrap_or_default();
    let (tenant, key_id, stream, topic, recipient, message_id) =
        (next(), next(), next(), next(), next(), next());
    if tenant.is_empty() || stream.is_empty() || recipient.is_empty() {
        return None;
    }
    Some(Claim {
        tenant,
        key_id,
        stream,
        topic: (!topic.is_empty()).then_some(topic),
        recipient,
        message_id,
    })
}

#[cfg(test)]
mod tests;
