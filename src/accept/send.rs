//! `POST /v1/messages` without the HTTP: body bytes and a caller in, a signed
//! delivery job out (or the error to answer).
//!
//! Signing is split in two so the edge can sign RSA with the runtime's
//! WebCrypto (async) while tests and native builds sign in Rust:
//! [`prepare`] does everything up to the bytes to sign, [`finish`] takes the
//! signatures. [`sign_natively`] joins the two with the core's own signers.
//!
//! [`prepare`] is where a sender is held to its domains (403
//! `domain_not_allowed`) and a domain with no DKIM key, unless it is listed in
//! `UNSIGNED_DOMAINS`, is refused (403 `domain_not_configured`). Every way in
//! (API, batch items, forms, queue producers) goes through [`prepare`] with its
//! own scoped identity, so the same checks apply everywhere.
//! Must not: perform I/O or read the clock (the time and the id's entropy are
//! passed in), or store and enqueue anything (`accept::commit` does).

use crate::message::{
    ComposeContext, DkimKey, FieldError, Limits, PendingSignature, RequestError, SendRequest, Tag,
    UnsignedMessage, compose, new_message_id,
};
use crate::queue::DeliveryJob;

use super::body::BodyLimit;
use super::error::{ApiError, FieldProblem};
use super::keys::AuthenticatedKey;
use super::settings::SendSettings;

/// A validated, composed message waiting for its DKIM signatures.
pub struct Prepared {
    pub id: String,
    key_id: String,
    tenant: String,
    subject: String,
    from: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    smtputf8: bool,
    accepted_at: u64,
    tags: Vec<Tag>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    unsigned: UnsignedMessage,
    /// One per signing key: the key's index in `SendSettings::dkim_keys`, and what to sign.
    pub pending: Vec<(usize, PendingSignature)>,
}

fn problems(errors: Vec<FieldError>) -> Vec<FieldProblem> {
    errors
        .into_iter()
        .map(|e| FieldProblem {
            field: e.field,
            rule: e.rule.to_string(),
            message: e.message,
        })
        .collect()
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::MalformedJson { .. } => ApiError::malformed(e.to_string()),
            RequestError::Invalid(v) => {
                let status = v.status_hint();
                let mut err = ApiError::invalid(problems(v.errors));
                if status == 413 {
                    err.status = 413;
                    err.rule = "too_large";
                }
                err
            }
        }
    }
}

