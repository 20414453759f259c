//! Error types of the message layer.
//!
//! Owns the shapes in which the message core reports problems to its callers:
//! request problems ([`RequestError`], [`FieldError`]), composition problems
//! ([`ComposeError`]) and DKIM problems ([`DkimKeyError`], [`DkimError`]).
//! Must not: decide transport concerns beyond a status *hint*: `accept` turns
//! these into the answer a caller gets.

use std::fmt;

/// One problem with one field of a send request.
///
/// `rule` is stable and machine-readable so that API clients can branch on it;
/// `message` is for humans and may change wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending value, e.g. `to[1]` or `attachments[0].content`.
    /// Empty when the problem concerns the request as a whole.
    pub field: String,
    /// Stable rule name, e.g. `required`, `invalid_address`, `header_injection`.
    pub rule: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{} ({})", self.message, self.rule)
        } else {
            write!(f, "{}: {} ({})", self.field, self.message, self.rule)
        }
    }
}

/// Rule name used for size violations; it alone turns the status hint into 413.
pub const RULE_TOO_LARGE: &str = "too_large";

/// Every problem found while validating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// HTTP status the caller should most likely answer with: 413 when the
    /// message is too large (retrying with the same content cannot succeed,
    /// and clients treat 413 specially), 422 for every other content problem.
    pub fn status_hint(&self) -> u16 {
        if self.errors.iter().any(|e| e.rule == RULE_TOO_LARGE) {
            413
        } else {
            422
        }
    }

    /// Whether any error has the given rule; convenient for callers and tests.
    pub fn has_rule(&self, rule: &str) -> bool {
        self.errors.iter().any(|e| e.rule == rule)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request: ")?;
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Why a request body could not become a [`crate::message::Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not JSON at all (syntax error, truncated input). The client
    /// must fix its encoder; maps to 400.
    MalformedJson {
        message: String,
        line: usize,
        column: usize,
    },
    /// The body is JSON but its content is unacceptable; every problem is
    /// listed. Maps to [`ValidationErrors::status_hint`] (422 or 413).
    Invalid(ValidationErrors),
}

impl RequestError {
    /// HTTP status hint: 400 for malformed JSON, otherwise 422/413.
    pub fn status_hint(&self) -> u16 {
        match self {
            RequestError::MalformedJson { .. } => 400,
            RequestError::Invalid(errors) => errors.status_hint(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MalformedJson {
                message,
                line,
                column,
            } => write!(
                f,
                "malformed JSON at line {line}, column {column}: {message}"
            ),
            RequestError::Invalid(errors) => errors.fmt(f),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<ValidationErrors> for RequestError {
    fn from(errors: ValidationErrors) -> Self {
        RequestError::Invalid(errors)
    }
}

/// Why a validated message could not be rendered to MIME. These are caller
/// bugs in the compose context, not client errors: the message itself was
/// already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// The Message-ID passed in is not `id-left@id-right` made of printable
    /// ASCII without brackets or whitespace; generate it with
    /// [`crate::message::new_message_id`].
    InvalidMessageId(String),
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComposeError::InvalidMessageId(id) => write!(
                f,
                "invalid Message-ID {id:?}: expected left@right in printable ASCII without '<', '>' or spaces"
            ),
        }
    }
}

impl std::error::Error for ComposeError {}

/// Why a configured DKIM key could not be loaded. Each variant names what the
/// operator has to fix in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimKeyError {
    /// The signing domain is not a valid domain name.
    InvalidDomain(String),
    /// The selector is not a dot-separated list of letters, digits and hyphens.
    InvalidSelector(String),
    /// The key text is neither PEM nor valid base64.
    NotBase64,
    /// A PEM block was found but its BEGIN/END lines are broken.
    MalformedPem(&'static str),
    /// The PEM label is not one we load (e.g. `PUBLIC KEY`, `EC PRIVATE KEY`).
    UnsupportedPemLabel(String),
    /// `ENCRYPTED PRIVATE KEY`: the key must be stored decrypted.
    EncryptedKey,
    /// The key bytes decode but are not a key of the configured algorithm;
    /// `detail` says what the parser rejected.
    InvalidKey {
        algorithm: &'static str,
        detail: String,
    },
    /// The key is of the other algorithm than the one configured.
    AlgorithmMismatch {
        configured: &'static str,
        found: &'static str,
    },
    /// RSA modulus outside 1024..=4096 bits (RFC 8301 forbids shorter keys and
    /// verifiers need not support longer ones).
    UnsupportedRsaKeySize(usize),
}

impl fmt::Display for DkimKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimKeyError::InvalidDomain(d) => write!(f, "DKIM domain {d:?} is not a valid domain"),
            DkimKeyError::InvalidSelector(s) => write!(
                f,
                "DKIM selector {s:?} must be dot-separated labels of letters, digits and hyphens"
            ),
            DkimKeyError::NotBase64 => {
                write!(f, "DKIM private key is neither PEM nor valid base64")
            }
            DkimKeyError::MalformedPem(what) => {
                write!(f, "DKIM private key PEM is malformed: {what}")
            }
            DkimKeyError::UnsupportedPemLabel(label) => write!(
                f,
                "DKIM private key PEM label {label:?} is not supported; use \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1)"
            ),
            DkimKeyError::EncryptedKey => {
                write!(
                    f,
                    "DKIM private key is encrypted; store it unencrypted (PKCS#8)"
                )
            }
            DkimKeyError::InvalidKey { algorithm, detail } => {
                write!(
                    f,
                    "DKIM private key is not a valid {algorithm} key: {detail}"
                )
            }
            DkimKeyError::AlgorithmMismatch { configured, found } => write!(
                f,
                "DKIM key configured as {configured} but the key material is {found}"
            ),
            DkimKeyError::UnsupportedRsaKeySize(bits) => write!(
                f,
                "RSA DKIM key has {bits} bits; use 1024 to 4096 (2048 recommended)"
            ),
        }
    }
}

impl std::error::Error for DkimKeyError {}

/// Why a message could not be DKIM-signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimError {
    /// The message has no From header; DKIM requires signing it (RFC 6376 5.4).
    MissingFromHeader,
    /// The message header section is not parseable (a line without a colon
    /// that is not a continuation); the composer never produces such input.
    MalformedHeader(String),
    /// The signature primitive failed (only RSA can, e.g. on a broken key).
    SigningFailed(String),
    /// A signature handed to phase 2 has the wrong length for its algorithm.
    SignatureLength { expected: usize, actual: usize },
}

impl fmt::Display for DkimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimError::MissingFromHeader => write!(f, "message has no From header to sign"),
            DkimError::MalformedHeader(line) => {
                write!(f, "message header line is malformed: {line:?}")
            }
            DkimError::SigningFailed(detail) => write!(f, "DKIM signing failed: {detail}"),
            DkimError::SignatureLength { expected, actual } => write!(
                f,
                "DKIM signature has {actual} bytes, the algorithm produces {expected}"
            ),
        }
    }
}

impl std::error::Error for DkimError {}
