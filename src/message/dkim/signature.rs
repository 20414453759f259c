//! The two-phase DKIM signing protocol.
//!
//! Phase 1 ([`UnsignedMessage::prepare`]) is pure: it picks the signed header
//! list, hashes the body and returns a [`PendingSignature`] holding the
//! DKIM-Signature header without its `b=` value and the exact bytes to sign.
//! Phase 2 ([`PendingSignature::finish`]) takes signature bytes from any
//! signer, synchronous or not (WebCrypto on the edge), and yields the folded
//! header line. Must not: hold or touch private keys.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::canonical::{
    HeaderField, normalize_line_endings, relaxed_body, relaxed_header, split_message,
};
use crate::message::address::Domain;
use crate::message::error::{DkimError, DkimKeyError};

/// Headers signed once more than they occur, so that a copy added in
/// transit (a second From or Subject, a Reply-To or Cc that was not there)
/// breaks the signature (RFC 6376 8.15). Each is listed even when the
/// message has none: an empty slot in `h=` is what makes adding one later
/// fail. Content-Type and MIME-Version decide how the signed body is read,
/// so a second one must not be addable either.
///
/// List-Unsubscribe and List-Unsubscribe-Post: RFC 8058 §4 requires the
/// DKIM signature to cover both when one-click unsubscribe is offered, and
/// over-signing them means a relay cannot add a one-click link of its own
/// to a message that had none.
///
/// CFBL-Address and CFBL-Feedback-ID: RFC 9477 has receivers send complaint
/// reports only when an aligned DKIM signature covers them, and
/// over-signing means nobody can add a feedback address to a message that
/// had none, nor a second one.
const OVERSIGNED: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "cc",
    "content-type",
    "mime-version",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "cfbl-address",
    "cfbl-feedback-id",
];