/// Largest request body read for a message limit: JSON escaping and base64
/// make a request bigger than the message it describes (base64 by 4/3, an
/// escaped CRLF is four bytes for two), so allow twice the message plus room
/// for the envelope fields. Checked before parsing, so an oversized body costs
/// no CPU. A batch as a whole is held to the same limit.
pub fn max_request_bytes(settings: &SendSettings) -> usize {
    settings
        .max_message_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

/// The limit on a request body, [`max_request_bytes`].
pub fn request_body_limit(settings: &SendSettings) -> BodyLimit {
    BodyLimit {
        max_bytes: max_request_bytes(settings),
        source: "twice MAX_MESSAGE_BYTES plus 64 KiB",
    }
}

/// 413 for a request body over [`max_request_bytes`].
pub fn check_request_size(len: usize, settings: &SendSettings) -> Result<(), ApiError> {
    request_body_limit(settings).admits(len)
}

/// Validates, authorises and composes. `entropy` makes the message id.
pub fn prepare(
    body: &[u8],
    key: &AuthenticatedKey,
    settings: &SendSettings,
    now_unix: u64,
    entropy: &[u8; 32],
) -> Result<Prepared, ApiError> {
    let request = SendRequest::from_json(body)?;
    let limits = Limits {
        max_message_bytes: settings.max_message_bytes,
        ..Limits::default()
    };
    let message = request
        .validate(&limits)
        .map_err(|v| ApiError::from(RequestError::Invalid(v)))?;

    let from_domain = message.from().address.domain();
    if !key.may_send_as(from_domain.as_str()) {
        return Err(ApiError::forbidden(
            "domain_not_allowed",
            "from",
            format!(
                "this API key may not send as {}; it may send as: {}",
                from_domain.as_str(),
                key.domains.join(", ")
            ),
        ));
    }
    // Every key for the From domain signs (RSA + Ed25519 dual signing).
    let signing_keys: Vec<(usize, &DkimKey)> = settings
        .dkim_keys
        .iter()
        .enumerate()
        .filter(|(_, k)| &k.identity().domain == from_domain)
        .collect();
    if signing_keys.is_empty() && !settings.may_send_unsigned(from_domain.as_str()) {
        return Err(ApiError::forbidden(
            "domain_not_configured",
            "from",
            format!(
                "no DKIM key is configured for {}; add one to DKIM_KEYS (or list the domain in UNSIGNED_DOMAINS)",
                from_domain.as_str()
            ),
        ));
    }

    let message_id = new_message_id(from_domain, &entropy[..16]);
    let id = message_id
        .split_once('@')
        .map(|(left, _)| left.to_string())
        .unwrap_or_else(|| message_id.clone());
    let raw = compose(
        &message,
        &ComposeContext {
            message_id,
            date_unix: i64::try_from(now_unix).unwrap_or(i64::MAX),
        },
    )
    .map_err(|e| {
        ApiError::invalid(vec![FieldProblem {
            field: String::new(),
            rule: "compose_failed".into(),
            message: e.to_string(),
        }])
    })?;
    // Validation estimated the size; base64, encoded headers and MIME
    // structure add to it, so the composed bytes are what counts.
    if raw.len() > settings.max_message_bytes {
        return Err(ApiError::too_large(
            "",
            format!(
                "the composed message is {} bytes; at most {} bytes are accepted (MAX_MESSAGE_BYTES)",
                raw.len(),
                settings.max_message_bytes
            ),
        ));
    }

    let unsigned = UnsignedMessage::new(&raw);
    let mut pending = Vec::with_capacity(signing_keys.len());
    for (index, key) in signing_keys {
        let p = unsigned
            .prepare(key.identity(), now_unix)
            .map_err(|e| ApiError::misconfigured(format!("DKIM: {e}")))?;
        pending.push((index, p));
    }

    Ok(Prepared {
        id,
        key_id: key.id.clone(),
        tenant: key.tenant.clone(),
        subject: message.subject().to_string(),
        from: message.from().address.to_string(),
        mail_from: message.envelope_from().to_string(),
        rcpt_to: message
            .recipients()
            .into_iter()
            .map(|a| a.to_string())
            .collect(),
        smtputf8: message.requires_smtputf8(),
        accepted_at: now_unix,
        tags: message.tags().to_vec(),
        metadata: message.metadata().cloned(),
        unsigned,
        pending,
    })
}

/// Attaches the signatures (in `pending` order) and builds the delivery job.
pub fn finish(prepared: Prepared, signatures: Vec<Vec<u8>>) -> Result<DeliveryJob, ApiError> {
    if signatures.len() != prepared.pending.len() {
        return Err(ApiError::misconfigured("DKIM: a signature is missing"));
    }
    let mut headers = Vec::with_capacity(signatures.len());
    for ((_, pending), sig) in prepared.pending.into_iter().zip(signatures) {
        headers.push(
            pending
                .finish(&sig)
                .map_err(|e| ApiError::misconfigured(format!("DKIM: {e}")))?,
        );
    }
    let signed = prepared.unsigned.with_signatures(&headers);
    let mime = String::from_utf8(signed)
        .map_err(|_| ApiError::misconfigured("the composed message is not UTF-8"))?;
    Ok(DeliveryJob {
        id: prepared.id,
        key_id: prepared.key_id,
        mail_from: prepared.mail_from,
        rcpt_to: prepared.rcpt_to,
        mime,
        smtputf8: prepared.smtputf8,
        accepted_at: prepared.accepted_at,
        attempt: 0,
        body_ref: None,
        tags: prepared.tags,
        metadata: prepared.metadata,
        safety_net: false,
        tenant: prepared.tenant,
        stream: None,
        topic: None,
        subject: Some(prepared.subject),
        from: Some(prepared.from),
    })
}

/// The configured key a pending signature was prepared for.
pub fn signing_key(settings: &SendSettings, index: usize) -> Result<&DkimKey, ApiError> {
    settings
        .dkim_keys
        .get(index)
        .ok_or_else(|| ApiError::misconfigured("DKIM: key vanished"))
}

/// Signs with the core's own signers (Ed25519 and RSA in Rust).
pub fn sign_natively(prepared: Prepared, settings: &SendSettings) -> Result<DeliveryJob, ApiError> {
    let mut signatures = Vec::with_capacity(prepared.pending.len());
    for (index, pending) in &prepared.pending {
        let key = signing_key(settings, *index)?;
        // Fail closed: a signing failure refuses the message.
        signatures.push(
            key.sign(pending)
                .map_err(|e| ApiError::misconfigured(format!("DKIM signing failed: {e}")))?,
        );
    }
    finish(prepared, signatures)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
