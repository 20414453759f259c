//! DKIM private keys: loading from configuration text, native signing, and
//! the public forms (DNS TXT record, PKCS#8 DER for WebCrypto).
//!
//! Owns key parsing (PEM PKCS#8 / PKCS#1, bare base64 DER, raw Ed25519 seeds)
//! and the synchronous signers. Must not: decide *what* is signed (that is
//! [`super::signature`]), or ever print key material: `Debug` shows the
//! identity only.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256};

use super::signature::{DkimAlgorithm, DkimIdentity, PendingSignature, Selector};
use crate::message::address::Domain;
use crate::message::error::{DkimError, DkimKeyError};

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";

enum KeyMaterial {
    Rsa(Box<RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A signing key bound to its domain and selector.
pub struct DkimKey {
    identity: DkimIdentity,
    material: KeyMaterial,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Key bytes as found in the configuration text, before interpretation.
enum Encoded {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
    /// Bare base64: PKCS#8 DER, PKCS#1 DER or a raw Ed25519 seed/keypair.
    Unlabelled(Vec<u8>),
}

impl DkimKey {
    /// Loads a key from configuration.
    ///
    /// `private_key_text` may be PEM (`PRIVATE KEY` = PKCS#8, `RSA PRIVATE KEY`
    /// = PKCS#1), bare base64 of PKCS#8 (or PKCS#1) DER, or for Ed25519 the
    /// base64 of the 32-byte seed. PEM pasted into an environment variable
    /// with literal `\n` sequences is accepted too.
    pub fn from_config(
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_key_text: &str,
    ) -> Result<DkimKey, DkimKeyError> {
        let domain =
            Domain::parse(domain).map_err(|_| DkimKeyError::InvalidDomain(domain.to_string()))?;
        let selector = Selector::parse(selector)?;
        let material = match (algorithm, decode_text(private_key_text)?) {
            (DkimAlgorithm::RsaSha256, Encoded::Pkcs1(der)) => rsa_from_pkcs1(&der)?,
            (DkimAlgorithm::Ed25519Sha256, Encoded::Pkcs1(_)) => {
                return Err(mismatch(algorithm, "RSA (PKCS#1)"));
            }
            (_, Encoded::Pkcs8(der)) => from_pkcs8(algorithm, &der)?,
            (DkimAlgorithm::Ed25519Sha256, Encoded::Unlabelled(bytes)) => match bytes.len() {
                32 => {
                    let seed: [u8; 32] = bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| invalid(algorithm, "seed must be 32 bytes"))?;
                    KeyMaterial::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
                }
                64 => {
                    let pair: [u8; 64] = bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| invalid(algorithm, "keypair must be 64 bytes"))?;
                    let key =
                        ed25519_dalek::SigningKey::from_keypair_bytes(&pair).map_err(|_| {
                            invalid(
                                algorithm,
                                "64-byte keypair: public half does not match the seed",
                            )
                        })?;
                    KeyMaterial::Ed25519(Box::new(key))
                }
                _ => from_pkcs8(algorithm, &bytes)?,
            },
            (DkimAlgorithm::RsaSha256, Encoded::Unlabelled(der)) => {
                if pkcs8_algorithm(&der).is_some() {
                    from_pkcs8(algorithm, &der)?
                } else {
                    rsa_from_pkcs1(&der)?
                }
            }
        };
        Ok(DkimKey {
            identity: DkimIdentity {
                domain,
                selector,
                algorithm,
            },
            material,
        })
    }

    pub fn identity(&self) -> &DkimIdentity {
        &self.identity
    }

    /// RSA keys are signed through WebCrypto on the edge (the native RSA code
    /// is slow and not constant-time); Ed25519 can be signed natively.
    pub fn is_rsa(&self) -> bool {
        matches!(self.material, KeyMaterial::Rsa(_))
    }

    /// The modulus size in bits of an RSA key; `None` for Ed25519.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            KeyMaterial::Rsa(key) => Some(key.n().bits()),
            KeyMaterial::Ed25519(_) => None,
        }
    }

    /// The private key as PKCS#8 DER, the input of WebCrypto
    /// `importKey("pkcs8", ...)`. Secret: do not log.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, DkimKeyError> {
        let document = match &self.material {
            KeyMaterial::Rsa(key) => key.to_pkcs8_der().map(|d| d.as_bytes().to_vec()),
            KeyMaterial::Ed25519(key) => {
                return key
                    .to_pkcs8_der()
                    .map(|d| d.as_bytes().to_vec())
                    .map_err(|e| invalid(self.identity.algorithm, &e.to_string()));
            }
        };
        document.map_err(|e| invalid(self.identity.algorithm, &e.to_string()))
    }

    /// The public key record to publish at [`DkimIdentity::dns_name`], e.g.
    /// `v=DKIM1; k=ed25519; p=...`.
    pub fn dns_txt_record(&self) -> Result<String, DkimKeyError> {
        let public = match &self.material {
            // RSA keys are published as SubjectPublicKeyInfo DER (RFC 6376 3.6.1).
            KeyMaterial::Rsa(key) => key
                .to_public_key()
                .to_public_key_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| invalid(self.identity.algorithm, &e.to_string()))?,
            // Ed25519 keys are the bare 32 bytes (RFC 8463 4.2).
            KeyMaterial::Ed25519(key) => key.verifying_key().to_bytes().to_vec(),
        };
        Ok(format!(
            "v=DKIM1; k={}; p={}",
            self.identity.algorithm.key_type(),
            STANDARD.encode(public)
        ))
    }

    /// Signs a pending signature natively (synchronously).
    pub fn sign(&self, pending: &PendingSignature) -> Result<Vec<u8>, DkimError> {
        if pending.algorithm() != self.identity.algorithm {
            return Err(DkimError::SigningFailed(format!(
                "pending signature is {} but the key is {}",
                pending.algorithm(),
                self.identity.algorithm
            )));
        }
        match &self.material {
            KeyMaterial::Ed25519(key) => Ok(key.sign(&pending.signing_input()).to_bytes().to_vec()),
            KeyMaterial::Rsa(key) => {
                let digest = Sha256::digest(pending.signed_data());
                key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
                    .map_err(|e| DkimError::SigningFailed(e.to_string()))
            }
        }
    }
}

