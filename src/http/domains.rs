//! What `/v1/domains` reads and answers: the add request (422 naming the
//! field and rule), the selectors a new domain's keys get, the DNS records
//! to publish for it ([`records`]), how its private keys are sealed at rest
//! ([`seal`]), the settings the routes read ([`settings`]), the rules of a
//! key rotation ([`rotation`]) and of the cron re-verification
//! ([`recheck`]), and the JSON of a domain.
//!
//! A domain added through the API has two keys, made inside the worker: the
//! RSA-2048 key every sending domain needs and an Ed25519 key beside it.
//! Their private halves are stored only sealed (AES-256-GCM under a key
//! derived from `DOMAIN_KEYS_SECRET`) and never appear in an answer: a
//! domain's JSON shows each key's selector, algorithm and public record.
//! Domains of `DKIM_KEYS` are listed beside them, read-only
//! (`"source": "settings"`).
//! Must not: perform I/O, generate keys or encrypt (the edge does, with
//! WebCrypto and the CSPRNG), or read the clock.

pub mod recheck;
pub mod records;
pub mod rotation;
pub mod seal;
pub mod settings;
pub mod verify;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accept::ApiError;
use crate::accept::error::FieldProblem;
use crate::message::address::Domain;
use crate::message::{DkimAlgorithm, DkimKey};

pub use records::{DnsRecord, KeyView, RecordInputs};

/// The selector of a domain's keys of generation `generation` (from 1) and
/// algorithm: `er1-rsa`, `er1-ed25519`, `er2-rsa`, ...
pub fn selector(generation: u32, algorithm: DkimAlgorithm) -> String {
    let suffix = match algorithm {
        DkimAlgorithm::RsaSha256 => "rsa",
        DkimAlgorithm::Ed25519Sha256 => "ed25519",
    };
    format!("er{generation}-{suffix}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    domain: Option<Value>,
}

fn invalid(rule: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldProblem {
        field: "domain".to_string(),
        rule: rule.to_string(),
        message: message.into(),
    }])
}

/// Reads `POST /v1/domains`: `{"domain": "example.com"}`.
pub fn parse_add(body: &[u8]) -> Result<Domain, ApiError> {
    let request: AddRequest = serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::malformed("the body is not JSON")
        } else {
            ApiError::invalid_field("domain", "invalid_request", e.to_string())
        }
    })?;
    let Some(value) = request.domain else {
        return Err(invalid("required", "domain is required"));
    };
    let Some(text) = value.as_str() else {
        return Err(invalid("type", "domain must be a string"));
    };
    let domain = Domain::parse(text.trim())
        .map_err(|e| invalid("invalid_domain", format!("not a domain name: {e}")))?;
    if !domain.as_str().contains('.') {
        return Err(invalid(
            "invalid_domain",
            "a sending domain has at least two labels",
        ));
    }
    Ok(domain)
}

/// Reads a domain named in a path (`/v1/domains/{domain}`).
pub fn parse_path(text: &str) -> Result<Domain, ApiError> {
    let decoded = text.replace("%2E", ".").replace("%2e", ".");
    Domain::parse(&decoded).map_err(|_| ApiError::not_found(format!("no domain {decoded:?}")))
}

/// Where a domain comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Added through the API; its keys are sealed in D1.
    Api,
    /// Its keys are in `DKIM_KEYS`: read-only here.
    Settings,
}

/// A domain as `/v1/domains` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainView {
    pub domain: String,
    pub source: Source,
    /// `pending` until its RSA DKIM record verifies, then `verified`;
    /// `None` for a domain of the settings (never checked here).
    pub status: Option<String>,
    pub created_at: Option<String>,
    pub verified_at: Option<String>,
    pub keys: Vec<KeyView>,
    pub records: Vec<DnsRecord>,
    /// Where its keys' rotation is, for a domain added through the API.
    pub rotation: Option<rotation::Phase>,
}

impl DomainView {
    pub fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                json!({
                    "selector": k.selector,
                    "algorithm": k.algorithm.key_type(),
                    "public_record": k.public_record,
                })
            })
            .collect();
        let records: Vec<Value> = self.records.iter().map(DnsRecord::to_json).collect();
        let mut out = json!({
            "domain": self.domain,
            "source": match self.source { Source::Api => "api", Source::Settings => "settings" },
            "read_only": self.source == Source::Settings,
            "status": self.status,
            "created_at": self.created_at,
            "verified_at": self.verified_at,
            "keys": keys,
            "records": records,
        });
        if let Some(phase) = self.rotation {
            out["rotation"] = rotation::to_json(phase);
        }
        out
    }
}

/// The domains of `DKIM_KEYS` among `allowed` (the calling key's domains),
/// each with its keys, in the order first configured.
pub fn configured_domains(keys: &[DkimKey], allowed: &[String]) -> Vec<(String, Vec<KeyView>)> {
    let mut out: Vec<(String, Vec<KeyView>)> = Vec::new();
    for key in keys {
        let domain = key.identity().domain.as_str();
        if !allowed.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            continue;
        }
        let Some(view) = KeyView::of(key) else {
            continue;
        };
        match out.iter_mut().find(|(d, _)| d == domain) {
            Some((_, views)) => views.push(view),
            None => out.push((domain.to_string(), vec![view])),
        }
    }
    out
}

#[cfg(test)]
mod tests;