/// Where folded lines should end; RFC 5322 recommends 78 characters.
const FOLD_AT: usize = 78;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376, RFC 8301).
    RsaSha256,
    /// PureEdDSA Ed25519 over the SHA-256 hash (RFC 8463).
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The `a=` tag value.
    pub fn tag(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The `k=` value of the DNS key record.
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        }
    }

    /// Accepts configuration spellings: `rsa`, `rsa-sha256`, `ed25519`,
    /// `ed25519-sha256` (any case).
    pub fn parse(name: &str) -> Option<DkimAlgorithm> {
        match name.to_ascii_lowercase().as_str() {
            "rsa" | "rsa-sha256" => Some(DkimAlgorithm::RsaSha256),
            "ed25519" | "ed25519-sha256" => Some(DkimAlgorithm::Ed25519Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A DKIM selector: dot-separated LDH labels (RFC 6376 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector(String);

impl Selector {
    pub fn parse(input: &str) -> Result<Selector, DkimKeyError> {
        let valid = !input.is_empty()
            && input.len() <= 63
            && input.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Selector(input.to_ascii_lowercase()))
        } else {
            Err(DkimKeyError::InvalidSelector(input.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who signs and how: the `d=`, `s=` and `a=` of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DkimIdentity {
    pub domain: Domain,
    pub selector: Selector,
    pub algorithm: DkimAlgorithm,
}

impl DkimIdentity {
    /// DNS name of the key record: `selector._domainkey.domain`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector.as_str(), self.domain)
    }
}

/// A message ready for signing: line endings normalised to CRLF. Sign and
/// transmit *these* bytes; signatures over the caller's original LF-only
/// text would not survive SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedMessage {
    bytes: Vec<u8>,
}

impl UnsignedMessage {
    pub fn new(raw: &[u8]) -> UnsignedMessage {
        UnsignedMessage {
            bytes: normalize_line_endings(raw),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Phase 1: everything but the signature itself. `timestamp` is the
    /// `t=` tag in seconds since the Unix epoch.
    pub fn prepare(
        &self,
        identity: &DkimIdentity,
        timestamp: u64,
    ) -> Result<PendingSignature, DkimError> {
        self.prepare_with(identity, timestamp, Coverage::Full)
    }

    /// [`UnsignedMessage::prepare`], with the headers `coverage` says.
    pub fn prepare_with(
        &self,
        identity: &DkimIdentity,
        timestamp: u64,
        coverage: Coverage,
    ) -> Result<PendingSignature, DkimError> {
        let (fields, body_offset) = split_message(&self.bytes)?;
        let signed = signed_header_names(&fields, coverage)?;

        let mut body_hasher = Sha256::new();
        relaxed_body(
            self.bytes.get(body_offset..).unwrap_or_default(),
            &mut |chunk| body_hasher.update(chunk),
        );
        let body_hash = STANDARD.encode(body_hasher.finalize());

        let header_without_b = fold_tags(&[
            ("v", "1".to_string()),
            ("a", identity.algorithm.tag().to_string()),
            ("c", "relaxed/relaxed".to_string()),
            ("d", identity.domain.to_string()),
            ("s", identity.selector.as_str().to_string()),
            ("t", timestamp.to_string()),
            ("h", signed.join(":")),
            ("bh", body_hash),
            ("b", String::new()),
        ]);

        let mut signed_data = canonical_headers(&fields, &signed);
        signed_data.extend(relaxed_header(header_without_b.as_bytes(), false));
        Ok(PendingSignature {
            algorithm: identity.algorithm,
            header_without_b,
            signed_data,
        })
    }

    /// Prepends finished signature headers (in the order given) to the message.
    pub fn with_signatures(self, signatures: &[SignatureHeader]) -> Vec<u8> {
        let mut output = Vec::with_capacity(
            self.bytes.len() + signatures.iter().map(|s| s.0.len()).sum::<usize>(),
        );
        for signature in signatures {
            output.extend_from_slice(signature.0.as_bytes());
        }
        output.extend_from_slice(&self.bytes);
        output
    }
}

/// Which headers a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coverage {
    /// Every header in [`OVERSIGNED`].
    #[default]
    Full,
    /// All of them but Message-ID, for a relay path that writes a
    /// Message-ID of its own (Cloudflare Email Service's `send_email`
    /// binding replaces it): a signature over the original would fail
    /// there. RFC 6376 §5.4.1 does not list Message-ID among the headers a
    /// signature should cover.
    WithoutMessageId,
}

/// The `h=` list, lowercase.
fn signed_header_names(
    fields: &[HeaderField<'_>],
    coverage: Coverage,
) -> Result<Vec<&'static str>, DkimError> {
    let count = |name: &str| {
        fields
            .iter()
            .filter(|f| f.name.trim().eq_ignore_ascii_case(name))
            .count()
    };
    if count("from") == 0 {
        return Err(DkimError::MissingFromHeader);
    }
    let mut names = Vec::new();
    for name in OVERSIGNED {
        if coverage == Coverage::WithoutMessageId && *name == "message-id" {
            continue;
        }
        names.extend(std::iter::repeat_n(*name, count(name) + 1));
    }
    Ok(names)
}

/// Canonical header data in `h=` order. Repeated names take instances from
/// the bottom up; names with no instance left contribute nothing (RFC 6376
/// 5.4.2), which is what makes over-signing work.
fn canonical_headers(fields: &[HeaderField<'_>], signed: &[&str]) -> Vec<u8> {
    let mut used = vec![false; fields.len()];
    let mut output = Vec::new();
    for name in signed {
        let instance = (0..fields.len())
            .rev()
            .find(|&i| !used[i] && fields[i].name.trim().eq_ignore_ascii_case(name));
        if let Some(i) = instance {
            used[i] = true;
            output.extend(relaxed_header(fields[i].raw, true));
        }
    }
    output
}

/// `DKIM-Signature: tag=value; ...` folded at tag boundaries (and inside
/// `h=` at colons) near [`FOLD_AT`]. Folding whitespace is FWS, which relaxed
/// canonicalisation reduces to one space on both sides, so the bytes signed
/// here equal what verifiers reconstruct.
fn fold_tags(tags: &[(&str, String)]) -> String {
    let mut header = String::from("DKIM-Signature:");
    let mut column = header.len();
    for (index, (tag, value)) in tags.iter().enumerate() {
        let last = index + 1 == tags.len();
        let pieces: Vec<String> = if *tag == "h" {
            let names: Vec<&str> = value.split(':').collect();
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let prefix = if i == 0 { "h=" } else { "" };
                    let suffix = if i + 1 < names.len() { ":" } else { ";" };
                    format!("{prefix}{name}{suffix}")
                })
                .collect()
        } else {
            vec![format!("{tag}={value}{}", if last { "" } else { ";" })]
        };
        for (i, piece) in pieces.iter().enumerate() {
            let separator = if i == 0 { " " } else { "" };
            if column + separator.len() + piece.len() > FOLD_AT {
                header.push_str("\r\n\t");
                column = 1;
            } else {
                header.push_str(separator);
                column += separator.len();
            }
            header.push_str(piece);
            column += piece.len();
        }
    }
    header
}

/// Phase-1 result: the header without `b=` and the bytes to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignature {
    algorithm: DkimAlgorithm,
    header_without_b: String,
    signed_data: Vec<u8>,
}

impl fmt::Debug for PendingSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignature")
            .field("algorithm", &self.algorithm)
            .field("header_without_b", &self.header_without_b)
            .field("signed_data_len", &self.signed_data.len())
            .finish()
    }
}

impl PendingSignature {
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The DKIM-Signature header as it will appear, up to and including `b=`.
    pub fn header_without_b(&self) -> &str {
        &self.header_without_b
    }

    /// Canonicalised signed headers followed by the canonicalised
    /// DKIM-Signature header with an empty `b=` (no trailing CRLF).
    pub fn signed_data(&self) -> &[u8] {
        &self.signed_data
    }

    /// The exact input of the signature primitive:
    /// - RSA: [`Self::signed_data`] itself, because RSASSA-PKCS1-v1_5/SHA-256
    ///   (WebCrypto `sign`) hashes its input;
    /// - Ed25519: the SHA-256 digest of it, because RFC 8463 signs the hash
    ///   with PureEdDSA.
    pub fn signing_input(&self) -> Vec<u8> {
        match self.algorithm {
            DkimAlgorithm::RsaSha256 => self.signed_data.clone(),
            DkimAlgorithm::Ed25519Sha256 => Sha256::digest(&self.signed_data).to_vec(),
        }
    }

    /// Phase 2: completes the header with the signature bytes.
    pub fn finish(self, signature: &[u8]) -> Result<SignatureHeader, DkimError> {
        let plausible = match self.algorithm {
            DkimAlgorithm::Ed25519Sha256 => signature.len() == 64,
            DkimAlgorithm::RsaSha256 => (128..=512).contains(&signature.len()),
        };
        if !plausible {
            let expected = match self.algorithm {
                DkimAlgorithm::Ed25519Sha256 => 64,
                DkimAlgorithm::RsaSha256 => 256,
            };
            return Err(DkimError::SignatureLength {
                expected,
                actual: signature.len(),
            });
        }
        let encoded = STANDARD.encode(signature);
        let mut header = self.header_without_b;
        let mut column = header.rsplit('\n').next().map_or(0, str::len);
        // Whitespace inside b= is ignored by verifiers, so fold freely.
        let mut rest = encoded.as_str();
        while !rest.is_empty() {
            let room = FOLD_AT.saturating_sub(column).max(1);
            if room < 8 && column > 1 {
                header.push_str("\r\n\t");
                column = 1;
                continue;
            }
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            header.push_str(chunk);
            column += chunk.len();
            rest = tail;
            if !rest.is_empty() {
                header.push_str("\r\n\t");
                column = 1;
            }
        }
        header.push_str("\r\n");
        Ok(SignatureHeader(header))
    }
}

/// A complete `DKIM-Signature: ...\r\n` header line, ready to prepend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader(String);

impl SignatureHeader {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