fn invalid(algorithm: DkimAlgorithm, detail: &str) -> DkimKeyError {
    DkimKeyError::InvalidKey {
        algorithm: algorithm.tag(),
        detail: detail.to_string(),
    }
}

fn mismatch(configured: DkimAlgorithm, found: &'static str) -> DkimKeyError {
    DkimKeyError::AlgorithmMismatch {
        configured: configured.tag(),
        found,
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, DkimKeyError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| DkimKeyError::NotBase64)
}

fn decode_text(text: &str) -> Result<Encoded, DkimKeyError> {
    let unescaped;
    let text = if text.contains("\\n") && !text.contains('\n') {
        unescaped = text.replace("\\n", "\n");
        unescaped.as_str()
    } else {
        text
    };
    let text = text.trim();
    let Some(after_begin) = text.strip_prefix("-----BEGIN ") else {
        return decode_base64(text).map(Encoded::Unlabelled);
    };
    let (label, rest) = after_begin
        .split_once("-----")
        .ok_or(DkimKeyError::MalformedPem(
            "BEGIN line is not closed with -----",
        ))?;
    let end_line = format!("-----END {label}-----");
    let body = rest
        .split_once(end_line.as_str())
        .map(|(body, _)| body)
        .ok_or(DkimKeyError::MalformedPem("no matching END line"))?;
    if label == "ENCRYPTED PRIVATE KEY" || body.contains("Proc-Type:") {
        return Err(DkimKeyError::EncryptedKey);
    }
    let der = decode_base64(body).map_err(|_| DkimKeyError::MalformedPem("body is not base64"))?;
    match label {
        "PRIVATE KEY" => Ok(Encoded::Pkcs8(der)),
        "RSA PRIVATE KEY" => Ok(Encoded::Pkcs1(der)),
        other => Err(DkimKeyError::UnsupportedPemLabel(other.to_string())),
    }
}

/// Algorithm OID of a PKCS#8 document, if it is one.
fn pkcs8_algorithm(der: &[u8]) -> Option<String> {
    rsa::pkcs8::PrivateKeyInfo::try_from(der)
        .ok()
        .map(|info| info.algorithm.oid.to_string())
}

fn from_pkcs8(algorithm: DkimAlgorithm, der: &[u8]) -> Result<KeyMaterial, DkimKeyError> {
    let oid = pkcs8_algorithm(der).ok_or_else(|| invalid(algorithm, "not a PKCS#8 private key"))?;
    match (algorithm, oid.as_str()) {
        (DkimAlgorithm::RsaSha256, OID_RSA) => {
            let key = RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| invalid(algorithm, &e.to_string()))?;
            checked_rsa(key)
        }
        (DkimAlgorithm::Ed25519Sha256, OID_ED25519) => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map_err(|e| invalid(algorithm, &e.to_string()))?;
            Ok(KeyMaterial::Ed25519(Box::new(key)))
        }
        (_, OID_RSA) => Err(mismatch(algorithm, "RSA")),
        (_, OID_ED25519) => Err(mismatch(algorithm, "Ed25519")),
        (_, other) => Err(invalid(
            algorithm,
            &format!("PKCS#8 key of unsupported algorithm {other}"),
        )),
    }
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<KeyMaterial, DkimKeyError> {
    let key = RsaPrivateKey::from_pkcs1_der(der)
        .map_err(|e| invalid(DkimAlgorithm::RsaSha256, &e.to_string()))?;
    checked_rsa(key)
}

fn checked_rsa(key: RsaPrivateKey) -> Result<KeyMaterial, DkimKeyError> {
    let bits = key.n().bits();
    if !(1024..=4096).contains(&bits) {
        return Err(DkimKeyError::UnsupportedRsaKeySize(bits));
    }
    key.validate()
        .map_err(|e| invalid(DkimAlgorithm::RsaSha256, &e.to_string()))?;
    Ok(KeyMaterial::Rsa(Box::new(key)))
}
